"""The service under gunicorn, with the project's gunicorn.conf.py, over real HTTP."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

from bench.servers import call, emulator_env, free_port, gunicorn

pytestmark = pytest.mark.slow


def test_create_read_delete_over_http_and_data_survives_a_restart(tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with gunicorn(emulator_env(tmp_path, LOG_LEVEL="INFO"), log, port=port) as server:
        status, headers, created = call(
            port, "POST", "/api/v1/users", {"email": "ada@example.com", "name": "Ada"}
        )
        assert status == 201
        assert headers["Location"] == f"/api/v1/users/{created['id']}"
        assert call(port, "GET", headers["Location"])[2] == created
    first_line = json.loads(server.output().splitlines()[0])
    assert first_line["message"] == (
        "using the embedded Snowflake emulator (fakesnow): one worker, 1000 connections; "
        f"data in {tmp_path}"
    )
    # Served with AUTH_ISSUER empty, its worker says so (flask commands do not, test_auth_setup).
    warnings = [line for line in server.output().splitlines() if "authentication is off" in line]
    assert [json.loads(line)["level"] for line in warnings] == ["WARNING"]

    with gunicorn(emulator_env(tmp_path, LOG_LEVEL="INFO"), log, port=port):
        status, _, read = call(port, "GET", f"/api/v1/users/{created['id']}")
        assert (status, read) == (200, created)
        assert call(port, "DELETE", f"/api/v1/users/{created['id']}")[0] == 204
        assert call(port, "GET", f"/api/v1/users/{created['id']}")[0] == 404


def test_a_worker_closes_its_connection_pool_when_it_exits(tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn(emulator_env(tmp_path, LOG_LEVEL="INFO"), log) as server:
        assert call(server.port, "GET", "/api/v1/users")[0] == 200
        (worker,) = server.workers()
    lines = server.output().splitlines()
    messages = [json.loads(line)["message"] for line in lines if line.startswith("{")]
    assert f"closed the connection pool of process {worker}" in messages


def test_a_connection_with_requests_waiting_takes_turns_with_the_others(tmp_path):
    # A keep-alive connection whose next requests are already in its socket never has to
    # wait to read, so without the worker's yield its greenlet would serve all of them before
    # any other connection got a turn. The access lines show the order requests were served.
    log = tmp_path / "gunicorn.log"
    with gunicorn(emulator_env(tmp_path, LOG_LEVEL="INFO"), log) as server:
        port, started = server.port, len(server.output())  # lines after it are this test's
        busy = socket.create_connection(("127.0.0.1", port), timeout=30)
        other = socket.create_connection(("127.0.0.1", port), timeout=30)
        for sock in (busy, other):  # both connections accepted and idle in the worker
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-ID: warm\r\n\r\n")
            assert _read_answer(sock).startswith(b"HTTP/1.1 200")
        pipelined = b"".join(
            b"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-ID: busy-%d\r\n\r\n" % n
            for n in range(PIPELINED)
        )
        # Read the busy connection's answers from the start, so the worker never waits (and
        # switches) on a full send buffer; the other request goes once the first answer is in.
        answering = threading.Event()
        draining = threading.Thread(target=_drain, args=(busy, answering))
        draining.start()
        busy.sendall(pipelined)
        assert answering.wait(30)  # the busy connection is being served
        other.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-ID: other\r\n\r\n")
        assert _read_answer(other).startswith(b"HTTP/1.1 200")
        served = _served_request_ids(server, started, until=f"busy-{PIPELINED - 1}")
        busy.shutdown(socket.SHUT_RDWR)
        draining.join()
        busy.close()
        other.close()
    position = served.index("other")
    assert served[:2] == ["warm", "warm"]
    assert served[2] == "busy-0"
    assert served.count("other") == 1
    assert len(served) == PIPELINED + 3
    # The other connection is served while the busy one still has most of its pipeline
    # waiting (measured here: 28th with the worker's turns; 53rd without them, where something
    # else made the busy greenlet wait). The exact turn order is proven in test_worker.py.
    assert position < PIPELINED // 2, served


# Far more pipelined requests than the worker serves in the time this test takes to send the
# other request, yet few enough (62 kB) to fit in the sockets' buffers.
PIPELINED = 1000


def _read_answer(sock: socket.socket) -> bytes:
    """Read one whole answer (head and Content-Length body) from a keep-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])
    while len(body) < length:
        body += sock.recv(65536)
    return received


def _drain(sock: socket.socket, answering: threading.Event) -> None:
    """Read a connection until it closes, setting `answering` at its first byte."""
    while sock.recv(65536):
        answering.set()


def _served_request_ids(server, started: int, until: str, seconds: float = 30) -> list[str]:
    """Read the access lines written since `started` until `until` is served; return the IDs."""
    deadline = time.monotonic() + seconds
    while True:
        whole_lines = server.output()[started:].split("\n")[:-1]
        records = [json.loads(line) for line in whole_lines if line.startswith("{")]
        served = [r["request_id"] for r in records if r["message"] == "request"]
        if until in served and "other" in served:
            return served
        assert time.monotonic() < deadline, f"not served within {seconds} s: {served}"
        time.sleep(0.05)
