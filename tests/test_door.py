"""The door's rules over gunicorn and raw sockets, tokens required (docs/OPERATIONS.md).

Exactly one answer per request whatever refuses it first; HTTP versions but 1.0 and 1.1 are
505; `100 Continue` only once the token and the declared size passed; a token of any size is
401 INVALID_TOKEN; no token text in any answer or log line, wherever the request carries it.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from issuer import INVALID, USER, Issuer, issuer_and_gunicorn
from test_framing import BROKEN_CHUNKS, CHUNKED, HEALTH, JSON, assert_problem, exchange, parse

from bench.servers import emulator_env, gunicorn, read_until_closed
from userservice.headblock import HEADER_BLOCK_LIMIT

pytestmark = pytest.mark.slow

BODY = json.dumps({"email": "door@example.com", "name": "D"}).encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, int]]:
    """An issuer, and gunicorn on default settings trusting it, holding one user (id 1)."""
    with issuer_and_gunicorn(tmp_path_factory.mktemp("door")) as (issuer, port):
        created = send_once(port, request(b"POST", b"/api/v1/users", issuer, USER))
        assert parse(created)[0]["status"] == 201
        yield issuer, port


def request(method: bytes, path: bytes, issuer: Issuer | None, body: Any = None) -> bytes:
    """A whole HTTP/1.1 request, with a valid token unless issuer is None."""
    data = json.dumps(body).encode() if body is not None else b""
    head = method + b" " + path + b" HTTP/1.1\r\nHost: t\r\n"
    if issuer is not None:
        head += b"Authorization: Bearer " + issuer.token().encode() + b"\r\n"
    if body is not None:
        head += JSON
    return head + b"Content-Length: %d\r\n\r\n" % len(data) + data


def send_once(port: int, data: bytes, seconds: float = 15) -> bytes:
    """Send bytes, half-close, and return everything the server sent until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server refused before reading it all; its answer is still there
        received, _ = read_until_closed(sock, time.monotonic(), seconds)
    return received


def state(port: int, issuer: Issuer) -> list[tuple[int, bytes]]:
    """Every user's id and ETag, as the API shows them."""
    page = parse(send_once(port, request(b"GET", b"/api/v1/users", issuer)))[0]
    users = json.loads(page["body"])
    found = []
    for user in users:
        path = b"/api/v1/users/%d" % user["id"]
        got = parse(send_once(port, request(b"GET", path, issuer)))[0]
        found.append((user["id"], got["headers"]["ETag"].encode()))
    return found


# Exactly one answer per request, whatever refuses it first.

