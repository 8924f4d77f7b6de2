"""Write the service's logs on stdout: JSON lines (one schema) or readable text."""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import g, has_request_context, request

from . import jsontext

# Attributes every LogRecord has; anything else was passed in `extra` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s%(fields)s"


class RequestContext(logging.Filter):
    """Stamp each record with the request it was logged in, its trace (and Lambda's request ID)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add request_id, trace_id, span_id and on Lambda aws_request_id, unless already there."""
        # Each lookup only for a field the record lacks: the access line brings its own.
        if has_request_context():
            if not hasattr(record, "request_id"):
                record.request_id = g.get("request_id")
            if not hasattr(record, "trace_id"):
                placed = g.get("trace")  # tracing.RequestTrace, set by the request's first hook
                if placed is not None:
                    record.trace_id, record.span_id = placed.trace_id, placed.span_id
            if not hasattr(record, "aws_request_id"):
                context = request.environ.get("lambda.context")
                if context is not None:
                    record.aws_request_id = getattr(context, "aws_request_id", None)
        return True


def fields(record: logging.LogRecord) -> dict[str, object]:
    """Return the fields a record carries beyond the standard ones."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return json_line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            fields(record),
            exception,
        )


def timestamp(created: float) -> str:
    """Return a time as RFC 3339 in UTC, to the microsecond: 2026-12-04T19:05:48.818978+00:00.

    The date and second are made once per second (a datetime and its isoformat took 1.25 us
    per line here); the microsecond is cut, not rounded, so it never reaches the next second.
    """
    whole = int(created)
    return f"{_second(whole)}.{int((created - whole) * 1_000_000):06d}+00:00"


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def json_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    extra: Mapping[str, object],
    exception: str | None = None,
) -> str:
    """Return one JSON log line: time, level, logger, message, request ID, then the fields."""
    entry = {
        "timestamp": timestamp(created),
        "level": level,
        "logger": logger,
        "message": message,
        "request_id": None,
        **extra,
    }
    if exception is not None:
        entry["exception"] = exception
    return jsontext.dumps(entry)


def sole_json_handler(logger: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """Return the handler configure() made, when it is the only one a record would reach.

    That is: the logger and its ancestors up to the first that does not propagate have no
    other handler and no filter, none is disabled, and the handler writes JSON lines with
    RequestContext as its only filter. A caller may then write the line itself (access.py),
    as that handler would, with no LogRecord; anything else (a handler a test or an operator
    added, the text format) gets records as usual.
    """
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.disabled or current.filters:
            return None
        for handler in current.handlers:
            if found is not None or handler.level > level:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or found is not _CONFIGURED.get("handler"):
        return None
    if len(found.filters) != 1 or not isinstance(found.filters[0], RequestContext):
        return None
    return found  # type: ignore[return-value]


_CONFIGURED: dict[str, logging.Handler] = {}


class TextFormatter(logging.Formatter):
    """Format a record as one readable line, its fields as key=value at the end."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as text."""
        extra = {k: v for k, v in fields(record).items() if k != "request_id"}
        record.fields = "".join(f" {k}={v}" for k, v in extra.items())
        record.request_id = getattr(record, "request_id", None) or "-"
        return super().format(record)


def configure(level: str, fmt: str = "json") -> None:
    """Send the service's logs to stdout at `level`, as JSON lines or text."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestContext())
    logger = logging.getLogger("userservice")
    logger.handlers[:] = [handler]
    if fmt == "json":  # RequestContext adds nothing to a line that brings its request's fields
        _CONFIGURED["handler"] = handler
    else:
        _CONFIGURED.pop("handler", None)
    logger.setLevel(level)
    logger.propagate = False
    # Neither format writes the thread's or process's name: do not look them up per record
    # (a greenlet lookup under gevent). gunicorn's own format does write the process ID.
    logging.logThreads = False
    logging.logMultiprocessing = False
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """Log an exception that ended a thread as one record, not a bare traceback on stderr.

    The Snowflake connector's own threads (a query's cancel timer, say) raise when the
    database stalls; Python would print each as many lines that no log reader can parse.
    """
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    logging.getLogger("userservice.threads").error(
        "a thread ended with %s",
        args.exc_type.__name__,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
