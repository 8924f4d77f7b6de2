"""Measure the Lambda adapter's warm overhead: microseconds per event over calling WSGI directly.

Both sides run the same app on the same request (GET /health, no database) in this process:
`handle(app, event, context)` for each shared/events shape, and werkzeug's test environ
passed straight to `app.wsgi_app`. Prints one Markdown table row per shape: the minimum over
rounds of the mean per call.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from lambda_events import CONTEXT, alb_event, http_event, rest_event  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from userservice import create_app  # noqa: E402
from userservice.lambda_adapter import handle  # noqa: E402
from userservice.settings import Settings  # noqa: E402

ROUNDS = 15
CALLS = 1_000


def timed_us(fn) -> float:
    """Return the mean microseconds per call of fn over CALLS calls."""
    started = time.perf_counter()
    for _ in range(CALLS):
        fn()
    return (time.perf_counter() - started) / CALLS * 1e6


def main() -> None:
    settings = Settings(
        snowflake_account="bench",
        snowflake_user="bench",
        snowflake_password="unused",
        log_level="CRITICAL",
    )
    app = create_app(settings)
    environ = EnvironBuilder(path="/health").get_environ()

    def direct() -> None:
        body = app.wsgi_app(dict(environ), lambda status, headers, exc_info=None: None)
        b"".join(body)
        getattr(body, "close", lambda: None)()

    shapes = {
        "API Gateway REST 1.0": rest_event(path="/health"),
        "HTTP API 2.0": http_event(raw_path="/health"),
        "function URL": http_event(raw_path="/health", function_url=True),
        "ALB multi-value": alb_event(multi_value=True, path="/health"),
        "ALB single-value": alb_event(multi_value=False, path="/health"),
    }
    calls = {"WSGI app called directly": direct}
    for name, event in shapes.items():
        assert handle(app, event, CONTEXT)["statusCode"] == 200, name
        calls[f"{name} through the adapter"] = lambda event=event: handle(app, event, CONTEXT)
    # Round-robin, so load from elsewhere on the machine falls on every label alike; the
    # minimum over rounds is the least disturbed figure.
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, fn in calls.items():
            samples[name].append(timed_us(fn))
    baseline = min(samples["WSGI app called directly"])
    for name, values in samples.items():
        best = min(values)
        extra = "" if best == baseline else f"+{best - baseline:.1f} µs"
        print(f"| {name} | {best:.1f} µs | {extra} |")


if __name__ == "__main__":
    main()
