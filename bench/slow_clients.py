"""Time-to-answer while slow clients hold connections open: `python -m bench.slow_clients`.

The service runs as `make run` starts it (gunicorn.conf.py, default settings, the embedded
emulator). For 16, 64 and 256 slow connections (partial headers, a trickled body and idle
keep-alive, in turn), 20 GET /api/v1/users/1 and 20 GET /health are timed, each on a new
connection, while the slow ones stay open; then the slow ones are closed.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from pathlib import Path

from bench import servers
from bench.emulator import emulator_env

COUNTS = (0, 16, 64, 256)
ROUNDS = 20
# What a slow client sends before it goes quiet, one kind per connection in turn.
SLOW_REQUESTS = (
    b"GET /api/v1/users/1 HTTP/1.1\r\nHo",
    b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{",
    b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
)


def measure(port: int, count: int) -> dict[str, list[float]]:
    """Hold `count` slow connections open and time the two requests ROUNDS times each."""
    slow = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    try:
        for n, sock in enumerate(slow):
            sock.sendall(SLOW_REQUESTS[n % len(SLOW_REQUESTS)])
        time.sleep(0.5)
        times: dict[str, list[float]] = {"/api/v1/users/1": [], "/health": []}
        for _ in range(ROUNDS):
            for path, seconds in times.items():
                started = time.monotonic()
                status = servers.request(port, "GET", path)
                assert status == 200, (path, status)
                seconds.append(time.monotonic() - started)
        return times
    finally:
        for sock in slow:
            sock.close()


def main() -> None:
    """Print the figures as a Markdown table."""
    rows = []
    args = ["--config=gunicorn.conf.py", "wsgi:app"]
    with tempfile.TemporaryDirectory(prefix="userservice-bench-") as tmp:
        env, log = emulator_env(Path(tmp) / "data"), Path(tmp) / "gunicorn.log"
        with servers.gunicorn(args, env, log, "/health/ready") as server:
            user = {"email": "a@x.io", "name": "A"}
            assert servers.request(server.port, "POST", "/api/v1/users", user) == 201
            for count in COUNTS:
                for path, seconds in measure(server.port, count).items():
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
