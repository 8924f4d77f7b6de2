"""Report each statement as an OpenTelemetry client span, a child of the request's span.

The span names the statement's file and says what it returned: never its bound values (an
email, say) and never an error's message, which may quote them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .connector import describe

tracer = trace.get_tracer("userservice.db")


def recording() -> bool:
    """Tell whether a span would be kept: with no SDK (or an unsampled request), never."""
    return trace.get_current_span().is_recording()


@contextmanager
def statement(file_name: str) -> Iterator[trace.Span]:
    """Open a client span for one statement of sql/; an error ends it as ERROR, by type only."""
    with tracer.start_as_current_span(
        file_name.removesuffix(".sql"),
        kind=SpanKind.CLIENT,
        attributes={"db.system": "snowflake", "userservice.sql_file": file_name},
        # The SDK's own exception event would carry the message, which may quote a value.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, describe(exc)))
            raise


def returned(span: trace.Span, cursor: Any, rows: int) -> None:
    """Add what a statement returned: its row count and Snowflake's query id, when given."""
    span.set_attribute("db.response.returned_rows", rows)
    query_id = getattr(cursor, "sfqid", None)
    if isinstance(query_id, str) and query_id:
        span.set_attribute("db.snowflake.query_id", query_id)
