"""The gunicorn internals userservice/worker.py relies on are still there, as pinned.

The worker's behaviour is proven over raw sockets against a real gunicorn (test_framing.py:
problem details at the door, redacted queries, Connection: close after an unread body;
test_slow_clients.py: the read timeout). These tests fail first, and say why, when a
gunicorn upgrade moves what the worker reaches past the public API.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import gunicorn
from gunicorn import util
from gunicorn.http.wsgi import Response
from gunicorn.workers.base import Worker
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from userservice import worker

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
    assert worker.ReadTimeoutWorker.handle_request is not GeventWorker.handle_request
