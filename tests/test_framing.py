"""Framing over real gunicorn and raw sockets: exactly one answer per request, never a 500."""

from __future__ import annotations

import json
import re
import socket
import time
from http import HTTPStatus
from typing import Any

import pytest
from conftest import PROBLEM_KEYS

from bench.servers import call, emulator_env, gunicorn, read_until_closed
from userservice.settings import Settings

pytestmark = pytest.mark.slow

HEALTH = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
JSON = b"Content-Type: application/json\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
BODY = b'{"email": "z@example.com", "name": "Z"}'
# Broken chunked bodies, and the family around them; each follows a chunked header block.
BROKEN_CHUNKS = {
    "size zz": b"zz\r\n" + BODY + b"\r\n0\r\n\r\n",
    "size with a trailing space": b"%x \r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
    "data without its CRLF": b"%x\r\n" % len(BODY) + BODY + b"XX0\r\n\r\n",
    "malformed trailer": b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\nno colon\r\n\r\n",
    "negative size": b"-1\r\n" + BODY + b"\r\n0\r\n\r\n",
    "size with 0x": b"0x%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
    "size with a leading space": b" %x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
    "size with a plus sign": b"+%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
    "bare LF after the size": b"%x\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
    "chunk extension without a name": b"%x;\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
}
ROUTES = [
    (b"POST", b"/api/v1/users"),
    (b"PUT", b"/api/v1/users/1"),
    (b"PATCH", b"/api/v1/users/1"),
    (b"GET", b"/api/v1/users/1"),
    (b"DELETE", b"/api/v1/users/1"),
    (b"GET", b"/api/v1/users"),
    (b"GET", b"/health"),
]


