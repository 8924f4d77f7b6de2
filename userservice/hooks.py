"""Give every request an ID and a timer, and log one access line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from . import queries

SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9\-._:]{1,128}")
access_log = logging.getLogger("userservice.access")


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
    g.request_id = next(sane, None) or str(uuid.uuid4())
    g.started = time.perf_counter()


def finish_request(response: Response) -> Response:
    """Add the ID and timing headers, and log the access line."""
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    statements, db_seconds = queries.stats()
    request_id = g.get("request_id") or str(uuid.uuid4())
    response.headers["X-Request-ID"] = request_id
    response.headers["X-Process-Time"] = f"{elapsed:.6f}"
    response.headers["Server-Timing"] = (
        f"app;dur={elapsed * 1000:.2f}, db;dur={db_seconds * 1000:.2f}"
    )
    access_log.info(
        "request",
        extra={
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2),
            "db_ms": round(db_seconds * 1000, 2),
            "db_statements": statements,
            **_lambda_fields(),
        },
    )
    return response


def _lambda_fields() -> dict[str, str]:
    """Return Lambda's own request ID for the access line, when running on Lambda."""
    context = request.environ.get("lambda.context")
    aws_request_id = getattr(context, "aws_request_id", None)
    return {"aws_request_id": aws_request_id} if aws_request_id else {}


def init_app(app: Flask) -> None:
    """Register the hooks."""
    app.before_request(start_request)
    app.after_request(finish_request)
