"""Open-loop load: GET one URL at a constant rate and time each answer from its intended send.

`python -m bench.openloop --rate 800 --connections 16 --seconds 15 http://127.0.0.1:8000/...`

A closed-loop generator (wrk) sends the next request only after an answer, so a stalled server
is asked less and its stall hides in few samples (coordinated omission). Here request i is due
at start + i / rate whatever the server does; a due request waits for a free keep-alive
connection, and its latency runs from when it was due, so waiting in line counts. No Debian
package holds a rate (wrk2 is not packaged), hence this one: one thread, epoll, HTTP/1.1.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Conn:
    """One keep-alive connection: the due time of its request in flight, and what it read."""

    sock: socket.socket
    due: float = 0.0
    buffer: bytes = b""


@dataclass
class Result:
    """Latencies (ms, from the due time) of every answer, and what went wrong."""

    rate: float
    connections: int
    seconds: float  # from the first due time to the last answer
    latencies_ms: list[float]  # of 2xx answers
    refused_ms: list[float]  # of every other answer (a 503 when the pool is exhausted)
    failures: int  # connections that closed
    late_ms: float  # how late the generator itself sent a request a free connection could take

    def summary(self) -> dict[str, float]:
        """Return the achieved rate, the percentiles and the worst wait, in ms."""
        ordered = sorted(self.latencies_ms) or [0.0]

        def at(share: float) -> float:
            return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

        return {
            "rate": self.rate,
            "connections": self.connections,
            "achieved": len(self.latencies_ms) / self.seconds,
            "p50_ms": at(0.50),
            "p99_ms": at(0.99),
            "p999_ms": at(0.999),
            "max_ms": ordered[-1],  # the longest any one request waited, queue included
            "refused": len(self.refused_ms),
            "refused_max_ms": max(self.refused_ms, default=0.0),
            "failures": self.failures,
            "generator_late_ms": self.late_ms,
        }


def run(url: str, *, rate: float, connections: int, seconds: float) -> Result:
    """Send GET `url` at `rate` per second over `connections` for `seconds`; time every answer."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {address[0]}\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    idle = deque(Conn(_connect(address)) for _ in range(connections))
    backlog: deque[float] = deque()
    latencies: list[float] = []
    refused: list[float] = []
    failures, late, sent, start = 0, 0.0, 0, time.perf_counter() + 0.05
    total, give_up = int(rate * seconds), start + seconds + 30
    while len(latencies) + len(refused) + failures < total and time.perf_counter() < give_up:
        now = time.perf_counter()
        if idle and not backlog and sent < total and start + sent / rate <= now:
            late = max(late, now - (start + sent / rate))  # the loop's own lag, not queueing
        while sent < total and start + sent / rate <= now:
            backlog.append(start + sent / rate)
            sent += 1
        while backlog and idle:
            conn = idle.popleft()
            conn.due = backlog.popleft()
            conn.sock.sendall(request)
            selector.register(conn.sock, selectors.EVENT_READ, conn)
        wait = start + sent / rate - time.perf_counter() if sent < total else 1.0
        for key, _ in selector.select(max(0.0, wait)):
            conn = key.data
            status = _read(conn)
            if status is None:
                continue
            selector.unregister(conn.sock)
            if status:
                elapsed = (time.perf_counter() - conn.due) * 1000
                (latencies if 200 <= status < 300 else refused).append(elapsed)
            else:
                failures += 1
                conn.sock.close()
                conn.sock, conn.buffer = _connect(address), b""
            idle.append(conn)
    for conn in [*idle, *(key.data for key in selector.get_map().values())]:
        conn.sock.close()
    elapsed = time.perf_counter() - start
    return Result(rate, connections, elapsed, latencies, refused, failures, late * 1000)


def _connect(address: tuple[str, int]) -> socket.socket:
    """Open one connection with Nagle off, as wrk does."""
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read(conn: Conn) -> int | None:
    """Read what has arrived: None until the answer is complete, then its status (0: closed)."""
    chunk = conn.sock.recv(65536)
    if not chunk:
        return 0
    conn.buffer += chunk
    head_end = conn.buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = conn.buffer[:head_end].decode("latin-1").lower()
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name == "content-length":
            length = int(value)
    if len(conn.buffer) < head_end + 4 + length:
        return None
    conn.buffer = b""
    return 0 if "connection: close" in head else int(head[9:12])


def main() -> None:
    """Run once from the command line and print the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    result = run(args.url, rate=args.rate, connections=args.connections, seconds=args.seconds)
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main()