EARLY_REFUSALS = {
    "an encoded slash": (b"POST /api/v1/users%2F1 HTTP/1.1\r\nHost: t\r\n", True),
    "an unknown route": (b"POST /nowhere HTTP/1.1\r\nHost: t\r\n", True),
    "no Host": (b"POST /api/v1/users HTTP/1.1\r\n", True),
    "an id that is not one": (b"PUT /api/v1/users/x1 HTTP/1.1\r\nHost: t\r\n", True),
    "no token": (b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\n", False),
    "a method the route lacks": (b"DELETE /api/v1/users HTTP/1.1\r\nHost: t\r\n", True),
    "a declared size over the limit": (
        b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n",
        True,
    ),
}
FRAMINGS = {
    **{f"chunked, {name}": CHUNKED + b"\r\n" + chunks for name, chunks in BROKEN_CHUNKS.items()},
    "chunked, cut short": CHUNKED + b"\r\n%x\r\n" % (len(BODY) + 10) + BODY,
    "chunked, no last chunk": CHUNKED + b"\r\n%x\r\n" % len(BODY) + BODY + b"\r\n",
    "Content-Length short": b"Content-Length: %d\r\n\r\n" % (len(BODY) + 100) + BODY,
    "Content-Length and chunked": b"Content-Length: 4\r\n" + CHUNKED + b"\r\n0\r\n\r\n",
    "Content-Length with a request after it": b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY,
}


@pytest.mark.parametrize("framing", FRAMINGS, ids=str)
@pytest.mark.parametrize("refusal", EARLY_REFUSALS, ids=str)
def test_every_early_refusal_with_every_framing_is_one_answer_then_close_or_the_next_one(
    served, refusal, framing
):
    issuer, port = served
    head, with_token = EARLY_REFUSALS[refusal]
    if with_token:
        head += b"Authorization: Bearer " + issuer.token().encode() + b"\r\n"
    head += JSON
    framed = FRAMINGS[framing]
    if b"Content-Length: 2000000" in head:  # one declared length only: the one over the limit
        framed = re.sub(rb"Content-Length: \d+\r\n", b"", framed)
    data = head + framed
    responses = parse(send_once(port, data + HEALTH))

    assert 1 <= len(responses) <= 2, responses
    assert responses[0]["status"] >= 400, responses
    assert responses[0]["headers"]["Content-Type"] == "application/problem+json"
    if len(responses) == 2:
        assert (responses[1]["status"], json.loads(responses[1]["body"])) == (
            200,
            {"status": "ok"},
        )
    else:
        assert responses[0]["headers"]["Connection"] == "close"
    assert [user_id for user_id, _ in state(port, issuer)] == [1]


def test_the_probes_two_answer_cases_get_one(served):
    _, port = served
    broken = CHUNKED + b"\r\n" + BROKEN_CHUNKS["size zz"]
    for head in (
        b"POST /api/v1/users%2F1 HTTP/1.1\r\nHost: t\r\n",
        b"POST /api/v1/users HTTP/1.1\r\n",
    ):
        responses, closed = exchange(port, head + JSON + broken + HEALTH)
        assert len(responses) == 1, responses
        assert_problem(responses[0], 400, "MALFORMED_BODY")
        assert closed


# HTTP versions.


@pytest.mark.parametrize(
    "version", [b"HTTP/1.2", b"HTTP/1.9", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/3.0"]
)
@pytest.mark.parametrize("method", [b"GET /health", b"POST /api/v1/users"])
def test_a_version_but_1_0_and_1_1_is_505_answered_in_http_1_1_then_close(served, version, method):
    issuer, port = served
    before = state(port, issuer)
    token = b"Authorization: Bearer " + issuer.token().encode() + b"\r\n"
    data = method + b" " + version + b"\r\n" + token + JSON
    data += b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY

    received = send_once(port, data + HEALTH)

    assert received.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
    (response,) = parse(received)
    problem = assert_problem(response, 505, "HTTP_VERSION_NOT_SUPPORTED")
    assert problem["detail"] == "The service speaks HTTP/1.1 and HTTP/1.0 only."
    assert state(port, issuer) == before


# 100 Continue only once the token and the declared size passed.


def expect_continue(port: int, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    """Send a head with Expect: 100-continue; return what came before the body was sent
    (within a second) and everything after sending it."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + b"Expect: 100-continue\r\n\r\n")
        sock.settimeout(1.0)
        first = b""
        try:
            while not first.endswith(b"\r\n\r\n") or b"Content-Length" in first:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                first += chunk
                if parse_safe(first):
                    break
        except TimeoutError:
            pass
        try:
            sock.sendall(body)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed
            return first, b""
        rest, _ = read_until_closed(sock, time.monotonic(), 15)
    return first, rest


def parse_safe(stream: bytes) -> bool:
    try:
        return bool(parse(stream))
    except AssertionError:
        return False


def post_head(issuer: Issuer | None, length: int, path: bytes = b"/api/v1/users") -> bytes:
    head = b"POST " + path + b" HTTP/1.1\r\nHost: t\r\n" + JSON
    if issuer is not None:
        head += b"Authorization: Bearer " + issuer.token().encode() + b"\r\n"
    return head + b"Content-Length: %d\r\n" % length


def test_100_continue_comes_only_after_the_token_passed(served):
    issuer, port = served
    body = json.dumps({"email": "cont@example.com", "name": "C"}).encode()

    first, rest = expect_continue(port, post_head(issuer, len(body)), body)

    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert parse(rest)[0]["status"] == 201
    user_id = json.loads(parse(rest)[0]["body"])["id"]
    assert (
        parse(send_once(port, request(b"DELETE", b"/api/v1/users/%d" % user_id, issuer)))[0][
            "status"
        ]
        == 204
    )


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no token", 401, "UNAUTHENTICATED"),
        ("a bad token", 401, "INVALID_TOKEN"),
        ("a declared size over the limit", 413, "PAYLOAD_TOO_LARGE"),
        ("an unknown route", 404, "NOT_FOUND"),
        ("an encoded slash", 404, "NOT_FOUND"),
    ],
)
def test_a_refused_request_gets_its_answer_without_100_continue_and_writes_nothing(
    served, case, status, code
):
    issuer, port = served
    before = state(port, issuer)
    head = {
        "no token": post_head(None, len(BODY)),
        "a bad token": post_head(None, len(BODY)) + b"Authorization: Bearer a.b.c\r\n",
        "a declared size over the limit": post_head(issuer, 2_000_000),
        "an unknown route": post_head(issuer, len(BODY), b"/nowhere"),
        "an encoded slash": post_head(issuer, len(BODY), b"/api/v1/users%2F1"),
    }[case]

    first, _ = expect_continue(port, head, BODY)

    assert not first.startswith(b"HTTP/1.1 100"), first[:40]
    (response,) = parse(first)
    assert_problem(response, status, code)
    assert response["headers"]["Connection"] == "close"
    assert state(port, issuer) == before


# A token of any size is 401 INVALID_TOKEN with its challenge.


@pytest.mark.parametrize("size", [8193, 9000, 20_000, 60_000, 65_000, 66_000, 100_000, 300_000])
def test_a_token_of_any_size_over_the_limit_is_401_invalid_token(served, size):
    _, port = served
    token = ("a" * (size - 20) + ".eyJ9.sig01234567890").encode()
    data = b"GET /api/v1/users/1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token
    data += b"\r\n\r\n"

    (response,) = parse(send_once(port, data))

    problem = assert_problem(response, 401, "INVALID_TOKEN")
    assert response["headers"]["WWW-Authenticate"] == INVALID
    assert problem["detail"] == "The token is longer than 8192 characters."


def test_another_header_over_the_block_is_431(served):
    _, port = served
    data = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"

    (response,) = parse(send_once(port, data))

    assert_problem(response, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")


# No token text in any answer or log line.

SECRET = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldCJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2lnbmF0dXJlLXNlY3JldA"
)


def placements(token: bytes) -> dict[str, bytes]:
    """Requests that carry the token in every place a request can carry bytes."""
    host = b"Host: t\r\n"
    return {
        "a well-formed path": b"GET /api/v1/users/" + token + b" HTTP/1.1\r\n" + host,
        "a well-formed path, no route": b"GET /" + token + b"?x=1 HTTP/1.1\r\n" + host,
        "path, then DEL": b"GET /api/v1/users/" + token + b"\x7f HTTP/1.1\r\n" + host,
        "path, then a control byte": b"GET /" + token + b"\x01 HTTP/1.1\r\n" + host,
        "after #": b"GET /health#" + token + b" HTTP/1.1\r\n" + host,
        "after # with DEL": b"GET /health#" + token + b"\x7f HTTP/1.1\r\n" + host,
        "query with a bad byte": b"GET /health?access_token=" + token + b"\xff HTTP/1.1\r\n" + host,
        "as the method": token + b" / HTTP/1.1\r\n" + host,
        "in a method with a control byte": b"G\x01" + token + b" / HTTP/1.1\r\n" + host,
        "as the version": b"GET / " + token + b"\r\n" + host,
        "the whole request line": token + b"\r\n" + host,
        "a header without its colon": b"GET /health HTTP/1.1\r\n"
        + host
        + b"Authorization Bearer "
        + token
        + b"\r\n",
        "a header named Bearer <token>": b"GET /health HTTP/1.1\r\n"
        + host
        + b"Bearer "
        + token
        + b": x\r\n",
        "a header name with DEL": b"GET /health HTTP/1.1\r\n" + host + token + b"\x7f: x\r\n",
        "a value with a NUL": b"GET /health HTTP/1.1\r\n"
        + host
        + b"Authorization: Bearer "
        + token
        + b"\x00\r\n",
        "a value with DEL": b"GET /health HTTP/1.1\r\n" + host + b"X-A: " + token + b"\x7f\r\n",
        "a folded line": b"GET /health HTTP/1.1\r\n" + host + b"X-A: 1\r\n " + token + b"\r\n",
        "a bare LF": b"GET /health HTTP/1.1\r\n" + host + b"Authorization: Bearer " + token + b"\n",
        "the Host": b"GET /health HTTP/1.1\r\nHost: " + token + b"\x7f\r\n",
        "two Hosts": b"GET /health HTTP/1.1\r\n" + host + b"Host: " + token + b"\r\n",
        "a chunk extension": b"POST /api/v1/users HTTP/1.1\r\n"
        + host
        + CHUNKED
        + b"\r\n5;"
        + token
        + b"\x01\r\nhello\r\n0\r\n\r\n",
        "a trailer": b"POST /api/v1/users HTTP/1.1\r\n"
        + host
        + CHUNKED
        + b"\r\n0\r\nBearer "
        + token
        + b"\r\n",
        "an Expect": b"GET /health HTTP/1.1\r\n" + host + b"Expect: " + token + b"\r\n",
        "a line over the limit": b"GET /health HTTP/1.1\r\n"
        + host
        + b"X-A: "
        + token
        + b"a" * 70_000
        + b"\r\n",
        "the Content-Length": b"POST /api/v1/users HTTP/1.1\r\n"
        + host
        + b"Content-Length: "
        + token
        + b"\r\n",
        "a Transfer-Encoding": b"POST /api/v1/users HTTP/1.1\r\n"
        + host
        + b"Transfer-Encoding: "
        + token
        + b"\r\n",
    }


def test_a_token_anywhere_in_a_malformed_request_is_in_no_answer_and_no_log_line(tmp_path):
    token = SECRET.encode()
    answers = {}
    env = emulator_env(tmp_path / "emulator", LOG_LEVEL="DEBUG")
    with gunicorn(env, tmp_path / "gunicorn.log") as server:
        for name, data in placements(token).items():
            answers[name] = send_once(server.port, data + b"\r\n")
    log = server.output()

    for name, answer in answers.items():
        # Most are refused; a fragment is legal, and never reaches the app or a log.
        assert answer.startswith(b"HTTP/1.1 "), (name, answer)
        assert SECRET.encode() not in answer, name
        assert SECRET[:40].encode() not in answer, name
    assert "Invalid request from ip=" in log
    assert "refused a request to" in log
    assert SECRET not in log
    assert SECRET[:40] not in log


# The header block: 64 KiB in total, read in one pass.


def test_a_head_of_exactly_the_limit_is_served_and_one_byte_more_is_431(served):
    _, port = served
    head = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Pad: "
    at_limit = head + b"a" * (HEADER_BLOCK_LIMIT - len(head) - 4) + b"\r\n\r\n"
    assert len(at_limit) == HEADER_BLOCK_LIMIT

    (served_answer,) = parse(send_once(port, at_limit))
    (refused,) = parse(send_once(port, at_limit[:-4] + b"a\r\n\r\n"))

    assert served_answer["status"] == 200
    assert_problem(refused, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")


@pytest.mark.parametrize("piece", [1, 7, 1024])
def test_a_head_trickled_in_small_pieces_is_read_whole(served, piece):
    _, port = served
    fields = b"".join(b"X-%02d: %s\r\n" % (n, b"v" * 500) for n in range(60))
    data = b"GET /health HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(data), piece):
            sock.sendall(data[start : start + piece])
        sock.shutdown(socket.SHUT_WR)
        received, _ = read_until_closed(sock, time.monotonic(), 15)

    (response,) = parse(received)
    assert (response["status"], json.loads(response["body"])) == (200, {"status": "ok"})
