"""A test-only wrapper around lambda_handler, put on PYTHONPATH after the unpacked zip.

It adds what the tests need and the shipped package must not have: a route that fails, a
route that echoes bytes and sets two cookies, markers that show when SnapStart's hooks run
(a GET of /probe/NAME at the Runtime API server, which records it), a fixed `random` state
given just before the snapshot (PROBE_RANDOM_STATE: a file of random.getstate() as JSON),
and an after-restore hook that fails (PROBE_FAIL_RESTORE=1).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import urllib.request
from pathlib import Path

from flask import Response, request
from snapshot_restore_py import register_after_restore, register_before_snapshot


def mark(name: str) -> None:
    """Tell the Runtime API server that this point was reached."""
    url = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/probe/{name}"
    with contextlib.suppress(OSError):  # the server answers 404: the call is what counts
        urllib.request.urlopen(url, timeout=5).close()


def give_random_state() -> None:
    if path := os.environ.get("PROBE_RANDOM_STATE"):
        version, internal, gauss = json.loads(Path(path).read_text())
        random.setstate((version, tuple(internal), gauss))
    mark("before_snapshot")


# Registered before lambda_handler's own hooks, so it runs after them (last registered first).
register_before_snapshot(give_random_state)

import lambda_handler  # noqa: E402

app = lambda_handler.app


@app.route("/probe/fail")
def fail() -> Response:
    raise RuntimeError("an unexpected failure")


@app.route("/probe/echo", methods=["POST"])
def echo() -> Response:
    response = Response(request.get_data(), mimetype="application/octet-stream")
    response.headers["X-Query"] = request.query_string.decode("latin-1")
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    return response


def after_restore() -> None:
    mark("after_restore")
    if os.environ.get("PROBE_FAIL_RESTORE"):
        raise RuntimeError("an after-restore hook failed")


# Registered after lambda_handler's hooks, so it runs after them (first registered first).
register_after_restore(after_restore)


def handler(event: dict, context: object) -> dict:
    mark("handler")
    return lambda_handler.handler(event, context)
