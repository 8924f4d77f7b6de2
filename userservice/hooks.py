"""Give every request an ID and a timer; add the standard headers; log and measure it."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request

from . import bearer, db, metrics

SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9\-._:]{1,128}")
EXTENSION_KEY = "userservice.hooks"
access_log = logging.getLogger("userservice.access")


@dataclass(slots=True)
class RequestFigures:
    """What one request spent on the database: made by start_request, read by finish_request."""

    statements: int = 0
    db_seconds: float = 0.0
    pool_wait: float = 0.0
    pool_timeouts: int = 0

    def add_statement(self, seconds: float) -> None:
        """Count one statement and the seconds it took."""
        self.statements += 1
        self.db_seconds += seconds

    def add_wait(self, seconds: float, *, timed_out: bool = False) -> None:
        """Count seconds spent waiting for a connection, and whether the wait gave up."""
        self.pool_wait += seconds
        self.pool_timeouts += timed_out


class ColdStart:
    """Answer True once per process: for the first request this app serves."""

    def __init__(self) -> None:
        self._first = threading.Lock()

    def take(self) -> bool:
        """Tell whether this is the first request, and make the next one not."""
        return self._first.acquire(blocking=False)


def start_request() -> None:
    """Pick the request ID and start the timer.

    The ID is the caller's X-Request-ID when it is a sane token, else (on Lambda) API
    Gateway's request ID, so the service's logs line up with API Gateway's, else a new UUID.
    """
    event = request.environ.get("lambda.event") or {}
    candidates = (
        request.headers.get("X-Request-ID", ""),
        str((event.get("requestContext") or {}).get("requestId", "")),
    )
    sane = (c for c in candidates if SANE_REQUEST_ID.fullmatch(c))
    g.request_id = next(sane, None) or new_request_id()
    g.started = time.perf_counter()
    g.figures = RequestFigures()


def new_request_id() -> str:
    """Return a random UUID4 string for a request that brought no usable ID.

    uuid.uuid4() makes an os.urandom system call per request; a request ID needs to be unique,
    not secret: `random` is seeded from os.urandom and reseeded after fork.
    """
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def finish_request(response: Response) -> Response:
    """Add the ID, timing and security headers; log the access line; emit metrics."""
    now = time.perf_counter()
    elapsed = now - g.get("started", now)
    # Absent when an earlier before_request hook answered first.
    spent: RequestFigures = g.get("figures") or RequestFigures()
    request_id = g.get("request_id") or new_request_id()
    _add_headers(response, request_id, elapsed, spent.db_seconds)
    settings = current_app.config["SETTINGS"]
    on_lambda = "lambda.context" in request.environ
    # Work done only for a reader: skipped when the access line is off and no metrics are sent.
    if not (on_lambda or settings.metrics_emf or access_log.isEnabledFor(logging.INFO)):
        return response
    route = f"{request.method} {request.url_rule.rule if request.url_rule else 'UNMATCHED'}"
    figures = {
        "duration_ms": round(elapsed * 1000, 2),
        "db_ms": round(spent.db_seconds * 1000, 2),
        "db_statements": spent.statements,
        "pool_wait_ms": round(spent.pool_wait * 1000, 2),
    }
    cold_start = current_app.extensions[EXTENSION_KEY].take()
    caller = bearer.caller_fields()
    access_log.info(
        "request",
        extra={
            "request_id": request_id,
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": response.status_code,
            **caller,
            **figures,
            **({"cold_start": cold_start} if on_lambda else {}),
        },
    )
    if settings.metrics_emf:
        _emit_metrics(route, response.status_code, figures, spent.pool_timeouts, cold_start, caller)
    return response


def _add_headers(response: Response, request_id: str, elapsed: float, db_seconds: float) -> None:
    # extend() appends; set() would first scan the headers for each name. Only this hook sends
    # these four.
    response.headers.extend(
        {
            "X-Request-ID": request_id,
            "X-Process-Time": f"{elapsed:.6f}",
            "Server-Timing": f"app;dur={elapsed * 1000:.2f}, db;dur={db_seconds * 1000:.2f}",
            "X-Content-Type-Options": "nosniff",
        }
    )
    # API answers are per user and change; only the docs' static assets may be cached.
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    # A 204 has no content (RFC 9110 15.3.5), so no media type: flask-smorest labels the
    # DELETE's JSON and werkzeug a preflight's HTML.
    if response.status_code == 204:
        del response.headers["Content-Type"]


def _emit_metrics(
    route: str,
    status: int,
    figures: dict[str, Any],
    pool_timeouts: int,
    cold_start: bool,
    caller: dict[str, str],
) -> None:
    pool = db.get().stats() or {}
    values = {
        "Latency": figures["duration_ms"],
        "DatabaseTime": figures["db_ms"],
        "DatabaseStatements": figures["db_statements"],
        "PoolWait": figures["pool_wait_ms"],
        "PoolTimeouts": pool_timeouts,
        "ColdStart": int(cold_start),
        **({"PoolInUse": pool["in_use"], "PoolWaiting": pool["waiting"]} if pool else {}),
    }
    settings = current_app.config["SETTINGS"]
    metrics.emit(
        metrics.record(
            environment=settings.environment,
            route=route,
            status=status,
            values=values,
            properties=caller,
        )
    )


def init_app(app: Flask) -> None:
    """Register the hooks."""
    app.extensions[EXTENSION_KEY] = ColdStart()
    app.before_request(start_request)
    app.after_request(finish_request)
