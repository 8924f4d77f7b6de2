"""Time-to-answer while slow clients hold connections open: `make bench` (about a minute).

The service runs as `make run` starts it (gunicorn.conf.py, default settings, the embedded
emulator). For 16, 64 and 256 slow connections (partial headers, a trickled body and idle
keep-alive, in turn), 20 GET /api/v1/users/1 and 20 GET /health are timed, each on a new
connection, while the slow ones stay open; then the slow ones are closed. For comparison,
the worker the service used before (gthread, 8 threads, no gunicorn.conf.py) is asked for
/health 3 times with a 3 s client timeout while 16 slow connections are open.
"""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from servers import (  # noqa: E402
    BIN,
    call,
    emulator_env,
    free_port,
    gunicorn,
    open_slow_clients,
    timed_get,
    wait_for_port,
)

COUNTS = (0, 16, 64, 256)
ROUNDS = 20


def measure(port: int, count: int) -> dict[str, list[float]]:
    """Hold `count` slow connections open and time the two requests ROUNDS times each."""
    slow = open_slow_clients(port, count)
    try:
        time.sleep(0.5)
        times: dict[str, list[float]] = {"/api/v1/users/1": [], "/health": []}
        for _ in range(ROUNDS):
            for path, seconds in times.items():
                status, took = timed_get(port, path)
                assert status == 200, (path, status)
                seconds.append(took)
        return times
    finally:
        for _, sock in slow:
            sock.close()


def gthread_baseline(data: str) -> str:
    """Time /health on the former gthread worker while 16 slow connections are open."""
    port = free_port()
    env = {**os.environ, **emulator_env(data), "HOST": "127.0.0.1", "PORT": str(port)}
    command = [str(BIN / "gunicorn"), "-c", os.devnull, "-k", "gthread", "--threads", "8"]
    command += ["-b", f"127.0.0.1:{port}", "wsgi:app"]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, proc)
        slow = open_slow_clients(port, 16)
        try:
            time.sleep(0.5)
            outcomes = [_health_within(port, 3.0) for _ in range(3)]
        finally:
            for _, sock in slow:
                sock.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return ", ".join(outcomes)


def _health_within(port: int, seconds: float) -> str:
    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds)
        connection.request("GET", "/health")
        status = connection.getresponse().status
        connection.close()
    except TimeoutError:
        return f"no answer within {seconds:g} s"
    return f"{status} in {(time.monotonic() - started) * 1000:.0f} ms"


def main() -> None:
    """Print the figures as a markdown table."""
    port = free_port()
    rows = []
    with tempfile.TemporaryDirectory() as data, gunicorn(port, emulator_env(data)):
        assert call(port, "POST", "/api/v1/users", {"email": "a@x.io", "name": "A"})[0] == 201
        for count in COUNTS:
            for path, seconds in measure(port, count).items():
                ms = sorted(s * 1000 for s in seconds)
                rows.append(
                    f"| {count} | `GET {path}` | {statistics.median(ms):.1f} | "
                    f"{ms[int(len(ms) * 0.95) - 1]:.1f} | {ms[-1]:.1f} |"
                )
    print("## Time to answer with slow clients holding connections\n")
    print(__doc__.split("\n\n", 1)[1].strip(), "\n")
    print("| slow connections | request | median ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    with tempfile.TemporaryDirectory() as data:
        before = gthread_baseline(data)
    print(f"\nThe former gthread worker, 16 slow connections, GET /health: {before}")


if __name__ == "__main__":
    main()
