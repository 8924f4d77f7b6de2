"""The frame of every request: one hook before its view, one after, each step in its order.

Before: the trace (first, so that every later log line has it), the request ID and timer, the
body read whole and the request line checked (framing.py), a CORS preflight answered. After:
the CORS headers, the ID, timing and security headers and the access line, then the trace's
header and span. One hook pair, not one hook per step: Flask dispatches each hook it holds
through its own loop and `ensure_sync`, and each step would look up the request again
(docs/PERFORMANCE.md, figure a).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, Response, g, request

from . import access, cors, framing, tracing
from .db import REQUEST_ID, RequestFigures
from .proxies import unproxied
from .responses import frame_of, has_header


def before() -> Response | None:
    """Place the request in its trace, then open it; a preflight's answer ends the steps.

    The request and its `g` are taken from Flask's proxies here, once, and handed to each
    step (proxies.py).
    """
    served, state = unproxied(request), unproxied(g)
    tracing.start(served, state)
    return open_request(served, state)


def open_request(served: Request, state: Any) -> Response | None:
    """Start the ID and timer, read the body, check the request line, answer a preflight."""
    environ = served.environ
    start_request(environ, state)
    framing.read_body(served)
    framing.check_request_line(environ)
    return cors.preflight(environ)


def close_request(response: Response, served: Request, state: Any) -> Response:
    """Add the CORS headers, then the ID, timing and security headers and the access line."""
    return finish_request(cors.add_headers(response, served.environ), served, state)


def after(response: Response) -> Response:
    """Close the request, then give the answer its trace and end the span."""
    served, state = unproxied(request), unproxied(g)
    return tracing.finish(close_request(response, served, state), state)


def start_request(environ: Mapping[str, Any], state: Any) -> None:
    """Pick the request ID and start the timer."""
    state.request_id = _request_id(environ)
    state.started = time.perf_counter()
    state.figures = RequestFigures()
    access.publish(state)


def _request_id(environ: Mapping[str, Any]) -> str:
    """Return the request's ID: the caller's X-Request-ID when it is a sane token.

    Else (on Lambda) API Gateway's request ID, so the service's logs line up with API
    Gateway's, else a new UUID.
    """
    given = environ.get("HTTP_X_REQUEST_ID")
    if given and REQUEST_ID.fullmatch(given):
        return str(given)
    event = environ.get("lambda.event")
    if event:
        given = str((event.get("requestContext") or {}).get("requestId", ""))
        if REQUEST_ID.fullmatch(given):
            return given
    return new_request_id()


def new_request_id() -> str:
    """Return a random UUID4 string for a request that brought no usable ID.

    uuid.uuid4() makes an os.urandom system call per request; a request ID needs to be unique,
    not secret: `random` is seeded from os.urandom and reseeded after fork.
    """
    # uuid.UUID(int=..., version=4) sets these same bits, with checks a random int never fails.
    bits = random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
    digits = f"{bits:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


# RFC 9562 version 4: the version nibble (bits 76-79) is 4, the variant (bits 62-63) is 10.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def finish_request(response: Response, served: Request, state: Any) -> Response:
    """Add the ID, timing and security headers; then log and measure the request."""
    now = time.perf_counter()
    elapsed = now - state.get("started", now)
    # Absent when an earlier step failed before start_request.
    spent: RequestFigures = state.get("figures") or RequestFigures()
    request_id = state.get("request_id") or new_request_id()
    _add_headers(response, served.path, request_id, elapsed, spent.db_seconds)
    access.record(response, served, state, request_id, elapsed, spent)
    return response


def _add_headers(
    response: Response, path: str, request_id: str, elapsed: float, db_seconds: float
) -> None:
    # Sent after the answer's own headers (responses.py): only the frame sends these four.
    frame = frame_of(response)
    frame += (
        ("X-Request-ID", request_id),
        ("X-Process-Time", f"{elapsed:.6f}"),
        ("Server-Timing", f"app;dur={elapsed * 1000:.2f}, db;dur={db_seconds * 1000:.2f}"),
        ("X-Content-Type-Options", "nosniff"),
    )
    # API answers are per user and change; only the docs' static assets may be cached.
    if not path.startswith("/static/"):
        if has_header(response, "Cache-Control"):
            del response.headers["Cache-Control"]
        frame.append(("Cache-Control", "no-store"))
    # A 204 has no content (RFC 9110 15.3.5), so no media type: flask-smorest labels the
    # DELETE's JSON and werkzeug a preflight's HTML.
    if response.status_code == 204:
        del response.headers["Content-Type"]


def init_app(app: Flask) -> None:
    """Register the frame's two hooks (before any other app hook), and its access line."""
    access.init_app(app)
    app.before_request(before)
    app.after_request(after)
