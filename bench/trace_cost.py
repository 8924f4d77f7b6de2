"""Measure what tracing adds with no OpenTelemetry SDK installed: CPU microseconds per request.

One process, one run, no SDK imported (checked): the service on the null connection
(bench/nulldb.py) answers GET /api/v1/users/1 (one statement) through `app.wsgi_app`, with a
valid `traceparent`, with none, and with tracing's steps taken out of the frame (the baseline, given
the same two requests).
The statement's own check (`db.spans.recording()`, one per statement) stays in all three, so
it is timed alone too and added. CPU time is `time.process_time()`; the cases run in
alternating rounds, and each figure is the median over rounds of the mean per request.
Prints a Markdown table.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable

from flask import Flask, Response, g, request

from bench import nulldb
from bench.auth_cost import PATH, cpu_us, requester
from bench.null_wsgi import settings
from userservice import create_app, db, hooks, tracing
from userservice.db import spans
from userservice.proxies import unproxied
from userservice.responses import frame_of

ROUNDS = 21
TARGET_US = 10
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def untraced(app: Flask) -> Flask:
    """Take tracing's steps out of an app's frame: what a request costs without them.

    The frame's hooks (hooks.before and hooks.after) are tracing's steps around
    hooks.open_request and hooks.close_request, which take their places.
    """
    for registry, traced, plain in (
        (app.before_request_funcs, hooks.before, _open),
        (app.after_request_funcs, hooks.after, _close),
    ):
        registry[None] = [plain if function is traced else function for function in registry[None]]
    return app


def _open() -> Response | None:
    return hooks.open_request(unproxied(request), unproxied(g))


def _close(response: Response) -> Response:
    return hooks.close_request(response, unproxied(request), unproxied(g))


def hooks_alone(app: Flask, headers: dict[str, str], *, run: bool = True) -> Callable[[], object]:
    """Return a function that runs tracing's two hooks in one request's context (or none)."""
    context = app.test_request_context(PATH, headers=headers)
    answer = Response("{}")

    def both() -> object:
        context.push()
        try:
            if run:
                state = unproxied(g)
                tracing.start(unproxied(request), state)
                tracing.finish(answer, state)
                frame_of(answer).clear()
            return answer
        finally:
            context.pop()

    return both


def measure() -> dict[str, list[float]]:
    """Time each case in alternating rounds; return the per-round means."""
    traced = create_app(settings(), connect=nulldb.connect(0))
    bare = untraced(create_app(settings(), connect=nulldb.connect(0)))
    cases: dict[str, Callable[[], object]] = {
        "no tracing hooks (baseline)": requester(bare, {}),
        # The same request with the header, to the same untraced app: what the header costs
        # the layers that read every header is not tracing's cost.
        "no tracing hooks, with a traceparent (baseline)": requester(
            bare, {"traceparent": TRACEPARENT}
        ),
        "traced, no traceparent": requester(traced, {}),
        "traced, with a traceparent": requester(traced, {"traceparent": TRACEPARENT}),
        "spans.recording() alone": spans.recording,
        "a request context's push and pop": hooks_alone(traced, {}, run=False),
        "the hooks alone, no traceparent": hooks_alone(traced, {}),
        "the hooks alone, with a traceparent": hooks_alone(traced, {"traceparent": TRACEPARENT}),
    }
    for case in cases.values():
        case()
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, case in cases.items():
            rounds[name].append(cpu_us(case))
    for app in (traced, bare):
        db.get_from(app).close()
    assert not [m for m in sys.modules if m.startswith("opentelemetry.sdk")], "an SDK is loaded"
    return rounds


def report(rounds: dict[str, list[float]]) -> None:
    """Print the figures as Markdown."""
    median = {name: statistics.median(values) for name, values in rounds.items()}
    base, check = median["no tracing hooks (baseline)"], median["spans.recording() alone"]
    print(f"CPU per request, {ROUNDS} rounds, median of round means; no OpenTelemetry SDK\n")
    print(f"| case | CPU µs / request | added by tracing | at most {TARGET_US} µs |")
    print("|---|---|---|---|")
    based = "no tracing hooks, with a traceparent (baseline)"
    baselines = {"traced, no traceparent": base, "traced, with a traceparent": median[based]}
    print(f"| no tracing hooks (baseline) | {base:.1f} | | |")
    print(f"| {based} | {median[based]:.1f} | | |")
    for name in ("traced, no traceparent", "traced, with a traceparent"):
        # Each against the baseline given the same request; it pays the statement's check too.
        added = median[name] - baselines[name] + check
        within = "yes" if added <= TARGET_US else "NO"
        print(f"| {name} | {median[name]:.1f} | {added:.1f} | {within} |")
    print(f"| spans.recording() alone (per statement) | {check:.2f} | {check:.2f} | |")
    bare_context = median["a request context's push and pop"]
    for name in ("the hooks alone, no traceparent", "the hooks alone, with a traceparent"):
        added = median[name] - bare_context + check
        within = "yes" if added <= TARGET_US else "NO"
        print(f"| {name} (less a context push and pop) | | {added:.1f} | {within} |")


if __name__ == "__main__":
    report(measure())
