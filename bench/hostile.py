"""Work out of proportion to input, at its worst: `python -m bench.hostile`.

The service runs as `make run` starts it (gunicorn.conf.py, default settings, the embedded
emulator). Each case is sent on its own connection, COUNT times in turn, and the worker's CPU
time (user + system, from /proc) is divided by COUNT: the largest header block gunicorn takes
(sent at once, and in 1 KiB pieces), the largest header block over the limit, and the largest
body the service refuses (a 900,000 character email inside a body under the 1 MiB limit). Then
50 of a case run at once while `GET /health` is timed on a new connection, 20 times.
"""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import servers
from bench.emulator import emulator_env

COUNT = 20
PARALLEL = 50
HEALTH_ROUNDS = 20
# gunicorn's defaults: 100 header fields of at most 8190 bytes each, the request line apart.
FIELDS, FIELD_SIZE = 100, 8190
TICKS = os.sysconf("SC_CLK_TCK")


def header_block(fields: int, size: int) -> bytes:
    """A GET /health whose header block holds `fields` fields of `size` bytes (with CRLF)."""
    line = b"X-Pad-%03d: " % 0
    value = b"a" * (size - len(line) - 2)
    pads = b"".join(b"X-Pad-%03d: " % n + value + b"\r\n" for n in range(fields - 1))
    return b"GET /health HTTP/1.1\r\nHost: t\r\n" + pads + b"\r\n"


def refused_body() -> bytes:
    """A POST whose one field is a 900,000 character address: refused for its length."""
    body = b'{"email": "' + b"a" * 900_000 + b'@example.com", "name": "A"}'
    head = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def send(port: int, data: bytes, piece: int = 0) -> bytes:
    """Send one request (at once, or `piece` bytes at a time); return the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if piece:
            for start in range(0, len(data), piece):
                sock.sendall(data[start : start + piece])
        else:
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received.split(b"\r\n", 1)[0]


def worker_cpu_seconds(server: servers.Server) -> float:
    """Return the worker's CPU time so far (user + system)."""
    pid = server.proc.pid
    worker = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0]
    fields = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_per_request(server: servers.Server, one: Callable[[], bytes]) -> tuple[float, bytes]:
    """Return the worker's CPU milliseconds per request, and the status line it answered."""
    status = one()  # warm up
    before = worker_cpu_seconds(server)
    for _ in range(COUNT):
        status = one()
    return (worker_cpu_seconds(server) - before) * 1000 / COUNT, status


def health_under(server: servers.Server, one: Callable[[], bytes]) -> list[float]:
    """Time GET /health (ms) while PARALLEL of the case run at once."""
    threads = [threading.Thread(target=one) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    times = []
    for _ in range(HEALTH_ROUNDS):
        started = time.monotonic()
        assert servers.request(server.port, "GET", "/health") == 200
        times.append((time.monotonic() - started) * 1000)
    for thread in threads:
        thread.join()
    return sorted(times)


def main() -> None:
    """Print the figures as a Markdown table."""
    args = ["--config=gunicorn.conf.py", "wsgi:app"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="userservice-bench-") as tmp:
        env, log = emulator_env(Path(tmp) / "data"), Path(tmp) / "gunicorn.log"
        with servers.gunicorn(args, env, log, "/health/ready") as server:
            port = server.port
            largest = header_block(FIELDS, FIELD_SIZE)
            cases: dict[str, Callable[[], bytes]] = {
                f"largest legal header block ({len(largest):,} bytes), at once": lambda: send(
                    port, largest
                ),
                "the same in 1 KiB pieces": lambda: send(port, largest, 1024),
                "one field over the limit of fields": lambda: send(
                    port, header_block(FIELDS + 1, FIELD_SIZE)
                ),
                "largest refused body (a 900,000 character email)": lambda: send(
                    port, refused_body()
                ),
            }
            for name, one in cases.items():
                cpu_ms, status = cpu_per_request(server, one)
                health = health_under(server, one)
                rows.append(
                    f"| {name} | `{status.decode()}` | {cpu_ms:.1f} | "
                    f"{statistics.median(health):.1f} | {health[-1]:.1f} |"
                )
    print("## Work out of proportion to input\n")
    print(__doc__.split("\n\n", 1)[1].strip(), "\n")
    print(
        f"| case | answer | worker CPU ms per request | /health median ms with {PARALLEL} "
        "running | /health max ms |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
