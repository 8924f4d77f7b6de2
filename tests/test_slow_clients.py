"""Slow clients over real gunicorn, on default settings: they never starve the service."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench.servers import call, emulator_env, gunicorn, read_until_closed
from bench.slow_clients import open_slow_clients
from userservice.settings import Settings

pytestmark = pytest.mark.slow

READ_TIMEOUT = Settings().read_timeout
SLOW = 64


def timed_get(port: int, path: str) -> tuple[int, float]:
    """GET a path on a new connection; return the status and the seconds it took."""
    started = time.monotonic()
    status = call(port, "GET", path)[0]
    return status, time.monotonic() - started


def test_the_default_read_timeout_is_at_most_ten_seconds():
    assert 1 <= READ_TIMEOUT <= 10


def test_64_slow_connections_neither_delay_a_request_nor_health(gunicorn_server):
    port, user = gunicorn_server
    slow = open_slow_clients(port, SLOW)
    try:
        time.sleep(0.5)  # every slow connection is accepted and stalled by now
        answers = [timed_get(port, f"/api/v1/users/{user['id']}") for _ in range(5)]
        answers += [timed_get(port, "/health") for _ in range(5)]
    finally:
        for _, sock in slow:
            sock.close()

    assert [status for status, _ in answers] == [200] * 10
    assert max(seconds for _, seconds in answers) < 1.0, answers


def test_every_kind_of_slow_connection_is_closed_after_the_read_timeout(gunicorn_server):
    port, _ = gunicorn_server
    opened = time.monotonic()
    slow = open_slow_clients(port, 6)
    trickler = socket.create_connection(("127.0.0.1", port), timeout=30)
    stop = threading.Event()

    def trickle() -> None:
        # Headers that never end, a byte every 0.2 s: no single read ever times out.
        trickler.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        while not stop.wait(0.2):
            try:
                trickler.sendall(b"a")
            except OSError:
                return

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        wait = READ_TIMEOUT + 10
        results = [(kind, *read_until_closed(sock, opened, wait)) for kind, sock in slow]
        results.append(("trickled headers", *read_until_closed(trickler, opened, wait)))
    finally:
        stop.set()
        thread.join(timeout=10)
        for _, sock in slow:
            sock.close()
        trickler.close()

    for kind, received, closed_after in results:
        assert closed_after is not None, f"{kind}: still open after {READ_TIMEOUT + 10} s"
        assert closed_after > READ_TIMEOUT - 1.5, (kind, closed_after)
        statuses = re.findall(rb"^HTTP/1\.1 (\d{3}) ", received, re.M)
        expected = {"partial headers": [], "trickled headers": [], "idle keep-alive": [b"200"]}
        assert statuses == expected.get(kind, [b"408"]), (kind, received)
        if kind == "trickled body":
            head, body = received.split(b"\r\n\r\n", 1)
            assert b"\r\nConnection: close\r\n" in head
            problem = json.loads(body)
            assert (problem["status"], problem["code"]) == (408, "REQUEST_TIMEOUT")


SLOTS = 20  # GUNICORN_WORKER_CONNECTIONS, lowered from 1000 to keep the test short
KEPT_ALIVE = 3
HALF_SENT_HEAD = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Half: "


def closed_unanswered(sock: socket.socket) -> bool:
    """Tell whether the server closed the connection, sending nothing, before the read timeout."""
    received, closed_after = read_until_closed(sock, time.monotonic(), READ_TIMEOUT - 1)
    return received == b"" and closed_after is not None


def small_worker(tmp_path: Path, log: Path) -> Any:
    """Start gunicorn with SLOTS connection slots, logging at INFO to `log`."""
    env = emulator_env(
        tmp_path / "emulator", GUNICORN_WORKER_CONNECTIONS=str(SLOTS), LOG_LEVEL="INFO"
    )
    return gunicorn(env, log)


def keep_alive(port: int) -> list[http.client.HTTPConnection]:
    """Return KEPT_ALIVE client connections, to be kept alive between requests."""
    return [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(KEPT_ALIVE)]


def fill_the_other_slots(port: int, start: bytes, opened: list[socket.socket]) -> None:
    """Take every slot the keep-alive connections left, each connection sending only `start`.

    The sockets go into `opened` as they are made, so the caller closes them whatever fails.
    """
    for _ in range(SLOTS - KEPT_ALIVE):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        opened.append(sock)
        sock.sendall(start)


def test_a_full_worker_closes_its_oldest_half_sent_connections_first(tmp_path):
    log = tmp_path / "gunicorn.log"
    with small_worker(tmp_path, log) as server:
        kept = keep_alive(server.port)
        half: list[socket.socket] = []
        try:
            for conn in kept:  # complete requests on keep-alive connections, left open
                conn.request("GET", "/health")
                response = conn.getresponse()
                assert (response.status, json.loads(response.read())["status"]) == (200, "ok")
            fill_the_other_slots(server.port, HALF_SENT_HEAD, half)  # heads never finished
            # The connection that took the last slot made the worker close the oldest one.
            assert closed_unanswered(half[0])

            # A new client is accepted and served; the next oldest half-sent one made room.
            assert call(server.port, "GET", "/health")[0] == 200
            assert closed_unanswered(half[1])

            # The other half-sent connections are still open: they finish and are answered.
            for sock in half[2:]:
                sock.sendall(b"1\r\nConnection: close\r\n\r\n")
            answers = [read_until_closed(sock, time.monotonic(), 10) for sock in half[2:]]
            # The keep-alive connections were not dropped either.
            for conn in kept:
                conn.request("GET", "/health")
                assert conn.getresponse().status == 200
        finally:
            for conn in kept:
                conn.close()
            for sock in half:
                sock.close()

    assert [received.split(b"\r\n", 1)[0] for received, _ in answers] == [b"HTTP/1.1 200 OK"] * (
        SLOTS - KEPT_ALIVE - 2
    )
    closing = "closed the oldest half-sent connection"
    assert log.read_text().count(closing) == 2
    assert_evictions_logged_quietly(log.read_text())


def assert_evictions_logged_quietly(text: str) -> None:
    """Each eviction is its one info line: no ERROR, no traceback (gevent's cancel_wait_ex)."""
    assert "Traceback" not in text
    assert "Socket error processing request" not in text
    assert "cancel_wait_ex" not in text
    assert '"level":"ERROR"' not in text
    assert "[ERROR]" not in text


TRICKLED_BODY_HEAD = b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{"


def test_a_full_worker_closes_its_oldest_connection_still_sending_a_body(tmp_path):
    log = tmp_path / "gunicorn.log"
    with small_worker(tmp_path, log) as server:
        kept = keep_alive(server.port)
        trickling: list[socket.socket] = []
        try:
            for conn in kept:  # whole requests with bodies on keep-alive connections, left open
                conn.request("POST", "/nope", body=b"{}", headers={"Content-Length": "2"})
                response = conn.getresponse()
                assert response.status == 404
                response.read()
            fill_the_other_slots(server.port, TRICKLED_BODY_HEAD, trickling)  # bodies unfinished
            for sock in trickling:  # a byte more each: every read stays within the timeout
                sock.sendall(b" ")
            # The connection that took the last slot made the worker close the oldest one.
            assert closed_unanswered(trickling[0])

            # A new client is accepted and served; the next oldest trickler made room.
            assert call(server.port, "GET", "/health")[0] == 200
            assert closed_unanswered(trickling[1])

            # The keep-alive connections were not dropped.
            for conn in kept:
                conn.request("GET", "/health")
                response = conn.getresponse()
                assert (response.status, json.loads(response.read())["status"]) == (200, "ok")
            # The other tricklers are still open: nothing was sent to them.
            for sock in trickling[2:]:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for conn in kept:
                conn.close()
            for sock in trickling:
                sock.close()

    text = log.read_text()
    assert text.count("closed the oldest half-sent connection") == 2
    assert_evictions_logged_quietly(text)
