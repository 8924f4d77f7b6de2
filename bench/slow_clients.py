"""Time-to-answer while slow clients hold connections open: `python -m bench.slow_clients`.

The service runs as `make run` starts it (gunicorn.conf.py, default settings, the embedded
emulator). For 16, 64 and 256 slow connections (partial headers, a trickled body and idle
keep-alive, in turn), 20 GET /api/v1/users/1 and 20 GET /health are timed, each on a new
connection, while the slow ones stay open; then the slow ones are closed.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import servers

COUNTS = (0, 16, 64, 256)
ROUNDS = 20
# What a slow client sends before it goes quiet, one kind per connection in turn.
SLOW_REQUESTS = {
    "partial headers": b"GET /api/v1/users/1 HTTP/1.1\r\nHo",
    "trickled body": (
        b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    ),
    "idle keep-alive": b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
}


def open_slow_clients(port: int, count: int) -> list[tuple[str, socket.socket]]:
    """Open `count` connections that each send part of a request (or one request) and stall."""
    opened = []
    kinds = list(SLOW_REQUESTS.items())
    for n in range(count):
        kind, data = kinds[n % len(kinds)]
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(data)
        opened.append((kind, sock))
    return opened


def measure(port: int, count: int) -> dict[str, list[float]]:
    """Hold `count` slow connections open and time the two requests ROUNDS times each."""
    slow = open_slow_clients(port, count)
    try:
        time.sleep(0.5)
        times: dict[str, list[float]] = {"/api/v1/users/1": [], "/health": []}
        for _ in range(ROUNDS):
            for path, seconds in times.items():
                started = time.monotonic()
                status = servers.call(port, "GET", path)[0]
                assert status == 200, (path, status)
                seconds.append(time.monotonic() - started)
        return times
    finally:
        for _, sock in slow:
            sock.close()


HALF_SENT = 1010  # past the default GUNICORN_WORKER_CONNECTIONS (1,000)
# What each held connection sends, by mode: a head never ended, or a body of 1 MB begun.
HELD = {
    "full": ("half-sent heads", SLOW_REQUESTS["partial headers"]),
    "body": (
        "trickled bodies",
        b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{",
    ),
}


def full_worker(mode: str = "full") -> None:
    """Time new GETs while HALF_SENT half-sent connections are held: `... slow_clients full`.

    `... slow_clients body`: each held connection has sent a whole head and the start of a
    1 MB body instead. Every held connection gets a byte every TRICKLE seconds meanwhile.
    """
    kind, data = HELD[mode]
    with tempfile.TemporaryDirectory(prefix="userservice-bench-") as tmp:
        env = servers.emulator_env(Path(tmp) / "data")
        with servers.gunicorn(env, Path(tmp) / "gunicorn.log", probe="/health/ready") as server:
            held: list[socket.socket] = []
            stop = threading.Event()
            try:
                for _ in range(HALF_SENT):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                    sock.sendall(data)
                    held.append(sock)
                trickler = threading.Thread(target=_trickle, args=(held, stop), daemon=True)
                trickler.start()
                ms = []
                for _ in range(ROUNDS):
                    started = time.monotonic()
                    status = servers.call(server.port, "GET", "/health")[0]
                    assert status == 200, status
                    ms.append((time.monotonic() - started) * 1000)
            finally:
                stop.set()
                for sock in held:
                    sock.close()
    ms.sort()
    print(
        f"| {HALF_SENT:,} {kind} | `GET /health` | {statistics.median(ms):.1f} | "
        f"{ms[int(len(ms) * 0.95) - 1]:.1f} | {ms[-1]:.1f} |"
    )


def _trickle(held: list[socket.socket], stop: threading.Event) -> None:
    """Send each held connection a byte every TRICKLE seconds: no read of it times out."""
    while not stop.wait(TRICKLE):
        for sock in held:
            with contextlib.suppress(OSError):  # closed by the worker already
                sock.sendall(b" ")


TRICKLE = 2.0  # seconds, under the default READ_TIMEOUT


def main() -> None:
    """Print the figures as a Markdown table."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="userservice-bench-") as tmp:
        env = servers.emulator_env(Path(tmp) / "data", LOG_LEVEL="INFO")
        with servers.gunicorn(env, Path(tmp) / "gunicorn.log", probe="/health/ready") as server:
            user = {"email": "a@x.io", "name": "A"}
            assert servers.call(server.port, "POST", "/api/v1/users", user)[0] == 201
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
    import sys

    full_worker(sys.argv[1]) if sys.argv[1:2] in (["full"], ["body"]) else main()
