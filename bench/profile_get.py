"""Profile `GET /api/v1/users/{id}` in-process: CPU per request, service against bare Flask.

Calls each WSGI app directly (no server, no test client) on the null connection, so the
figures are the apps' own CPU cost; then prints a pyinstrument profile of the service.
`python -m bench.profile_get [--cpu-only | --hooks]`: `--hooks` gives each Flask hook's and
the view's CPU per request, access log off and then on (its lines to /dev/null). Run it in a
fresh process: a process holding many other objects pays more per request in garbage
collection.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from functools import wraps
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


def hook_costs(app: Any, requests: int = 3000) -> dict[str, float]:
    """Return CPU microseconds per request of each hook and view of `app`, and the total.

    Wraps the functions in Flask's public hook registries (`before_request_funcs`,
    `after_request_funcs`, `view_functions`) with a CPU timer; what is left of the total is
    Flask, werkzeug and the WSGI call itself.
    """
    spent: dict[str, float] = defaultdict(float)

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            began = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.thread_time() - began

        return call

    for kind, registry in (
        ("before", app.before_request_funcs),
        ("after", app.after_request_funcs),
    ):
        for scope, functions in registry.items():
            registry[scope] = [
                timed(f"{kind} {scope or 'app'}: {f.__qualname__}", f) for f in functions
            ]
    for endpoint, view in app.view_functions.items():
        app.view_functions[endpoint] = timed(f"view {endpoint}", view)
    call = caller(app)
    for _ in range(requests // 10):
        call()
    spent.clear()
    began = time.thread_time()
    for _ in range(requests):
        call()
    spent["total (WSGI call)"] = time.thread_time() - began
    return {name: seconds / requests * 1e6 for name, seconds in spent.items()}


def print_hook_costs() -> None:
    """Print each hook's CPU per request, access log off, then on (lines to /dev/null)."""
    from bench import null_wsgi, nulldb
    from userservice import create_app

    print("access log off:")
    _print_costs(hook_costs(null_wsgi.app))
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        logged = create_app(null_wsgi.settings("INFO"), connect=nulldb.connect(0))
        costs = hook_costs(logged)
    print("access log on:")
    _print_costs(costs)


def _print_costs(costs: dict[str, float]) -> None:
    for name, us in sorted(costs.items(), key=lambda item: -item[1]):
        if us >= 0.5:
            print(f"  {us:7.1f} us  {name}")


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
    if "--hooks" in sys.argv[1:]:
        print_hook_costs()
    else:
        main(cpu_only="--cpu-only" in sys.argv[1:])
