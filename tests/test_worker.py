"""The gunicorn internals userservice/worker.py relies on are still there, as pinned.

The worker's behaviour is proven over raw sockets against a real gunicorn (test_framing.py:
problem details at the door, redacted queries, Connection: close after an unread body;
test_slow_clients.py: the read timeout). These tests fail first, and say why, when a
gunicorn upgrade moves what the worker reaches past the public API.
"""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import gevent
import gevent.socket
import gunicorn
import pytest
from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.http.body import ChunkedReader
from gunicorn.http.message import Message, Request
from gunicorn.http.parser import RequestParser
from gunicorn.http.wsgi import Response
from gunicorn.workers.base import Worker
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from userservice import headblock, worker

ROOT = Path(__file__).resolve().parents[1]


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_gunicorn_is_the_version_the_worker_is_pinned_to():
    pins = (ROOT / "requirements.txt").read_text().splitlines()

    assert "gunicorn==27.0.1" in pins
    assert gunicorn.__version__ == "27.0.1"
    assert "gunicorn==27.0.1" in inspect.getdoc(worker)


def test_gevent_workers_handle_only_makes_the_socket_blocking_before_asyncworkers():
    # The worker calls AsyncWorker.handle itself; skipping more than setblocking would lose work.
    source = inspect.getsource(GeventWorker.handle)
    code = [line.strip() for line in source.splitlines()[1:] if not line.strip().startswith("#")]

    assert code == ["client.setblocking(1)", "super().handle(listener, client, addr)"]
    assert GeventWorker.__mro__[1] is AsyncWorker
    assert parameters(AsyncWorker.handle) == ["self", "listener", "client", "addr"]


def test_handle_error_writes_its_page_to_the_client_it_is_given():
    source = inspect.getsource(Worker.handle_error)

    assert parameters(Worker.handle_error) == ["self", "req", "client", "addr", "exc"]
    assert "util.write_error(client, status_int, reason, mesg)" in source
    assert "sock.sendall(" in inspect.getsource(util.write)
    assert "write_nonblock(sock, http.encode('latin1'))" in inspect.getsource(util.write_error)


def test_the_socket_helpers_keep_their_signatures():
    assert parameters(util.write_nonblock) == ["sock", "data", "chunked"]
    assert parameters(util.close_graceful) == ["sock", "timeout", "max_drain"]


def test_start_response_is_bound_to_a_response_that_can_force_close():
    assert inspect.isfunction(Response.start_response)
    assert parameters(Response.force_close) == ["self"]
    assert "self.must_close = True" in inspect.getsource(Response.force_close)
    assert "self.must_close" in inspect.getsource(Response.should_close)


# headblock.py and door.py (the door's rules) reach these.


def test_request_parsers_build_their_mesg_class_and_the_head_is_read_through_read_into():
    assert RequestParser.mesg_class in (Request, headblock.LinearHeadRequest)
    assert "self.mesg_class(self.cfg, self.unreader" in inspect.getsource(RequestParser.__next__)
    assert parameters(Request.read_into) == ["self", "unreader", "buf", "stop"]
    python_parser = inspect.getsource(Request._parse_python)
    assert "self.read_into(unreader, buf)" in python_parser
    assert "len(data) > self.max_buffer_headers" in python_parser
    assert "self.max_buffer_headers" in inspect.getsource(Message.__init__)
    # The trailer section of a chunked body is bounded by the same figure.
    assert '"max_buffer_headers"' in inspect.getsource(ChunkedReader.__init__)


def test_installing_the_linear_head_makes_parsers_build_it():
    try:
        headblock.install()
        assert RequestParser.mesg_class is headblock.LinearHeadRequest
    finally:
        RequestParser.mesg_class = Request


def test_gunicorn_writes_100_continue_from_the_flag_the_door_clears():
    create = inspect.getsource(wsgi.create)

    assert "if req._expected_100_continue:" in create
    assert 'sock.send(b"HTTP/1.1 100 Continue\\r\\n\\r\\n")' in create
    assert '"wsgi.input": req.body' in inspect.getsource(wsgi.default_environ)
    assert "self._expected_100_continue = True" in inspect.getsource(Message._apply_header_policy)


def test_a_well_formed_version_gunicorn_refuses_is_a_tuple():
    assert "raise InvalidHTTPVersion(self.version)" in inspect.getsource(Request.parse_request_line)


def test_asyncworkers_keep_alive_loop_calls_handle_request_once_per_request():
    # worker.take_turns runs after each handle_request; if gunicorn served a connection's
    # requests some other way, connections would stop taking turns.
    source = inspect.getsource(AsyncWorker.handle)

    assert source.count("self.handle_request(listener_name, req, client, addr)") == 2
    assert parameters(AsyncWorker.handle_request) == [
        "self",
        "listener_name",
        "req",
        "sock",
        "addr",
    ]


def test_one_field_may_fill_the_header_block():
    settings = (ROOT / "gunicorn.conf.py").read_text()

    assert f"limit_request_field_size = {headblock.HEADER_BLOCK_LIMIT}" in settings

    assert worker.ReadTimeoutWorker.handle_request is not GeventWorker.handle_request


def test_take_turns_lets_every_ready_greenlet_run_before_it_returns():
    # Without the yield the serving greenlet would go on first; gevent's hub runs the others.
    order: list[str] = []
    waiting = [gevent.spawn(order.append, f"other-{n}") for n in range(3)]
    order.append("before")
    worker.take_turns()
    order.append("after")
    gevent.joinall(waiting)

    assert order == ["before", "other-0", "other-1", "other-2", "after"]