def exchange(port: int, data: bytes, seconds: float = 10) -> tuple[list[dict], bool]:
    """Send raw bytes; return every response read and whether the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(data)
        received = b""
        closed = False
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if _complete(received, data.count(b" HTTP/1.")):
                    break
            else:
                closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
        if not closed:
            sock.settimeout(1.0)
            try:
                closed = sock.recv(1) == b""
            except TimeoutError:
                closed = False
            except ConnectionResetError:
                closed = True
    return parse(received), closed


def _complete(received: bytes, most: int) -> bool:
    return len(parse(received)) >= most


def parse(stream: bytes) -> list[dict]:
    """Split a byte stream into HTTP/1.1 responses framed by Content-Length."""
    responses = []
    while stream:
        head, sep, rest = stream.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"a partial response: {stream[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(re.fullmatch(r"HTTP/1\.[01] (\d{3}) .*", lines[0]).group(1))
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers.get("Content-Length", 0))
        body, stream = rest[:length], rest[length:]
        if len(body) < length:
            return responses  # more is coming
        responses.append({"status": status, "headers": headers, "body": body})
    return responses


def assert_problem(response: dict, status: int, code: str) -> dict:
    assert response["status"] == status, response
    assert response["headers"]["Content-Type"] == "application/problem+json"
    problem = json.loads(response["body"])
    assert list(problem)[:7] == PROBLEM_KEYS
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["request_id"] == response["headers"]["X-Request-ID"]
    return problem


def unchanged(port: int, user: dict) -> None:
    status, _, page = call(port, "GET", "/api/v1/users")
    assert (status, page) == (200, [user])


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: b" ".join(r).decode())
@pytest.mark.parametrize("shape", BROKEN_CHUNKS, ids=str)
def test_broken_chunked_framing_is_one_400_then_close_on_every_route(gunicorn_server, route, shape):
    port, user = gunicorn_server
    method, path = route
    request = method + b" " + path + b" HTTP/1.1\r\nHost: t\r\n" + JSON + CHUNKED + b"\r\n"

    responses, closed = exchange(port, request + BROKEN_CHUNKS[shape] + HEALTH)

    assert len(responses) == 1, responses
    assert_problem(responses[0], 400, "MALFORMED_BODY")
    assert responses[0]["headers"]["Connection"] == "close"
    assert closed
    unchanged(port, user)


SMUGGLED = b"DELETE /api/v1/users/1 HTTP/1.1\r\nHost: t\r\n\r\n"
BODIES_NOT_READ = {
    "GET with a chunked body": b"GET /api/v1/users/1 HTTP/1.1\r\nHost: t\r\n"
    + CHUNKED
    + b"\r\n5\r\nhello\r\n0\r\n\r\n",
    "GET with a Content-Length body": b"GET /api/v1/users/1 HTTP/1.1\r\nHost: t\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "DELETE of no user with a chunked body": b"DELETE /api/v1/users/9 HTTP/1.1\r\nHost: t\r\n"
    + CHUNKED
    + b"\r\n5\r\nhello\r\n0\r\n\r\n",
    "DELETE of no user with a Content-Length body": b"DELETE /api/v1/users/9 HTTP/1.1\r\n"
    b"Host: t\r\nContent-Length: 5\r\n\r\nhello",
    "GET with a body that looks like a request": b"GET /health HTTP/1.1\r\nHost: t\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED),
}


@pytest.mark.parametrize("shape", BODIES_NOT_READ, ids=str)
def test_a_body_the_view_ignores_is_drained_and_the_next_request_is_answered(
    gunicorn_server, shape
):
    port, user = gunicorn_server

    responses, _ = exchange(port, BODIES_NOT_READ[shape] + HEALTH)

    assert [r["status"] for r in responses] in ([200, 200], [404, 200]), responses
    assert json.loads(responses[1]["body"]) == {"status": "ok"}
    unchanged(port, user)


CHUNK = b"x" * 65536
OVER_THE_LIMIT = {
    "streamed": CHUNKED + b"\r\n" + (b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n") * 17,
    "declared": b"Content-Length: %d\r\n\r\n" % (17 * len(CHUNK)) + CHUNK * 17,
}


def assert_one_413_then_close(responses: list[dict], closed: bool) -> None:
    assert len(responses) == 1, responses
    assert_problem(responses[0], 413, "PAYLOAD_TOO_LARGE")
    assert responses[0]["headers"]["Connection"] == "close"
    assert closed


LIMIT = Settings().max_content_length
# Chunk sizes that already declare more than the limit; what follows is never sent, so the
# server could only answer 408 after its read timeout if it waited for it.
DECLARED_OVER_THE_LIMIT = {
    "one size over the limit": b"%x\r\n{}" % (LIMIT + 1),
    "sizes adding up over the limit": b"2\r\n{}\r\n%x\r\n{" % (LIMIT - 1),
    "20,000 hex digits": b"F" * 20000 + b"\r\n{}",
    "60,000 hex digits, no line end yet": b"1" + b"0" * 59999,
    "one digit more than the limit has": b"1" + b"0" * len(f"{LIMIT:x}") + b"\r\n{}",
}


@pytest.mark.parametrize("shape", DECLARED_OVER_THE_LIMIT, ids=str)
def test_chunk_sizes_declaring_more_than_the_limit_are_one_413_at_once(gunicorn_server, shape):
    port, user = gunicorn_server
    request = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON + CHUNKED + b"\r\n"

    responses, closed = exchange(port, request + DECLARED_OVER_THE_LIMIT[shape])

    assert_one_413_then_close(responses, closed)
    unchanged(port, user)


def test_a_chunk_size_with_leading_zeros_is_read_as_its_value(gunicorn_server):
    port, user = gunicorn_server
    # The fixture's own user again: read whole and parsed, it is a conflict and writes nothing.
    body = json.dumps({"email": user["email"], "name": user["name"]}).encode()
    chunked = b"0" * 40 + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    request = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON + CHUNKED + b"\r\n"

    responses, _ = exchange(port, request + chunked + HEALTH)

    assert [response["status"] for response in responses] == [409, 200]
    unchanged(port, user)


@pytest.mark.parametrize("method", [b"GET", b"POST", b"DELETE"])
@pytest.mark.parametrize("shape", OVER_THE_LIMIT, ids=str)
def test_a_body_over_the_limit_is_one_413_then_close(gunicorn_server, method, shape):
    port, user = gunicorn_server
    path = b"/api/v1/users" if method == b"POST" else b"/api/v1/users/1"
    request = method + b" " + path + b" HTTP/1.1\r\nHost: t\r\n" + JSON + OVER_THE_LIMIT[shape]

    responses, closed = exchange(port, request + b"0\r\n\r\n" + HEALTH)

    assert_one_413_then_close(responses, closed)
    unchanged(port, user)


def test_http_1_1_without_host_is_400_and_http_1_0_without_host_is_served(gunicorn_server):
    port, _ = gunicorn_server

    (refused,), _ = exchange(port, b"GET /health HTTP/1.1\r\n\r\n")
    (served,), _ = exchange(port, b"GET /health HTTP/1.0\r\n\r\n")

    assert_problem(refused, 400, "HOST_REQUIRED")
    assert served["status"] == 200


GUNICORN_REFUSES = {
    "two Content-Type headers": (
        b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON + b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        400,
    ),
    "two Host headers": (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "Content-Length and Transfer-Encoding": (
        b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n"
        + JSON
        + b"Content-Length: 5\r\n"
        + CHUNKED
        + b"\r\n0\r\n\r\n",
        400,
    ),
    "two Content-Lengths": (
        b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}",
        400,
    ),
    "an unknown transfer coding": (
        b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON + b"Transfer-Encoding: foo\r\n\r\n",
        501,
    ),
    "a malformed request line": (b"GET /health\r\nHost: t\r\n\r\n", 400),
    "a malformed HTTP version": (b"GET /health HTTP/1\r\nHost: t\r\n\r\n", 400),
    "a space in a header name": (b"GET /health HTTP/1.1\r\nHost: t\r\nX A: 1\r\n\r\n", 400),
    "obsolete line folding": (b"GET /health HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n b\r\n\r\n", 400),
    "a bare LF": (b"GET /health HTTP/1.1\nHost: t\n\n", 400),
    "a request line over 4094 bytes": (
        b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        414,
    ),
    "a header block over 64 KiB": (
        b"GET /health HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 66000 + b"\r\n\r\n",
        431,
    ),
    "a header block over 64 KiB in many fields": (
        b"GET /health HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"X-%d: %s\r\n" % (n, b"a" * 1000) for n in range(70))
        + b"\r\n",
        431,
    ),
    "over 100 headers": (
        b"GET /health HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"X-%d: 1\r\n" % n for n in range(101))
        + b"\r\n",
        431,
    ),
    "an Expect other than 100-continue": (
        b"GET /health HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n",
        417,
    ),
}


@pytest.mark.parametrize("shape", GUNICORN_REFUSES, ids=str)
def test_what_gunicorn_refuses_is_one_problem_document_then_close(gunicorn_server, shape):
    port, user = gunicorn_server
    request, status = GUNICORN_REFUSES[shape]

    responses, closed = exchange(port, request + HEALTH)

    assert len(responses) == 1, responses
    problem = assert_problem(responses[0], status, _status_name(status))
    assert responses[0]["headers"]["Connection"] == "close"
    assert problem["type"] == "about:blank"
    assert closed
    unchanged(port, user)


def _status_name(status: int) -> str:
    return HTTPStatus(status).name


ALIASES = [
    "/api/v1/users%2F1",
    "/api/v1/users%2f1",
    "/api/v1/users//1",
    "/api/v1/users/01",
    "/api/v1/users/%EF%BC%91",
    "/api/v1/users/%D9%A1",
    "/api/v1/users/+1",
    "/api/v1/users/1%20",
    "/api/v1/users/%201",
    "/api/v1/users/1/",
    "/api/v1/users/1_",
    "/api//v1/users/1",
]


@pytest.mark.parametrize("path", ALIASES)
def test_other_spellings_of_a_user_url_are_404_not_found_over_gunicorn(gunicorn_server, path):
    port, user = gunicorn_server
    request = b"DELETE " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n"

    (response,), _ = exchange(port, request)

    assert_problem(response, 404, "NOT_FOUND")
    unchanged(port, user)


def test_a_refused_request_line_quotes_no_query_string_in_the_answer_or_the_log(tmp_path):
    secret = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
    with gunicorn(emulator_env(tmp_path / "emulator"), tmp_path / "gunicorn.log") as running:
        request = b"GET /api/v1/users?access_token=" + secret.encode() + b"&x=\xff HTTP/1.1\r\n"
        responses, _ = exchange(running.port, request + b"Host: t\r\n\r\n")
    log = running.output()

    assert len(responses) == 1, responses
    problem = assert_problem(responses[0], 400, "BAD_REQUEST")
    assert secret not in json.dumps(problem)
    assert "Invalid request" in log
    assert "refused a request to /: 400 Invalid request line." in log
    assert secret not in log


# After the 501 the server closes the connection, so the pipelined /health gets no answer.
CODED_BODIES = {
    "gzip, chunked": (b"Transfer-Encoding: gzip, chunked\r\n", [501], "NOT_IMPLEMENTED"),
    "deflate, chunked": (b"Transfer-Encoding: deflate, chunked\r\n", [501], "NOT_IMPLEMENTED"),
    "Content-Encoding: gzip": (
        b"Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n",
        [415, 200],
        "UNSUPPORTED_MEDIA_TYPE",
    ),
}


@pytest.mark.parametrize("shape", CODED_BODIES)
def test_a_coded_body_is_refused_once_and_creates_nothing(gunicorn_server, shape):
    port, user = gunicorn_server
    header, statuses, code = CODED_BODIES[shape]
    body = b'{"email": "coded@x.io", "name": "C"}'
    request = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n" + JSON + header + b"\r\n"
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"

    responses, closed = exchange(port, request + chunked + HEALTH)

    assert [r["status"] for r in responses] == statuses
    assert_problem(responses[0], statuses[0], code)
    assert closed == (len(statuses) == 1)
    unchanged(port, user)


# A body that ends before its Content-Length: the peer half-closed, closed, or went quiet.
SHORT_BODIES = {
    "valid JSON, 1,000 bytes short": (BODY, len(BODY) + 1000),
    "valid JSON, one byte short": (BODY, len(BODY) + 1),
    "half a document": (BODY[:20], len(BODY)),
    "nothing": (b"", len(BODY)),
}
# Every method with a route that reads a body (the framing reads every body).
BODY_ROUTES = ROUTES[:5]


def short_request(method: bytes, path: bytes, body: bytes, declared: int) -> bytes:
    head = method + b" " + path + b" HTTP/1.1\r\nHost: t\r\n" + JSON
    return head + b"Content-Length: %d\r\n\r\n" % declared + body


def state(port: int) -> tuple[Any, str]:
    """The users and user 1's ETag, as the API shows them."""
    status, _, page = call(port, "GET", "/api/v1/users")
    etag = call_headers(port, "/api/v1/users/1").get("ETag", "")
    assert status == 200
    return page, etag


