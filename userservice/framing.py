"""Check each request's line and read its body before its view runs: no bytes left behind.

Exactly one answer per request: the body is read (its framing settled) before anything that
may refuse the request, so a refusal never leaves bytes that the server would read as a second
request. Whatever answers before the body is read (the one exception is a client that waits
for `100 Continue`, whose body is read only once its token has passed) makes the server close
the connection after the answer (must_close).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Request
from werkzeug.exceptions import (
    ClientDisconnected,
    HTTPException,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.exceptions import NotImplemented as NotImplementedCoding

from .errors import BodyTimeout, IncompleteBody, MalformedBody, MissingHost, UnsupportedMediaType

# Set in the WSGI environ when the connection must close after the answer: the server reads
# it (worker.py, through must_close), since an app may not send hop-by-hop headers itself.
CLOSE_AFTER = "userservice.close_after"
# Set once the whole body has been read.
BODY_READ = "userservice.body_read"
# Set by a server whose framing says the request has no body (worker.py): nothing to read. A
# WSGI server may also hand over a body with neither Content-Length nor Transfer-Encoding (a
# chunked one it decoded, with `wsgi.input_terminated`), so only the server can say so.
NO_BODY = "userservice.no_body"


def must_close(environ: dict[str, object]) -> bool:
    """Tell the server whether to close the connection after this request's answer."""
    if environ.get(CLOSE_AFTER):
        return True
    return declares_body(environ) and not environ.get(BODY_READ)


def declares_body(environ: Mapping[str, object]) -> bool:
    """Tell whether a request's head says a body follows: a Content-Length but 0, or a coding.

    On the connection, one that says none has none (RFC 9112, section 6.3).
    """
    return str(environ.get("CONTENT_LENGTH") or "0") != "0" or bool(
        environ.get("HTTP_TRANSFER_ENCODING")
    )


def waits_for_continue(environ: Mapping[str, object]) -> bool:
    """Tell whether the client waits for `100 Continue` before it sends the body."""
    # The WSGI names: cheaper than request.headers, per request.
    expect = str(environ.get("HTTP_EXPECT", "")).strip().lower()
    return expect == "100-continue" and environ.get("SERVER_PROTOCOL") == "HTTP/1.1"


def check_request_line(environ: Mapping[str, object]) -> None:
    """Refuse an HTTP/1.1 request without Host, and a path with an encoded slash."""
    if environ.get("SERVER_PROTOCOL") == "HTTP/1.1" and not environ.get("HTTP_HOST"):
        raise MissingHost()
    # The server decodes %2F to "/" before routing: /users%2F1 would be a second URL of user 1.
    raw_path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?")[0]
    if "%2f" in raw_path.lower():
        raise NotFound()


def read_body(served: Request) -> None:
    """Read the whole body, within MAX_CONTENT_LENGTH, before the view runs.

    A client that waits for `100 Continue` sends its body only once asked (the server asks
    on the first read): its body is read after the token check (views.py calls read_now),
    so a refused call costs no upload.

    A body the view never reads (a GET or DELETE sent with one) would otherwise be left to
    the server to discard after the response: a malformed one then earns a second, unasked
    answer on the same connection. Read here, every framing error has one answer, this one.
    """
    if not waits_for_continue(served.environ):
        read_now(served)


def read_now(served: Request) -> None:
    """Read the whole body now, once (the users routes call it after the token check)."""
    environ = served.environ
    if environ.get(BODY_READ):
        return
    if environ.get(NO_BODY):
        # Nothing to read, so nothing for werkzeug to wrap in a stream and drain.
        environ[BODY_READ] = True
        _refuse_codings(environ)
        return
    try:
        data = served.get_data(cache=True)
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
    _refuse_incomplete(served, len(data))
    if data:  # an empty body is within every limit
        _refuse_oversized_stream(served, len(data))
    environ[BODY_READ] = True
    _refuse_codings(environ)


def _refuse_incomplete(served: Request, size: int) -> None:
    """Refuse a body shorter than its Content-Length (RFC 9112, section 8): never process it.

    gunicorn's body reader returns what it has when the peer closes or half-closes the
    connection before the declared length (its LengthReader stops at end of file without
    complaint), so a short body would otherwise be parsed and, if it happens to be valid JSON,
    written.
    """
    declared = served.content_length
    if declared is not None and size < declared:
        served.environ[CLOSE_AFTER] = True
        raise IncompleteBody()


def _refuse_oversized_stream(served: Request, size: int) -> None:
    """Answer 413 for a streamed body (no Content-Length) that reaches MAX_CONTENT_LENGTH.

    werkzeug stops reading such a body at the limit without complaint; without this, a
    chunked 10 MB body is cut to the limit and parsed (a 400, or a truncated document that
    happens to parse). A streamed body of exactly the limit is refused too: the two cannot
    be told apart.
    """
    limit = served.max_content_length
    if served.content_length is None and limit is not None and size >= limit:
        raise RequestEntityTooLarge()


def _refuse_codings(environ: Mapping[str, object]) -> None:
    """Refuse a body the service would misread: compressed, in transfer or as content.

    gunicorn undoes `chunked` and nothing else, so `gzip, chunked` would reach the app still
    compressed and be taken for plain JSON. Checked once the body is read, so nothing is
    left on the connection.
    """
    # The WSGI names: cheaper than request.headers, per request.
    transfer = str(environ.get("HTTP_TRANSFER_ENCODING", ""))
    if any(c.strip().lower() not in ("", "chunked") for c in transfer.split(",")):
        raise NotImplementedCoding("The only transfer coding the service reads is chunked.")
    if str(environ.get("HTTP_CONTENT_ENCODING", "identity")).strip().lower() != "identity":
        raise UnsupportedMediaType("Send the body without a Content-Encoding.")
