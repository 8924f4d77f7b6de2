"""Work out of proportion to input, at its worst: `python -m bench.hostile`.

The service runs as `make run` starts it (gunicorn.conf.py, default settings, the embedded
emulator). Each case is sent on its own connection, COUNT times in turn, and the worker's CPU
time (user + system, from /proc) is divided by COUNT: the largest header block gunicorn takes
(sent at once, and in 1 KiB pieces), the largest header block over the limit, and the largest
body the service refuses (a 900,000 character email inside a body under the 1 MiB limit). Then
50 of a case run at once while `GET /health` is timed on a new connection, 20 times.

`python -m bench.hostile body` (or any words) runs only the cases whose name holds them all.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import servers

COUNT = 20
PARALLEL = 50
HEALTH_ROUNDS = 20
# The header block's limit (userservice/headblock.py), and gunicorn's limit of fields.
BLOCK, FIELDS = 65536, 100
TICKS = os.sysconf("SC_CLK_TCK")


def header_block(total: int, fields: int = FIELDS) -> bytes:
    """A GET /health whose head (request line, headers, blank line) is `total` bytes long."""
    head = b"GET /health HTTP/1.1\r\nHost: t\r\n"
    room = total - len(head) - 2
    size = room // (fields - 1)
    pads = [b"X-Pad-%03d: " % n for n in range(fields - 1)]
    lines = [pad + b"a" * (size - len(pad) - 2) + b"\r\n" for pad in pads]
    lines[-1] = lines[-1][:-2] + b"a" * (room - size * (fields - 1)) + b"\r\n"
    block = head + b"".join(lines) + b"\r\n"
    assert len(block) == total, len(block)
    return block


def refused_body() -> bytes:
    """A POST whose one field is a 900,000 character address: refused for its length."""
    body = b'{"email": "' + b"a" * 900_000 + b'@example.com", "name": "A"}'
    head = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def send(port: int, data: bytes, piece: int = 0) -> bytes:
    """Send one request (at once, or `piece` bytes at a time); return the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for start in range(0, len(data), piece or len(data)):
                sock.sendall(data[start : start + (piece or len(data))])
        except OSError:
            pass  # refused before all was sent
        received = b""
        try:
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass  # refused and closed before all was sent: the answer came first
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
        assert servers.call(server.port, "GET", "/health")[0] == 200
        times.append((time.monotonic() - started) * 1000)
    for thread in threads:
        thread.join()
    return sorted(times)


def main() -> None:
    """Print the figures as a Markdown table."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="userservice-bench-") as tmp:
        env, log = servers.emulator_env(Path(tmp) / "data"), Path(tmp) / "gunicorn.log"
        with servers.gunicorn(env, log, probe="/health/ready") as server:
            port = server.port
            largest, over = header_block(BLOCK), header_block(BLOCK + 1)
            # The largest gunicorn's default limits allowed: 100 fields of 8190 bytes.
            former = header_block(100 * 8192)
            cases: dict[str, Callable[[], bytes]] = {
                f"largest legal header block ({len(largest):,} bytes), at once": lambda: send(
                    port, largest
                ),
                "the same in 1 KiB pieces": lambda: send(port, largest, 1024),
                "one byte over the block limit": lambda: send(port, over),
                f"the former largest block ({len(former):,} bytes)": lambda: send(port, former),
                "largest refused body (a 900,000 character email)": lambda: send(
                    port, refused_body()
                ),
            }
            wanted = [word.lower() for word in sys.argv[1:]]
            for name, one in cases.items():
                if not all(word in name.lower() for word in wanted):
                    continue
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
