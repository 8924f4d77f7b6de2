"""The gunicorn internals userservice/worker.py relies on are still there, as pinned.

The worker's behaviour is proven over raw sockets against a real gunicorn (test_framing.py:
problem details at the door, redacted queries, Connection: close after an unread body;
test_slow_clients.py: the read timeout). These tests fail first, and say why, when a
gunicorn upgrade moves what the worker reaches past the public API.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import gevent
import gunicorn
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
