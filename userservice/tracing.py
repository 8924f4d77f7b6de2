"""Continue the caller's W3C trace, and report each request as an OpenTelemetry server span.

Through the OpenTelemetry API only: with no SDK installed, every span is a no-op, and the
service makes the ids itself, so that its logs, each statement's QUERY_TAG and the
`traceresponse` header still carry one trace. An SDK (or the ADOT Lambda layer) that sets the
global tracer provider gets real spans with no change here. The statements' client spans are
the database layer's (db/spans.py).
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from typing import Any

from flask import Request, Response
from opentelemetry import context, trace
from opentelemetry.trace import (
    NonRecordingSpan,
    ProxyTracerProvider,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from .auth import Caller
from .responses import frame_of

tracer = trace.get_tracer("userservice")
# W3C Trace Context: version-traceid-parentid-flags, lower-case hex; a later version may add
# fields after a dash, version 00 may not, and ff is never valid.
TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
INVALID_IDS = frozenset({"0" * 32, "0" * 16})
# W3C Trace Context Level 2's response header: the trace and the service's own span in it.
RESPONSE_HEADER = "traceresponse"


@dataclass(slots=True)
class RequestTrace:
    """The request's place in its trace (hex, as W3C writes it), and its span when recorded."""

    trace_id: str
    span_id: str
    flags: str
    span: trace.Span | None = None
    token: object = None


def start(served: Request, state: Any) -> None:
    """Place the request in the caller's trace (a valid `traceparent`), else in a new one.

    `served` and `state` are the request and its `g`, taken from their proxies once (hooks.py).
    A malformed traceparent (or tracestate) is ignored, as W3C Trace Context says: never a 4xx.
    With no SDK (the global provider is still the API's proxy) no span is made at all: the ids
    are the service's own, which costs a few microseconds (docs/PERFORMANCE.md).
    """
    header = served.environ.get("HTTP_TRACEPARENT")
    caller = parse_traceparent(header) if header else None
    # Asked per request, not once at start: an SDK may set its provider after the app is made.
    if isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        state.trace = _untraced(caller)
    else:
        state.trace = _traced(served, caller)


def parse_traceparent(header: str) -> tuple[str, str, str] | None:
    """Return a valid traceparent's trace id, parent id and flags (hex), else None."""
    match = TRACEPARENT.fullmatch(header.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, extra = match.groups()
    if (
        version == "ff"
        or (version == "00" and extra)
        or trace_id in INVALID_IDS
        or parent_id in INVALID_IDS
    ):
        return None
    return trace_id, parent_id, flags


def _untraced(caller: tuple[str, str, str] | None) -> RequestTrace:
    """Make the request's ids when no SDK does: in the caller's trace, else a new one.

    Random, not secret, as request IDs are (hooks.new_request_id). A new trace takes both ids
    from one draw; an all-zero id (one chance in 2**64) is invalid in W3C, so it is drawn again.
    """
    if caller is not None:
        return RequestTrace(caller[0], f"{random.getrandbits(64) or 1:016x}", caller[2])
    ids = f"{random.getrandbits(192):048x}"
    if ids[:32] in INVALID_IDS or ids[32:] in INVALID_IDS:
        return _untraced(None)
    return RequestTrace(ids[:32], ids[32:], "00")


def _traced(served: Request, caller: tuple[str, str, str] | None) -> RequestTrace:
    """Open the request's server span in the SDK's tracer, and make it the current span.

    Its parent is the caller's span when a valid traceparent came (the W3C parent wins), else
    the span already current (the ADOT layer's invocation span on Lambda), else none.
    """
    parent = context.get_current()
    if caller is not None:
        trace_id, parent_id, flags = caller
        state = TraceState.from_header([served.headers.get("tracestate", "")])
        remote = SpanContext(
            int(trace_id, 16), int(parent_id, 16), True, TraceFlags(int(flags, 16)), state
        )
        parent = trace.set_span_in_context(NonRecordingSpan(remote))
    rule = served.url_rule.rule if served.url_rule else None
    span = tracer.start_span(
        f"{served.method} {rule}" if rule else served.method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": served.method,
            **({"http.route": rule} if rule else {}),
        },
    )
    own = span.get_span_context()
    token = context.attach(trace.set_span_in_context(span, parent))
    ids = f"{own.trace_id:032x}", f"{own.span_id:016x}", f"{own.trace_flags:02x}"
    return RequestTrace(*ids, span=span, token=token)


def finish(response: Response, state: Any) -> Response:
    """Give the response the trace it belongs to; give the span its status and caller, end it.

    `state` is the request's `g` (hooks.py). Flask runs this on every response, an error
    handler's and a 500's included (and again if a later hook fails), so the span ends here
    rather than in a teardown hook that every request would pay for with no SDK.
    """
    placed: RequestTrace | None = state.get("trace")
    if placed is None:
        return response
    # Sent with the frame's headers (responses.py): nothing else sends it.
    frame_of(response).append(
        (RESPONSE_HEADER, f"00-{placed.trace_id}-{placed.span_id}-{placed.flags}")
    )
    span, placed.span = placed.span, None
    if span is not None:
        _end(span, placed.token, response.status_code, state)
    return response


def _end(span: trace.Span, token: object, status: int, state: Any) -> None:
    """Record the answer's status and the caller's subject (never its token); end the span."""
    span.set_attribute("http.response.status_code", status)
    caller: Caller | None = state.get("caller")
    if caller is not None and caller.subject:
        span.set_attribute("enduser.id", caller.subject)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    context.detach(token)  # type: ignore[arg-type]


def xray_root() -> str | None:
    """Return the X-Ray trace root of this Lambda invocation, or None.

    Read from the environment per request, not from the settings: the Lambda runtime client
    sets _X_AMZN_TRACE_ID anew for every invocation (from Lambda-Runtime-Trace-Id).
    """
    header = os.environ.get("_X_AMZN_TRACE_ID", "")
    fields = dict(part.partition("=")[::2] for part in header.split(";") if "=" in part)
    return fields.get("Root") or None
