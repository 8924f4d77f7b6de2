"""The service's rules at gunicorn's door, for worker.py (docs/OPERATIONS.md states them).

- HTTP/1.0 and HTTP/1.1 only: any other version is 505 in problem details, answered as
  HTTP/1.1 (gunicorn serves HTTP/1.2 to 1.9 as if they were 1.1, and answers in them).
- `100 Continue` is sent on the body's first read, not before the app runs: the app reads a
  waiting client's body only once its token passed and its declared size fits.
- A refusal quotes nothing of the request but its method and its path without query or
  fragment, cut short; gunicorn's own log lines about a request likewise. gunicorn quotes the
  offending line (`Invalid header name 'Bearer eyJ...'`), and a credential may be anywhere in
  it: in a header line without its colon, in a header name, after `#`, in the path.

gunicorn internals used here (pinned: gunicorn==27.0.1; tests/test_worker.py fails if they
change): `Request.version`, `Request._expected_100_continue` (gunicorn writes `100 Continue`
in `wsgi.create` when it is set), `Request.body` (the WSGI `wsgi.input`),
`InvalidHTTPVersion.version` (a tuple when the version is well formed).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from gunicorn.http.errors import InvalidHTTPVersion

from .errors import MAX_TOKEN_LENGTH, InvalidToken, ServiceError
from .headblock import TokenTooLarge
from .problems import HTTP_CODES, quoted_path

SUPPORTED_VERSIONS = ((1, 0), (1, 1))
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
UNSUPPORTED_VERSION = "The service speaks HTTP/1.1 and HTTP/1.0 only."
# gunicorn's log lines about one request, and where the part that quotes it starts.
_REQUEST_LINES = re.compile(
    r"(Invalid request from ip=\S+|Error handling request|Ignored premature client "
    r"disconnection\.|Closing connection\.)"
)
# The words of an error's class name: capitalised words, and acronyms kept whole (HTTP).
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z]*|[a-z]+|\d+")


def refuses_version(req: Any) -> bool:
    """Tell whether a parsed request speaks a version other than HTTP/1.0 and HTTP/1.1."""
    return tuple(req.version) not in SUPPORTED_VERSIONS


@dataclass(frozen=True)
class Refusal:
    """How the door answers a request gunicorn refused: nothing in it quotes the request."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def refusal(exc: BaseException, status: int) -> Refusal:
    """Return the answer to a refusal gunicorn gave `status`, said by the error's kind alone."""
    if isinstance(exc, TokenTooLarge):
        token = InvalidToken(f"The token is longer than {MAX_TOKEN_LENGTH} characters.")
        return Refusal(token.status, token.code, token.shown_detail, token.headers())
    if isinstance(exc, InvalidHTTPVersion) and isinstance(exc.version, tuple):
        status = 505
    if status == 500:  # gunicorn failed, not the request: the app's own 500, code and detail
        failed = ServiceError()
        return Refusal(failed.status, failed.code, failed.shown_detail)
    # The codes the app gives each status (its problem documents' own table).
    name = HTTP_CODES.get(status, HTTPStatus(status).name)
    if status == 505:
        return Refusal(status, name, UNSUPPORTED_VERSION)
    return Refusal(status, name, _sentence(type(exc).__name__))


def _sentence(class_name: str) -> str:
    """Say an error's class name as a sentence: InvalidHTTPVersion, "Invalid HTTP version."."""
    words = [w if w.isupper() and len(w) > 1 else w.lower() for w in _WORDS.findall(class_name)]
    text = " ".join(words)
    return f"{text[:1].upper()}{text[1:]}."


def safe_path(req: Any) -> str:
    """Return a request's path without query or fragment, cut as answers quote paths."""
    return quoted_path(str(getattr(req, "path", None) or "/"))


class RedactRequests(logging.Filter):
    """Cut gunicorn's log lines about a request to what quotes none of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the line's first words (the kind of event) and drop what quotes the request."""
        if record.msg == "%s %s" and isinstance(record.args, tuple) and len(record.args) == 2:
            # gunicorn's default pre_request hook: the method and the path, at DEBUG.
            record.args = (record.args[0], quoted_path(str(record.args[1])))
            return True
        found = _REQUEST_LINES.match(record.getMessage())
        if found is not None:
            kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
            record.msg = found.group(1) + (f" ({kind})" if kind else "")
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def continue_on_read(req: Any, sock: Any) -> None:
    """Send `100 Continue` on the body's first read, instead of before the app runs."""
    if req._expected_100_continue:
        req._expected_100_continue = False
        req.body = _ContinueFirst(req.body, sock)


class _ContinueFirst:
    """A request body that asks the client for itself on its first read."""

    def __init__(self, body: Any, sock: Any) -> None:
        self._body, self._sock, self._asked = body, sock, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)  # `failed`, readlines, ... as gunicorn's body has them

    def _ask(self) -> None:
        if not self._asked:
            self._asked = True
            self._sock.sendall(CONTINUE)

    def read(self, size: int | None = None) -> bytes:
        """Ask for the body once, then read it."""
        self._ask()
        data: bytes = self._body.read(size)
        return data

    def readline(self, size: int | None = None) -> bytes:
        """Ask for the body once, then read a line of it."""
        self._ask()
        data: bytes = self._body.readline(size)
        return data