def call_headers(port: int, path: str) -> dict[str, str]:
    return call(port, "GET", path)[1]


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: b" ".join(r).decode())
@pytest.mark.parametrize("shape", SHORT_BODIES, ids=str)
def test_a_body_cut_short_by_a_half_close_is_one_400_and_writes_nothing(
    gunicorn_server, route, shape
):
    port, user = gunicorn_server
    before = state(port)
    body, declared = SHORT_BODIES[shape]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(short_request(*route, body, declared))
        sock.shutdown(socket.SHUT_WR)
        received, _ = read_until_closed(sock, time.monotonic(), 10)

    (response,) = parse(received)
    assert_problem(response, 400, "INCOMPLETE_BODY")
    assert response["headers"]["Connection"] == "close"
    assert state(port) == before
    unchanged(port, user)


@pytest.mark.parametrize("route", BODY_ROUTES[:3], ids=lambda r: b" ".join(r).decode())
def test_a_body_cut_short_by_a_close_writes_nothing(gunicorn_server, route):
    port, user = gunicorn_server
    before = state(port)
    for body, declared in SHORT_BODIES.values():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(short_request(*route, body, declared))
    # The server answers each on its own time; /health on a new connection comes after them.
    assert call(port, "GET", "/health")[0] == 200
    time.sleep(0.5)
    assert state(port) == before
    unchanged(port, user)


@pytest.mark.parametrize("route", BODY_ROUTES[:3], ids=lambda r: b" ".join(r).decode())
def test_a_body_cut_short_by_silence_is_408_after_the_read_timeout_and_writes_nothing(
    gunicorn_server, route
):
    port, user = gunicorn_server
    before = state(port)
    body, declared = SHORT_BODIES["valid JSON, one byte short"]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(short_request(*route, body, declared))
        received, _ = read_until_closed(sock, time.monotonic(), 20)

    (response,) = parse(received)
    assert_problem(response, 408, "REQUEST_TIMEOUT")
    assert state(port) == before
    unchanged(port, user)
