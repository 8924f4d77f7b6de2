"""The body the worker hands the app (worker.TakingTurns): whole, and read with turns for others.

gunicorn's own request and body over a real loopback socket (gevent's, as the worker's are),
read by werkzeug as the app reads it; then the largest bodies over a real gunicorn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent import socket
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from test_framing import CHUNKED, JSON, exchange
from werkzeug.wsgi import LimitedStream

from userservice import worker

LIMIT = 1024 * 1024  # MAX_CONTENT_LENGTH's default
PIECE = worker.BODY_PIECE


class _Counted:
    """gunicorn's body, counting the reads the worker's body makes of it."""

    def __init__(self, body: Any) -> None:
        self.body, self.reads = body, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.body, name)

    def read(self, size: int | None = None) -> bytes:
        self.reads += 1
        data: bytes = self.body.read(size)
        return data

    def readline(self, size: int | None = None) -> bytes:
        self.reads += 1
        data: bytes = self.body.readline(size)
        return data


@pytest.fixture
def connected() -> Iterator[tuple[Any, Any]]:
    """A client socket and the server's end of it, on 127.0.0.1, with room for 1 MiB."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    for sock in (client, server):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * LIMIT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * LIMIT)
    yield client, server
    client.close()
    server.close()


def _received(client: Any, server: Any, data: bytes) -> _Counted:
    """Send what is given of a request, then return gunicorn's body of it, counted."""
    client.sendall(data)
    return _Counted(next(RequestParser(Config(), server, ("127.0.0.1", 0))).body)


def _read_taking_turns(body: worker.TakingTurns, length: int) -> tuple[bytes, list[object]]:
    """Read the body as werkzeug does, while another greenlet notes each turn it gets."""
    events: list[object] = []
    reading = True

    def other() -> None:
        while reading:
            events.append("other")
            gevent.sleep(0)

    original = body.read

    def noted(size: int | None = None) -> bytes:
        data = original(size)
        events.append(len(data))
        return data

    body.read = noted  # type: ignore[method-assign]
    waiting = gevent.spawn(other)
    gevent.sleep(0)  # the other greenlet is running, and waits for its next turn
    events.clear()
    # As werkzeug reads it under gunicorn (which sets wsgi.input_terminated): up to a maximum.
    data = LimitedStream(body, length, is_max=True).read()
    reading = False
    waiting.join()
    return data, events


def _pieces(events: list[object]) -> list[object]:
    """Return the sizes read, once sure the other greenlet ran once between every two reads."""
    assert events[1::2] == ["other"] * (len(events) // 2)
    return events[0::2]


def test_a_whole_body_in_the_socket_is_read_with_a_turn_for_others_between_two_pieces(
    connected,
):
    client, server = connected
    body = b'{"name": "' + b"a" * 300_000 + b'"}'
    head = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON
    counted = _received(client, server, head + b"Content-Length: %d\r\n\r\n" % len(body))
    client.sendall(body)  # all of it is in the server's socket before anything is read

    data, events = _read_taking_turns(worker.TakingTurns(counted, len(body), LIMIT), LIMIT)

    assert data == body
    # werkzeug reads until a read gives nothing; before each read but the first, a turn.
    assert _pieces(events) == [PIECE] * 4 + [len(body) - 4 * PIECE, 0]
    assert counted.reads == 2  # taken from gunicorn whole (one copy, not one a piece), then its end


def test_a_chunked_body_is_read_in_pieces_as_asked_with_a_turn_between_two(connected):
    client, server = connected
    body = b'{"name": "' + b"b" * 200_000 + b'"}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:150_000], body[150_000:]))
    head = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON + CHUNKED + b"\r\n"
    counted = _received(client, server, head + chunks + b"0\r\n\r\n")

    data, events = _read_taking_turns(worker.TakingTurns(counted, None, LIMIT), LIMIT)

    pieces = _pieces(events)
    assert data == body
    assert len(pieces) >= 4  # 200 kB in pieces of at most 64 KiB, then the end
    assert all(0 < piece <= PIECE for piece in pieces[:-1])  # type: ignore[operator]
    assert pieces[-1] == 0
    assert counted.reads == len(pieces)


def test_a_body_larger_than_the_limit_is_not_taken_whole(connected):
    client, server = connected
    body = b"c" * (LIMIT + 1)
    head = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON
    counted = _received(client, server, head + b"Content-Length: %d\r\n\r\n" % len(body))
    client.sendall(body[:PIECE])
    taking_turns = worker.TakingTurns(counted, len(body), LIMIT)

    assert taking_turns.read(10) == b"c" * 10
    assert counted.reads == 1  # as asked: nothing beyond what the read wanted
    assert taking_turns.failed is False  # gunicorn's flag, for the worker's Connection: close


def test_lines_and_reads_of_a_held_body_give_back_every_byte_in_order(connected):
    client, server = connected
    body = b"one\ntwo\n" + b"x" * 100 + b"\nlast"
    head = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON
    counted = _received(client, server, head + b"Content-Length: %d\r\n\r\n" % len(body))
    client.sendall(body)
    taking_turns = worker.TakingTurns(counted, len(body), LIMIT)

    assert taking_turns.readline() == b"one\n"
    assert taking_turns.read(2) == b"tw"
    assert taking_turns.readline(1) == b"o"
    assert taking_turns.readline() == b"\n"
    assert list(taking_turns) == [b"x" * 100 + b"\n", b"last"]
    assert taking_turns.read() == b""


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["length", "chunked"])
def test_a_body_just_under_the_limit_reaches_the_app_whole_over_gunicorn(gunicorn_server, shape):
    port, _ = gunicorn_server
    document = {"email": f"whole-{shape}@example.com", "name": "Whole"}
    # Valid JSON of 1 MiB less one byte: the fields, then spaces before the closing brace.
    text = json.dumps(document)[:-1]
    body = (text + " " * (LIMIT - 1 - len(text) - 1) + "}").encode()
    head = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON
    if shape == "length":
        data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    else:
        half = len(body) // 2
        parts = (body[:half], body[half:])
        data = head + CHUNKED + b"\r\n"
        data += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

    responses, _ = exchange(port, data)

    assert [r["status"] for r in responses] == [201]
    created = json.loads(responses[0]["body"])
    assert {k: created[k] for k in document} == document
