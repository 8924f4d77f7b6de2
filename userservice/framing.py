"""Check each request's line and read its body before its view runs: no bytes left behind."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import (
    ClientDisconnected,
    HTTPException,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.exceptions import NotImplemented as NotImplementedCoding

from .errors import BodyTimeout, MalformedBody, MissingHost, UnsupportedMediaType


def check_request_line() -> None:
    """Refuse an HTTP/1.1 request without Host, and a path with an encoded slash."""
    environ = request.environ
    if environ.get("SERVER_PROTOCOL") == "HTTP/1.1" and not environ.get("HTTP_HOST"):
        raise MissingHost()
    # The server decodes %2F to "/" before routing: /users%2F1 would be a second URL of user 1.
    raw_path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?")[0]
    if "%2f" in raw_path.lower():
        raise NotFound()


def read_body() -> None:
    """Read the whole body, within MAX_CONTENT_LENGTH, before the view runs.

    A body the view never reads (a GET or DELETE sent with one) would otherwise be left to
    the server to discard after the response: a malformed one then earns a second, unasked
    answer on the same connection. Read here, every framing error has one answer, this one.
    """
    try:
        data = request.get_data(cache=True)
    except ClientDisconnected as error:
        # werkzeug reports a read that raised OSError as a disconnect; a socket timeout
        # (READ_TIMEOUT under gunicorn) is a client that stopped sending.
        if isinstance(error.__context__, TimeoutError):
            raise BodyTimeout() from None
        raise
    except HTTPException:
        raise
    except Exception:
        # Whatever else the server's body reader raises (gunicorn's InvalidChunkSize,
        # ChunkMissingTerminator, InvalidHeader for a trailer) means the framing is broken.
        raise MalformedBody() from None
    if data:  # an empty body is within every limit
        _refuse_oversized_stream(len(data))
    _refuse_codings()


def _refuse_oversized_stream(size: int) -> None:
    """Answer 413 for a streamed body (no Content-Length) that reaches MAX_CONTENT_LENGTH.

    werkzeug stops reading such a body at the limit without complaint; without this, a
    chunked 10 MB body is cut to the limit and parsed (a 400, or a truncated document that
    happens to parse). A streamed body of exactly the limit is refused too: the two cannot
    be told apart.
    """
    limit = request.max_content_length
    if request.content_length is None and limit is not None and size >= limit:
        raise RequestEntityTooLarge()


def _refuse_codings() -> None:
    """Refuse a body the service would misread: compressed, in transfer or as content.

    gunicorn undoes `chunked` and nothing else, so `gzip, chunked` would reach the app still
    compressed and be taken for plain JSON. Checked once the body is read, so nothing is
    left on the connection.
    """
    environ = request.environ  # the WSGI names: cheaper than request.headers, per request
    transfer = str(environ.get("HTTP_TRANSFER_ENCODING", ""))
    if any(c.strip().lower() not in ("", "chunked") for c in transfer.split(",")):
        raise NotImplementedCoding("The only transfer coding the service reads is chunked.")
    if str(environ.get("HTTP_CONTENT_ENCODING", "identity")).strip().lower() != "identity":
        raise UnsupportedMediaType("Send the body without a Content-Encoding.")


def init_app(app: Flask) -> None:
    """Check every request before its view (register after the request-ID hook)."""
    app.before_request(check_request_line)
    app.before_request(read_body)
