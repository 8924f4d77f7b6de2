"""What the door answers when gunicorn fails a request itself: the app's own 500, one spelling.

worker.handle_error is gunicorn's (status, log line, access line) with the page replaced by
problem details; here it answers a real socket, as the worker does.
"""

from __future__ import annotations

import json
import socket

import pytest
from flask import Flask
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.errors import (
    InvalidChunkSize,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    LimitRequestLine,
)

from userservice import door, problems, worker


def _the_apps_500() -> dict[str, object]:
    """Return the problem document the app answers an unexpected error with."""
    with Flask(__name__).test_request_context("/api/v1/users"):
        response = problems.handle_unexpected(RuntimeError("a bug"))
    body: dict[str, object] = json.loads(response.get_data())
    return body


def test_a_failure_of_gunicorn_is_refused_with_the_apps_500_code_and_detail():
    refused = door.refusal(RuntimeError("gunicorn failed"), 500)
    apps = _the_apps_500()

    assert (refused.status, refused.code, refused.detail) == (
        apps["status"],
        apps["code"],
        apps["detail"],
    )
    assert refused.code == "INTERNAL_ERROR"


def test_the_worker_answers_its_own_failure_as_the_apps_500_on_the_socket():
    answering, client = socket.socketpair()
    failing = worker.ReadTimeoutWorker.__new__(worker.ReadTimeoutWorker)
    failing.log = Logger(Config())
    client.shutdown(socket.SHUT_WR)  # the request is all sent: the worker's close need not wait

    failing.handle_error(None, answering, ("127.0.0.1", 1), RuntimeError("gunicorn failed"))
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    client.close()

    head, _, content = received.partition(b"\r\n\r\n")
    body = json.loads(content)
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 500 Internal Server Error"
    assert b"Content-Type: application/problem+json" in head.split(b"\r\n")
    apps = _the_apps_500()
    assert {key: body[key] for key in ("status", "code", "detail", "title")} == {
        key: apps[key] for key in ("status", "code", "detail", "title")
    }
    assert body["instance"] == "/"


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (InvalidHTTPVersion("HTTP/1.x"), "Invalid HTTP version."),
        (InvalidRequestLine("x"), "Invalid request line."),
        (InvalidChunkSize(b"x"), "Invalid chunk size."),
        (LimitRequestLine(9000, 8190), "Limit request line."),
        (InvalidHeaderName("x"), "Invalid header name."),
    ],
)
def test_a_refusal_says_the_errors_kind_as_a_sentence(exc, detail):
    assert door.refusal(exc, 400).detail == detail
