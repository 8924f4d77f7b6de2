"""Open-loop load: GET one URL at a constant rate and time each answer from its intended send.

`python -m bench.openloop --rate 800 --connections 16 --seconds 15 http://127.0.0.1:8000/...`

A closed-loop generator (wrk) sends the next request only after an answer, so a stalled server
is asked less and its stall hides in few samples (coordinated omission). Here request i is due
at start + i / rate whatever the server does; a due request waits for a free keep-alive
connection, and its latency runs from when it was due, so waiting in line counts. Every
connection has answered one request, untimed, before the first is due. No Debian package
holds a rate (wrk2 is not packaged), hence this one: one thread, epoll, HTTP/1.1.
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
    return _Generator(url, rate, connections).run(int(rate * seconds), seconds + 30)


class _Generator:
    """One thread and one epoll: due requests go out on idle connections, answers are timed."""

    def __init__(self, url: str, rate: float, connections: int) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {self.address[0]}\r\n\r\n"
        self.rate, self.connections = rate, connections
        self.selector = selectors.DefaultSelector()
        self.idle = deque(self._opened() for _ in range(connections))
        self.backlog: deque[float] = deque()
        self.latencies: list[float] = []
        self.refused: list[float] = []
        self.failures, self.late, self.sent = 0, 0.0, 0
        self.start = time.perf_counter() + 0.05

    def _opened(self) -> Conn:
        """Open a connection and have it answer one request, untimed, before the schedule starts.

        A connection the kernel has accepted may not be the server's yet: a worker takes
        256 new connections one by one, and the first requests of a run waited for that
        (measured: up to 90 ms of every run's p99.9 and max over 256 connections, 7 ms when
        the connections had been answered once). The run times requests, not connection set-up.
        """
        conn = Conn(_connect(self.address))
        conn.sock.sendall(self.request.encode())
        status = None
        while status is None:
            status = _read(conn)
        if not status:
            raise RuntimeError(f"the server closed a new connection to {self.address}")
        return conn

    def due(self, n: int) -> float:
        """Return when request n is due."""
        return self.start + n / self.rate

    def run(self, total: int, give_up_after: float) -> Result:
        """Send `total` requests on schedule, read every answer, and return the figures."""
        give_up = self.start + give_up_after
        while self.answered < total and time.perf_counter() < give_up:
            self._send_due(total)
            wait = self.due(self.sent) - time.perf_counter() if self.sent < total else 1.0
            for key, _ in self.selector.select(max(0.0, wait)):
                self._receive(key.data)
        for conn in [*self.idle, *(key.data for key in self.selector.get_map().values())]:
            conn.sock.close()
        elapsed = time.perf_counter() - self.start
        return Result(
            self.rate,
            self.connections,
            elapsed,
            self.latencies,
            self.refused,
            self.failures,
            self.late * 1000,
        )

    @property
    def answered(self) -> int:
        """Count the requests answered or failed so far."""
        return len(self.latencies) + len(self.refused) + self.failures

    def _send_due(self, total: int) -> None:
        """Queue every request now due, and send queued ones on the idle connections."""
        now = time.perf_counter()
        if self.idle and not self.backlog and self.sent < total and self.due(self.sent) <= now:
            self.late = max(self.late, now - self.due(self.sent))  # own lag, not queueing
        while self.sent < total and self.due(self.sent) <= now:
            self.backlog.append(self.due(self.sent))
            self.sent += 1
        while self.backlog and self.idle:
            conn = self.idle.popleft()
            conn.due = self.backlog.popleft()
            conn.sock.sendall(self.request.encode())
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _receive(self, conn: Conn) -> None:
        """Read what arrived on `conn`; time a complete answer and make the connection idle."""
        status = _read(conn)
        if status is None:
            return
        self.selector.unregister(conn.sock)
        if status:
            elapsed = (time.perf_counter() - conn.due) * 1000
            (self.latencies if 200 <= status < 300 else self.refused).append(elapsed)
        else:  # closed: count it, and open a new connection in its place
            self.failures += 1
            conn.sock.close()
            conn.sock, conn.buffer = _connect(self.address), b""
        self.idle.append(conn)


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
