"""Answer a Lambda invocation before Lambda's deadline, whatever the database does."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from flask import Flask, g, request

from . import access, hooks, problems, tracing
from .errors import DatabaseUnavailable
from .lambda_adapter import handle
from .proxies import unproxied

# Left for handing the answer back to the runtime before Lambda stops the function.
MARGIN_SECONDS = 0.5
TOO_LATE = "the invocation's deadline came before the database answered"


def handle_in_time(app: Flask, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Run one event through app; answer 503 if the invocation would outrun its deadline.

    The service's own bounds (pool wait, connector and statement timeouts) keep a request
    within its time budget, but an invocation may have less time left than that (a short
    function timeout, or a late start); past the deadline Lambda kills the environment and
    the caller gets a bare 502. The event runs on a thread of its own; should it still be
    running MARGIN_SECONDS before the deadline, a 503 problem with Retry-After goes back in
    the front door's format, and the thread finishes (or fails) on its own.
    """
    remaining = context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS
    outcome: dict[str, Any] = {}
    handoff = access.Handoff()

    def run() -> None:
        try:
            outcome["answer"] = handle(app, event, context)
        except Exception as exc:  # handed to the runtime's thread, which reports it
            outcome["error"] = exc

    # The caller's context (its current span: the ADOT layer's invocation span) goes along.
    carried = contextvars.copy_context()
    carried.run(access.HANDOFF.set, handoff)
    worker = threading.Thread(target=carried.run, args=(run,), name="invocation", daemon=True)
    worker.start()
    worker.join(max(0.0, remaining))
    if "answer" not in outcome and not handoff.abandon():
        worker.join(MARGIN_SECONDS / 2)  # it has logged its answer: only the reply is left
    if "error" in outcome:
        raise outcome["error"]
    if "answer" in outcome:
        answer: dict[str, Any] = outcome["answer"]
        return answer
    return handle(_too_late(app, handoff), event, context)


def _too_late(app: Flask, handoff: access.Handoff) -> Any:
    """Return a WSGI app that answers with the service's 503 problem, as the request it ends.

    The answer carries the abandoned request's ID and trace (its log lines, traceresponse).
    """

    def answer(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with app.request_context(environ):
            served, state = unproxied(request), unproxied(g)
            hooks.start_request(environ, state)
            state.request_id = handoff.request_id or state.request_id
            if handoff.trace is None:
                tracing.start(served, state)
            else:  # the span is the request's thread's to end
                given = handoff.trace
                state.trace = tracing.RequestTrace(given.trace_id, given.span_id, given.flags)
            retry_after = app.config["SETTINGS"].db_retry_after
            late = DatabaseUnavailable(TOO_LATE, retry_after=retry_after)
            response = problems.handle_service_error(late)
            response = tracing.finish(hooks.finish_request(response, served, state), state)
        return response(environ, start_response)

    return answer
