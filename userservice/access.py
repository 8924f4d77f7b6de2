"""Log one access line per request, and hand its figures to metrics when EMF is on."""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Request, Response, current_app

from . import auth, logs, metrics, tracing
from .db import RequestFigures
from .problems import quoted_path
from .proxies import unproxied

EXTENSION_KEY = "userservice.access"
access_log = logging.getLogger("userservice.access")


@dataclass(slots=True)
class Handoff:
    """One Lambda invocation's single access line, between its thread and the deadline."""

    request_id: str | None = None
    trace: tracing.RequestTrace | None = None
    abandoned: bool = False
    recorded: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self) -> bool:
        """Claim the access line for the request's own answer, unless the deadline has."""
        with self.lock:
            self.recorded = not self.abandoned
            return self.recorded

    def abandon(self) -> bool:
        """Claim the access line for the deadline's 503, unless the answer has."""
        with self.lock:
            self.abandoned = not self.recorded
            return self.abandoned


# Set only on the thread that serves a Lambda invocation under its deadline (deadline.py).
HANDOFF: contextvars.ContextVar[Handoff | None] = contextvars.ContextVar("handoff", default=None)


class ColdStart:
    """Answer True once per process: for the first request this app serves."""

    def __init__(self) -> None:
        # next() on a count is one step under the GIL: two threads never both draw 0. A lock
        # would do as well, at the price of a lock per request (a Python one under gevent).
        self._served = itertools.count()

    def take(self) -> bool:
        """Tell whether this is the first request, and make the next one not."""
        return next(self._served) == 0


def record(
    response: Response,
    served: Request,
    state: Any,
    request_id: str,
    elapsed: float,
    spent: RequestFigures,
) -> None:
    """Log the access line of a finished request and emit its metrics.

    `served` and `state` are the request and its `g`, taken from their proxies once
    (proxies.py). A request whose invocation the deadline already answered gets a warning
    instead: one access line and one metrics record per request.
    """
    handoff = HANDOFF.get()
    if handoff is not None and not handoff.record():
        access_log.warning(
            "abandoned after deadline",
            extra={"request_id": request_id, "status": response.status_code},
        )
        return
    app = unproxied(current_app)
    settings = app.config["SETTINGS"]
    on_lambda = "lambda.context" in served.environ
    logged = access_log.isEnabledFor(logging.INFO)
    # Work done only for a reader: skipped when the access line is off and no metrics are sent.
    if not (on_lambda or settings.metrics_emf or logged):
        return
    method, rule = served.method, served.url_rule
    route = f"{method} {rule.rule if rule else 'UNMATCHED'}"
    figures = {
        "duration_ms": round(elapsed * 1000, 2),
        "db_ms": round(spent.db_seconds * 1000, 2),
        "db_statements": spent.statements,
        "pool_wait_ms": round(spent.pool_wait * 1000, 2),
    }
    cold_start = app.extensions[EXTENSION_KEY].take()
    caller = auth.caller_fields(state)
    if logged:
        line = {
            "request_id": request_id,
            "method": method,
            "route": route,
            "path": quoted_path(served.path),
            "status": response.status_code,
            **caller,
            **figures,
        }
        if state.get("idempotent_replay"):
            line["idempotent_replay"] = True
        if on_lambda:
            line.update(cold_start=cold_start, xray_trace_id=tracing.xray_root())
        placed: tracing.RequestTrace | None = state.get("trace")
        if placed is not None:  # as logs.RequestContext would add them, in the same order
            line.update(trace_id=placed.trace_id, span_id=placed.span_id)
        handler = None if on_lambda else logs.sole_json_handler(access_log, logging.INFO)
        if handler is None:
            _log_line(line)
        else:
            _write_line(handler, line)
    if settings.metrics_emf:
        metrics.emit_request(
            route, response.status_code, figures, spent.pool_timeouts, cold_start, caller
        )


def _log_line(fields: dict[str, object]) -> None:
    """Hand the access line to its handlers, as `access_log.info("request", extra=...)` would.

    Through the logger's public makeRecord and handle, with no caller lookup: Logger.info
    walks the stack for the file and line of the call, which no format writes.
    """
    line = access_log.makeRecord(
        access_log.name, logging.INFO, "", 0, "request", (), None, extra=fields
    )
    access_log.handle(line)


def _write_line(handler: logging.StreamHandler[Any], fields: dict[str, object]) -> None:
    """Write the access line as `handler` would write its record, with no LogRecord.

    Only for the service's own JSON handler when no other handler or filter would see the
    record (logs.sole_json_handler): its filter adds nothing to this line off Lambda, and
    its formatter makes the same JSON from the same fields (logs.json_line).
    """
    text = logs.json_line(time.time(), "INFO", access_log.name, "request", fields)
    handler.acquire()
    try:
        handler.stream.write(text + handler.terminator)
        handler.stream.flush()  # as handler.flush() would, without taking its lock again
    except RecursionError:
        raise
    except Exception:  # as StreamHandler.emit reports a failed write
        handler.handleError(
            access_log.makeRecord(
                access_log.name, logging.INFO, "", 0, "request", (), None, extra=fields
            )
        )
    finally:
        handler.release()


def publish(state: Any) -> None:
    """Hand the request's ID and trace (in its `g`) to the deadline, should it answer for it."""
    handoff = HANDOFF.get()
    if handoff is not None:
        handoff.request_id, handoff.trace = state.request_id, state.get("trace")


def init_app(app: Flask) -> None:
    """Count this app's first request as its cold start."""
    app.extensions[EXTENSION_KEY] = ColdStart()
