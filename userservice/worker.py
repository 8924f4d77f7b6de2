"""gunicorn's gevent worker with a read timeout and the service's contract at the door.

gunicorn.conf.py names it (`worker_class`); only gunicorn imports it, never create_app: the
Lambda package has neither gunicorn nor gevent.

gunicorn internals used here, for want of a public hook (pinned: gunicorn==27.0.1; checked by
tests/test_worker.py, exercised over raw sockets by tests/test_framing.py and
tests/test_slow_clients.py):

- `AsyncWorker.handle`, called past `GeventWorker.handle`, whose one added step,
  `client.setblocking(1)`, would clear the read timeout set on the socket here.
- `Worker.handle_error` writes its HTML page to the `client` it is given (`util.write_error`,
  then `sendall`); handing it a stand-in socket keeps its status, logging and access line.
- `util.write_nonblock` and `util.close_graceful`: how gunicorn writes its own error answer,
  and the close that drains unread request bytes first (RFC 9112, section 9.6).
- `start_response.__self__.force_close()`: the gunicorn Response behind the WSGI
  start_response; a WSGI app may not send `Connection: close` itself.
- `AsyncWorker.handle_request`, called once per request by `AsyncWorker.handle`'s keep-alive
  loop: the worker yields to gevent's hub after it (see `take_turns`), and a connection whose
  first request head is complete leaves the half-sent registry there (see `HalfSent`).
- `wsgi.input` is gunicorn's `Body`, whose reader (`Unreader`) copies all it has read ahead
  on every read: many small reads of a large body cost time quadratic in its size (see
  `TakingTurns`, which reads it whole instead).
- `AsyncWorker.handle` is called once per accepted connection, in its own greenlet, while the
  worker holds at most `worker_connections` of them (gevent's pool stops accepting when full).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import socket
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import gevent
from gunicorn import util
from gunicorn.http.errors import InvalidHTTPVersion
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from . import door, framing, headblock
from .hooks import new_request_id
from .problems import PROBLEM_JSON, problem_body

# gunicorn quotes a refused request line in its log line and error text; a query string there
# may carry a credential (`?access_token=...`, which the service refuses), so none is quoted.
_QUERY = re.compile(r"\?[^\s'\"]*")
# Answers the app gives without having read the whole body: a timeout and a body too large.
UNREAD_BODY_STATUSES = ("408", "413")
# The most the app gets of a body in one read (werkzeug asks for 64 KiB at a time): other
# connections take a turn between two.
BODY_PIECE = 65536


def _redacted(text: str) -> str:
    """Return gunicorn's text about a refused request with every query string left out."""
    return _QUERY.sub("?[query removed]", text)


class _RedactQueries(logging.Filter):
    """Leave query strings out of gunicorn's own log lines about refused requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without query strings."""
        record.msg, record.args = _redacted(record.getMessage()), None
        return True


class ReadTimeoutWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker, with a read timeout and the service's contract at the door.

    gunicorn bounds the wait for a request's headers by `keepalive` in its gevent worker,
    but reads a body with no timeout: a client that stops mid-body would hold its
    connection for ever. A socket timeout bounds every read; the app answers 408.
    """

    wsgi: Any  # the Flask app gunicorn calls, set by load_wsgi
    half_sent: HalfSent

    def init_process(self) -> None:
        """Redact gunicorn's log lines in this worker, then serve (gevent patches first)."""
        # RedactRequests reads gunicorn's own message and arguments, so it comes first.
        logging.getLogger("gunicorn.error").addFilter(door.RedactRequests())
        logging.getLogger("gunicorn.error").addFilter(_RedactQueries())
        headblock.install()
        self.half_sent = HalfSent(self.cfg.worker_connections, self.log)
        super().init_process()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one connection with a read timeout on its socket, counted in `half_sent`."""
        client.settimeout(self.wsgi.config["SETTINGS"].read_timeout)
        self.half_sent.opened(client)
        try:
            AsyncWorker.handle(self, listener, client, addr)
        finally:
            self.half_sent.ended(client)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> None:
        """Serve one request of a connection, then let the other connections take a turn.

        The connection stays half-sent while the request's body is unread (TakingTurns
        reports when it is read whole) and, at the latest, until the request is answered.
        """
        if _has_body(req):
            self.half_sent.receiving(sock)
        else:
            self.half_sent.received(sock)
        try:
            _at_the_door(req, sock)
            super().handle_request(listener_name, req, sock, addr)
        finally:
            self.half_sent.received(sock)
        take_turns()

    def load_wsgi(self) -> None:
        """Load the app, wrapped so that an answer to an unread body closes the connection.

        Then freeze what is loaded (`_freeze_loaded`): it lives as long as the worker.
        """
        super().load_wsgi()
        # Flask's own place for middleware: worker.wsgi stays the app (worker_exit needs it).
        limit = self.wsgi.config["MAX_CONTENT_LENGTH"]
        headblock.bound_chunks(limit)
        turns = _taking_turns(self.wsgi.wsgi_app, limit, self.half_sent.received)
        self.wsgi.wsgi_app = _closing(turns)
        _freeze_loaded()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Answer a request gunicorn refuses itself as problem details, not its HTML page.

        gunicorn still picks the status, logs the refusal and writes the access line; only
        the page it would send is replaced.
        """
        page = _Page()
        super().handle_error(req, page, addr, exc)
        given = int(page.written.split(b" ", 2)[1]) if page.written else 500
        refused = door.refusal(exc, given)
        request_id = new_request_id()
        path = door.safe_path(req or getattr(exc, "req", None))
        self.log.warning("refused a request to %s: %d %s", path, refused.status, refused.detail)
        body = problem_body(refused.status, refused.code, refused.detail, path, request_id)
        content = json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in refused.headers.items())
        head = (
            f"HTTP/1.1 {refused.status} {HTTPStatus(refused.status).phrase}\r\n"
            f"Connection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
            f"Content-Length: {len(content)}\r\nX-Request-ID: {request_id}\r\n{extra}\r\n"
        )
        try:
            util.write_nonblock(client, head.encode() + content)
        except OSError:
            self.log.debug("Failed to send error message.")
        # Unread request bytes would turn a plain close into a reset that can destroy the
        # answer before the client reads it (RFC 9112, section 9.6).
        util.close_graceful(client)


class HalfSent:
    """Close the oldest half-sent connection when the worker's last connection slot is taken.

    gevent's pool holds `worker_connections` connections and accepts no more while it is
    full, so clients that open connections and never finish a request (slowloris: a head
    never ended, or a body trickled a byte at a time, each read within the read timeout)
    would keep every later client waiting in the listen backlog. Here a connection is
    half-sent while it is still sending a request: from its accept until its first request
    head is complete, and again while a request's body is unread. When a connection takes the
    last slot, the connection that became half-sent longest ago (never the new one) is shut
    down, so the pool frees a slot for the next client to be accepted. Connections that sent
    a whole request and wait (keep-alive ones included) are never closed here.
    """

    def __init__(self, slots: int, log: Any) -> None:
        self.slots, self.log = slots, log
        self.open = 0
        # Insertion-ordered: the first key is the connection half-sent longest ago.
        self.waiting: dict[Any, None] = {}

    def opened(self, client: Any) -> None:
        """Count a new connection; if it took the last slot, close the oldest half-sent one."""
        self.open += 1
        self.waiting[client] = None
        if self.open >= self.slots:
            oldest = next((sock for sock in self.waiting if sock is not client), None)
            if oldest is not None:
                del self.waiting[oldest]
                self.log.info(
                    "closed the oldest half-sent connection: all %d slots in use", self.slots
                )
                _shut_down(oldest)

    def receiving(self, client: Any) -> None:
        """Count a connection whose request body is still to come as half-sent again."""
        self.waiting[client] = None

    def received(self, client: Any) -> None:
        """Take a connection whose request (head, or head and body) arrived whole out."""
        self.waiting.pop(client, None)

    def ended(self, client: Any) -> None:
        """Forget a connection whose greenlet ends."""
        self.open -= 1
        self.waiting.pop(client, None)


