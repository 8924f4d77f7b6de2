"""Figure g: /health's latency on `make run` while lists run on the embedded emulator.

`python -m bench.emulator_stall`. DuckDB never yields to gevent's hub; the service runs emulator
statements on gevent's threadpool (userservice/db/emulator.py), so a list should not hold /health.
"""

from __future__ import annotations

import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import servers
from bench.report import Section

USERS = 300
LISTERS = 4
SECONDS = 10
LIST_PATH = "/api/v1/users?page_size=100"


def measure(tmp: Path, log: Path) -> Section:
    """Seed users, run lists from LISTERS connections, and time /health every 20 ms."""
    env = servers.emulator_env(tmp / "stall-data")
    with servers.gunicorn(env, log, probe="/health/ready") as server:
        for n in range(USERS):
            body = {"email": f"stall{n}@example.com", "name": f"User {n}"}
            servers.call(server.port, "POST", "/api/v1/users", body)
        health_alone = _health_times(server.port, seconds=3)
        stop, lists = threading.Event(), []
        listers = [
            threading.Thread(target=_list, args=(server.port, stop, lists)) for _ in range(LISTERS)
        ]
        for thread in listers:
            thread.start()
        health_busy = _health_times(server.port, seconds=SECONDS)
        stop.set()
        for thread in listers:
            thread.join()
    section = Section(
        "g. The embedded emulator under gevent",
        f"`make run`'s server (gunicorn.conf.py, wsgi:app, the emulator), {USERS} users, "
        f"`GET {LIST_PATH}` in a loop on {LISTERS} keep-alive connections, and `GET /health` "
        f"(no database) every 20 ms on one more, for {SECONDS} s; /health alone first.",
        ("request", "while", "count", "p50 ms", "p99 ms", "max ms"),
    )
    section.rows += [
        _cells("GET /health", "idle", health_alone),
        _cells("GET /health", f"{LISTERS} lists running", health_busy),
        _cells(f"GET {LIST_PATH}", f"{LISTERS} at once", lists),
    ]
    section.commands.append(f"{server.command} &")
    section.commands.append(".venv/bin/python -m bench.emulator_stall")
    return section


def _health_times(port: int, seconds: float) -> list[float]:
    """Return the latency (ms) of GET /health every 20 ms for `seconds`, one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        times.append((time.perf_counter() - began) * 1000)
        time.sleep(0.02)
    conn.close()
    return times


def _list(port: int, stop: threading.Event, times: list[float]) -> None:
    """List users in a loop until `stop`, noting each latency (ms)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        began = time.perf_counter()
        conn.request("GET", LIST_PATH)
        conn.getresponse().read()
        times.append((time.perf_counter() - began) * 1000)
    conn.close()


def _cells(request: str, while_: str, times: list[float]) -> tuple[str, ...]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        request,
        while_,
        str(len(ordered)),
        f"{statistics.median(ordered):.1f}",
        f"{p99:.1f}",
        f"{ordered[-1]:.1f}",
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="userservice-stall-") as tmp:
        print(measure(Path(tmp), Path(tmp) / "servers.log").markdown())
