"""Profile `GET /api/v1/users/{id}` in-process: CPU per request, service against bare Flask.

Calls each WSGI app directly (no server, no test client) on the null connection, so the
figures are the apps' own CPU cost; then prints a pyinstrument profile of the service.
`python -m bench.profile_get [--cpu-only]`. Run it in a fresh process: a process holding many
other objects pays more per request in garbage collection.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import Any

from werkzeug.test import EnvironBuilder

PATH = "/api/v1/users/1"
ROUNDS = 7


def caller(app: Any, path: str = PATH) -> Callable[[], None]:
    """Return a function that makes one GET request to a WSGI app and drains the answer."""
    base = EnvironBuilder(path=path, headers={"User-Agent": "bench"}).get_environ()

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        pass

    def call() -> None:
        body = app({**base, "wsgi.input": io.BytesIO()}, start_response)
        try:
            b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()

    return call


def cpu_us(call: Callable[[], None], requests: int) -> float:
    """Return the least CPU microseconds per request over ROUNDS rounds (after a warm-up)."""
    for _ in range(requests // 10):
        call()
    best = float("inf")
    for _ in range(ROUNDS):
        began = time.thread_time()
        for _ in range(requests):
            call()
        best = min(best, (time.thread_time() - began) / requests)
    return best * 1e6


def cpu_per_request(requests: int = 5000) -> tuple[float, float]:
    """Return the CPU microseconds per request of the service and of the bare Flask app."""
    from bench import bare_wsgi, null_wsgi

    return cpu_us(caller(null_wsgi.app), requests), cpu_us(caller(bare_wsgi.app), requests)


def main(cpu_only: bool = False, requests: int = 5000) -> None:
    """Print CPU per request for both apps, then (unless cpu_only) the service's profile."""
    service_us, bare_us = cpu_per_request(requests)
    print(f"service {service_us:.0f} us/request, bare Flask {bare_us:.0f} us/request (CPU)")
    if cpu_only:
        return
    from pyinstrument import Profiler  # installed by bench.run

    from bench import null_wsgi

    service = caller(null_wsgi.app)
    profiler = Profiler(interval=0.0002)
    with profiler:
        for _ in range(requests * 2):
            service()
    print(profiler.output_text(color=False, unicode=False, time="percent_of_total"))


if __name__ == "__main__":
    main(cpu_only="--cpu-only" in sys.argv[1:])