def test_the_gevent_worker_holds_worker_connections_and_serves_each_in_handle():
    # worker.HalfSent counts connections in handle against worker_connections: gevent's pool
    # of that size is what stops the accepting when every slot is taken.
    run = inspect.getsource(GeventWorker.run)

    assert "pool = Pool(self.worker_connections)" in run
    assert "spawn=pool" in run
    assert "self.worker_connections = self.cfg.worker_connections" in inspect.getsource(
        AsyncWorker.__init__
    )


class _Socket:
    """One end of a real connected pair; `shut` tells whether the worker shut it down."""

    def __init__(self) -> None:
        self.end, self.peer = socket.socketpair()
        self.peer.setblocking(False)

    def dup(self) -> socket.socket:
        return self.end.dup()

    @property
    def shut(self) -> bool:
        try:
            return self.peer.recv(1) == b""
        except BlockingIOError:
            return False


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)


def test_the_last_slot_taken_shuts_the_oldest_half_sent_connection_only():
    log = _Log()
    half_sent = worker.HalfSent(5, log)
    served, first, second, third = _Socket(), _Socket(), _Socket(), _Socket()
    half_sent.opened(served)
    half_sent.received(served)  # a keep-alive connection that finished a request
    for sock in (first, second, third):
        half_sent.opened(sock)
    assert not any(sock.shut for sock in (served, first, second, third))

    newest = _Socket()
    half_sent.opened(newest)  # the fifth of five slots
    assert [sock.shut for sock in (served, first, second, third, newest)] == [
        False,
        True,
        False,
        False,
        False,
    ]
    half_sent.ended(first)  # its greenlet ends: one slot free again
    half_sent.received(second)
    later = _Socket()
    half_sent.opened(later)  # the fifth slot again: second finished its head, third is next
    assert [sock.shut for sock in (served, second, third, newest, later)] == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert log.lines == ["closed the oldest half-sent connection: all 5 slots in use"] * 2


def test_a_full_worker_with_no_other_half_sent_connection_closes_nothing():
    half_sent = worker.HalfSent(2, _Log())
    served, newest = _Socket(), _Socket()
    half_sent.opened(served)
    half_sent.received(served)
    half_sent.opened(newest)

    assert (served.shut, newest.shut) == (False, False)


@pytest.mark.parametrize(
    ("data", "start", "bare"),
    [
        (b"GET / HTTP/1.1\r\nHost: t\r\n", 0, False),
        (b"GET / HTTP/1.1\nHost: t\r\n", 0, True),
        (b"\nGET", 0, True),
        (b"GET / HTTP/1.1\nHost: t\r\n", 16, False),  # the bare LF is before start
        (b"ab\r\nc\n", 3, True),
        (b"ab\r\nc", 3, False),  # the CRLF's LF is at start, its CR just before it
    ],
)
def test_a_bare_lf_is_found_from_start(data: bytes, start: int, bare: bool):
    assert headblock._bare_lf(bytearray(data), start) is bare


def test_a_connection_is_half_sent_again_while_its_body_is_unread():
    log = _Log()
    half_sent = worker.HalfSent(3, log)
    kept, posting = _Socket(), _Socket()
    for sock in (kept, posting):
        half_sent.opened(sock)
        half_sent.received(sock)  # both sent a whole head
    half_sent.receiving(posting)  # posting's next request has a body still to come

    newest = _Socket()
    half_sent.opened(newest)  # the last slot

    assert [sock.shut for sock in (kept, posting, newest)] == [False, True, False]
    assert log.lines == ["closed the oldest half-sent connection: all 3 slots in use"]


def test_a_body_read_whole_takes_its_connection_out_of_the_half_sent_ones():
    half_sent = worker.HalfSent(2, _Log())
    posting = _Socket()
    half_sent.opened(posting)
    body = worker.TakingTurns(_Body(b"{}"), None, 100, lambda: half_sent.received(posting))
    assert body.read(10) == b"{}"
    assert posting in half_sent.waiting  # not yet known to be whole
    assert body.read(10) == b""

    newest = _Socket()
    half_sent.opened(newest)

    assert (posting.shut, newest.shut) == (False, False)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int | None = None) -> bytes:
        size = len(self.data) if size is None else size
        piece, self.data = self.data[:size], self.data[size:]
        return piece


def test_a_shut_down_connection_wakes_its_waiting_read_with_the_end_not_an_error():
    # gevent's own shutdown wakes the read with cancel_wait_ex (EBADF), which gunicorn logs
    # as "Socket error processing request." with a traceback.
    end, peer = gevent.socket.socketpair()
    with end, peer:
        reading = gevent.spawn(end.recv, 10)
        gevent.sleep(0)  # the read is waiting
        worker._shut_down(end)

        assert reading.get(timeout=5) == b""
        assert peer.recv(1) == b""


def test_a_chunked_bodys_size_line_is_read_through_parse_chunk_size_and_read_into():
    # headblock.BoundedChunks replaces the chunked reader and checks each size line it reads.
    assert parameters(ChunkedReader.parse_chunk_size) == ["self", "unreader", "data"]
    assert parameters(ChunkedReader.read_into) == ["self", "unreader", "buf"]
    assert "self.read_into(unreader, buf)" in inspect.getsource(ChunkedReader.parse_chunk_size)
    assert "self.parse_chunk_size(unreader" in inspect.getsource(ChunkedReader.parse_chunked)
    assert "self.body = Body(ChunkedReader(self, self.unreader))" in inspect.getsource(
        Message.set_body_reader
    )
    assert headblock.LinearHeadRequest.set_body_reader is not Request.set_body_reader
