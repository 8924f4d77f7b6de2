"""Log one access line per request, and hand its figures to metrics when EMF is on."""

from __future__ import annotations

import logging
import threading

from flask import Flask, Response, current_app, request

from . import auth, metrics, tracing
from .db import RequestFigures

EXTENSION_KEY = "userservice.access"
access_log = logging.getLogger("userservice.access")


class ColdStart:
    """Answer True once per process: for the first request this app serves."""

    def __init__(self) -> None:
        self._first = threading.Lock()

    def take(self) -> bool:
        """Tell whether this is the first request, and make the next one not."""
        return self._first.acquire(blocking=False)


def record(response: Response, request_id: str, elapsed: float, spent: RequestFigures) -> None:
    """Log the access line of a finished request and emit its metrics."""
    settings = current_app.config["SETTINGS"]
    on_lambda = "lambda.context" in request.environ
    # Work done only for a reader: skipped when the access line is off and no metrics are sent.
    if not (on_lambda or settings.metrics_emf or access_log.isEnabledFor(logging.INFO)):
        return
    route = f"{request.method} {request.url_rule.rule if request.url_rule else 'UNMATCHED'}"
    figures = {
        "duration_ms": round(elapsed * 1000, 2),
        "db_ms": round(spent.db_seconds * 1000, 2),
        "db_statements": spent.statements,
        "pool_wait_ms": round(spent.pool_wait * 1000, 2),
    }
    cold_start = current_app.extensions[EXTENSION_KEY].take()
    caller = auth.caller_fields()
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
            **(
                {
                    "cold_start": cold_start,
                    "xray_trace_id": tracing.xray_root(),
                }
                if on_lambda
                else {}
            ),
        },
    )
    if settings.metrics_emf:
        metrics.emit_request(
            route, response.status_code, figures, spent.pool_timeouts, cold_start, caller
        )


def init_app(app: Flask) -> None:
    """Count this app's first request as its cold start."""
    app.extensions[EXTENSION_KEY] = ColdStart()