def _freeze_loaded() -> None:
    """Put every object alive now, the loaded app's included, out of the collector's reach.

    A full collection walks every tracked object, and the loaded app (Flask, smorest, the spec,
    the schemas and the libraries beneath: about 48,000 objects) is most of them: on the null
    connection one came about every 10 s at 720-880 requests/s and held the worker's only
    thread for 29-40 ms of CPU while every connection's requests waited. With these frozen it
    took 1-6 ms. Frozen objects are still freed by reference counting, but a frozen cycle never
    is, so the garbage the imports left is collected first.
    """
    gc.collect()
    gc.freeze()


def _shut_down(client: Any) -> None:
    """Shut a connection down so that its greenlet's next read simply finds it ended.

    gevent's own `shutdown` also wakes the greenlet waiting on the socket with an error
    (`cancel_wait_ex`, "File descriptor was closed in another greenlet"), which gunicorn logs
    as an ERROR with its traceback: one per eviction, log lines a slow client could multiply.
    Shut down through a duplicate of the socket (the same connection), the waiting read
    returns b"" instead: gunicorn ends a half-sent head quietly, and a half-read body is
    short, which the app refuses as incomplete (its answer then cannot be sent).
    """
    # OSError: the peer is already gone.
    with contextlib.suppress(OSError), client.dup() as twin:
        twin.shutdown(socket.SHUT_RDWR)


def _has_body(req: Any) -> bool:
    """Tell whether a request's head announces a body (a Content-Length but 0, or chunked)."""
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING" or (name == "CONTENT-LENGTH" and value.strip() != "0"):
            return True
    return False


def _at_the_door(req: Any, sock: Any) -> None:
    """Refuse HTTP versions but 1.0 and 1.1; send `100 Continue` on the body's first read."""
    if door.refuses_version(req):
        # Answered by handle_error, as gunicorn's own refusals are (505, then close).
        raise InvalidHTTPVersion(tuple(req.version))
    door.continue_on_read(req, sock)


def take_turns() -> None:
    """Yield to gevent's hub between two requests of one keep-alive connection.

    A greenlet switches only when a read would block. Under load a client's next request is
    often in the socket before its connection's greenlet has finished the last one, so that
    greenlet served hundreds of requests in a row (measured: runs of 400-700 on one of 16
    connections) while the others' requests waited, and p99 reached 100 times p50. `sleep(0)`
    queues this greenlet behind every connection the hub already found ready. (A timer or
    `gevent.idle()` would make the hub poll sockets first, but measured slower and no fairer.)
    """
    gevent.sleep(0)


def _closing(app: Any) -> Any:
    """Close the connection (`Connection: close`) after an answer that left the body unread.

    Where the next request would start is then unknown, or (past the body limit) not worth
    reading up to. The app reads every other body before answering (userservice/framing.py);
    gunicorn marks a body whose framing broke as failed. A WSGI app may not send hop-by-hop
    headers itself, so the server side decides, through gunicorn's response object.
    """

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            failed = getattr(environ["wsgi.input"], "failed", False)
            if failed or framing.must_close(environ) or status[:3] in UNREAD_BODY_STATUSES:
                start_response.__self__.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return serve


def _taking_turns(app: Any, limit: int, received: Callable[[Any], None]) -> Any:
    """Hand the app its request body through TakingTurns (`limit`: MAX_CONTENT_LENGTH).

    `received` is called with the connection's socket once the body is read whole.
    """

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        if not framing.declares_body(environ):
            # gunicorn reads no body for such a head (RFC 9112, section 6.3): none to hand over.
            environ[framing.NO_BODY] = True
            return app(environ, start_response)
        sock = environ.get("gunicorn.socket")
        environ["wsgi.input"] = TakingTurns(
            environ["wsgi.input"], _declared(environ), limit, lambda: received(sock)
        )
        return app(environ, start_response)

    return serve


