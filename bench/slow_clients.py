"""Time-to-answer while slow clients hold connections open: `make bench` (about 30 s).

The service runs as `make run` starts it (gunicorn.conf.py, default settings, the embedded
emulator). For 16, 64 and 256 slow connections (partial headers, a trickled body and idle
keep-alive, in turn), 20 GET /api/v1/users/1 and 20 GET /health are timed, each on a new
connection, while the slow ones stay open; then the slow ones are closed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from servers import (  # noqa: E402
    call,
    emulator_env,
    free_port,
    gunicorn,
    open_slow_clients,
    timed_get,
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


if __name__ == "__main__":
    main()