def _declared(environ: dict[str, Any]) -> int | None:
    """Return a body's Content-Length, or None (chunked, or not a number gunicorn took)."""
    text = str(environ.get("CONTENT_LENGTH") or "")
    return int(text) if text.isdigit() else None


class TakingTurns:
    """A request body (`wsgi.input`) that lets the worker's other connections run between reads.

    A greenlet switches only when a read would block, and a body already in the socket never
    blocks: a 900 kB body went from socket to JSON parser in one stretch while every other
    connection of the worker waited (docs/PERFORMANCE.md, "Hostile input and a full worker").
    Here each read after the first yields to gevent's hub first (as between two requests,
    `take_turns`), and hands out at most BODY_PIECE bytes.

    A body with a Content-Length the app will read (at most `limit`) is taken from gunicorn in
    one read, then handed out from here: gunicorn's reader copies all it holds on each of its
    reads, so werkzeug's reads of 64 KiB cost time quadratic in the body's size (measured in
    process, 900 kB over a loopback socket: 2.1 ms of CPU, 1.1-1.2 ms taken whole). A larger
    one, or a chunked one, is read as asked.
    """

    def __init__(
        self, body: Any, declared: int | None, limit: int, done: Callable[[], None] | None = None
    ) -> None:
        # Called once the body is read whole (HalfSent.received for its connection).
        self._body, self._done = body, done
        # Bytes taken from gunicorn and not yet handed out, and where the next read starts.
        self._held, self._at = memoryview(b""), 0
        self._whole = declared is not None and 0 < declared <= limit
        self._turn = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)  # `failed`, as gunicorn's body has it

    def _take_turn(self) -> None:
        if self._turn:
            take_turns()
        self._turn = True

    def _fill(self) -> None:
        """Take the whole declared body from gunicorn, on the first read."""
        if self._whole:
            self._whole = False
            self._held, self._at = memoryview(self._body.read()), 0
            self._finished()

    def _finished(self, last: bytes = b"") -> bytes:
        """Report the body read whole (once), and return `last`, the read's own bytes."""
        if self._done is not None:
            self._done()
            self._done = None
        return last

    def _handed(self, end: int) -> bytes:
        data = bytes(self._held[self._at : end])
        self._at = end
        return data

    def read(self, size: int | None = None) -> bytes:
        """Read at most `size` bytes (all that is left without one), after a turn for others."""
        self._take_turn()
        self._fill()
        held = len(self._held) - self._at
        if size is None or size < 0:
            data: bytes = self._handed(len(self._held)) + self._body.read()
            return self._finished(data)
        if held:
            return self._handed(self._at + min(size, held, BODY_PIECE))
        piece: bytes = self._body.read(min(size, BODY_PIECE))
        return piece if piece or size == 0 else self._finished()

    def readline(self, size: int | None = None) -> bytes:
        """Read a line, or at most `size` bytes of it, after a turn for others."""
        self._take_turn()
        self._fill()
        limit = len(self._held) if size is None or size < 0 else self._at + size
        end = min(limit, len(self._held))
        newline = bytes(self._held[self._at : end]).find(b"\n")
        line = self._handed(self._at + newline + 1 if newline >= 0 else end)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        rest: bytes = self._body.readline(None if size is None or size < 0 else size - len(line))
        return line + rest if line or rest or size == 0 else self._finished()

    def readlines(self, hint: int | None = None) -> list[bytes]:
        """Read every line left."""
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _Page:
    """Stand in for the client socket, keeping the error page gunicorn writes to it."""

    written = b""

    def gettimeout(self) -> float:
        """Say the socket is non-blocking, so gunicorn writes at once."""
        return 0.0

    def sendall(self, data: bytes) -> None:
        """Keep what gunicorn writes."""
        self.written += data
