"""gunicorn settings, taken from the service's own settings (see README)."""

# gevent must patch the standard library before anything imports ssl or threading (the
# settings below import the service's package), or those modules keep blocking versions.
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
from http import HTTPStatus  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from gunicorn import util  # noqa: E402
from gunicorn.workers.base_async import AsyncWorker  # noqa: E402
from gunicorn.workers.ggevent import GeventWorker  # noqa: E402

from userservice import db, framing, logs  # noqa: E402
from userservice.errors import PROBLEM_JSON, problem_body  # noqa: E402
from userservice.hooks import new_request_id  # noqa: E402
from userservice.settings import Settings  # noqa: E402

_settings = Settings.from_env()
# gunicorn quotes a refused request line in its log line and error text; a query string there
# may carry a credential (`?access_token=...`, which the service refuses), so none is quoted.
_QUERY = re.compile(r"\?[^\s'\"]*")


def _redacted(text: str) -> str:
    """Return gunicorn's text about a refused request with every query string left out."""
    return _QUERY.sub("?[query removed]", text)


class _RedactQueries(logging.Filter):
    """Leave query strings out of gunicorn's own log lines about refused requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without query strings."""
        record.msg, record.args = _redacted(record.getMessage()), None
        return True


logging.getLogger("gunicorn.error").addFilter(_RedactQueries())


class ReadTimeoutWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker, with a read timeout and the service's contract at the door.

    gunicorn bounds the wait for a request's headers by `keepalive` in its gevent worker,
    but reads a body with no timeout: a client that stops mid-body would hold its
    connection for ever. A socket timeout bounds every read; the app answers 408.
    """

    wsgi: Any  # the Flask app gunicorn calls, set by load_wsgi

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one connection with a read timeout on its socket."""
        client.settimeout(_settings.read_timeout)
        AsyncWorker.handle(self, listener, client, addr)

    def load_wsgi(self) -> None:
        """Load the app, wrapped so that an answer to an unread body closes the connection."""
        super().load_wsgi()
        # Flask's own place for middleware: worker.wsgi stays the app (worker_exit needs it).
        self.wsgi.wsgi_app = _closing(self.wsgi.wsgi_app)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Answer a request gunicorn refuses itself as problem details, not its HTML page.

        gunicorn still picks the status, logs the refusal and writes the access line; only
        the page it would send is replaced.
        """
        page = _Page()
        super().handle_error(req, page, addr, exc)
        status = int(page.written.split(b" ", 2)[1]) if page.written else 500
        detail = HTTPStatus(status).description if status == 500 else _redacted(str(exc))
        request_id = new_request_id()
        body = problem_body(
            status,
            HTTPStatus(status).name,
            detail,
            getattr(req or getattr(exc, "req", None), "path", None) or "/",
            request_id,
        )
        content = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\n"
            f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(content)}\r\n"
            f"X-Request-ID: {request_id}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode() + content)
        except OSError:
            self.log.debug("Failed to send error message.")
        # Unread request bytes would turn a plain close into a reset that can destroy the
        # answer before the client reads it (RFC 9112, section 9.6).
        util.close_graceful(client)


# Answers the app gives without having read the whole body: a timeout and a body too large.
UNREAD_BODY_STATUSES = ("408", "413")


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
            if failed or environ.get(framing.CLOSE_AFTER) or status[:3] in UNREAD_BODY_STATUSES:
                start_response.__self__.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return serve


class _Page:
    """Stand in for the client socket, keeping the error page gunicorn writes to it."""

    written = b""

    def gettimeout(self) -> float:
        """Say the socket is non-blocking, so gunicorn writes at once."""
        return 0.0

    def sendall(self, data: bytes) -> None:
        """Keep what gunicorn writes."""
        self.written += data


bind = f"{_settings.host}:{_settings.port}"
# The emulator's DuckDB file admits one process, so on the emulator one worker serves;
# against Snowflake, WEB_CONCURRENCY workers do.
workers = 1 if _settings.use_emulator else _settings.web_concurrency
if _settings.use_emulator:
    logs.configure(_settings.log_level)
    logging.getLogger("userservice.gunicorn").info(
        "using the embedded Snowflake emulator (fakesnow): one worker, %d connections; data in %s",
        _settings.gunicorn_worker_connections,
        Path(_settings.emulator_data_dir).resolve(),
    )
# One greenlet per connection: a slow or idle client costs a few kilobytes, not a thread,
# so slow clients cannot starve the others (README, "Slow clients").
worker_class = ReadTimeoutWorker
worker_connections = _settings.gunicorn_worker_connections
timeout = _settings.gunicorn_timeout
graceful_timeout = _settings.gunicorn_timeout
# In the gevent worker this bounds both an idle keep-alive connection and the time a client
# may take to send a request's headers (a total, so trickled headers are cut too).
keepalive = _settings.read_timeout
# Each worker builds its own app and pool: a pool made before the fork would share sockets.
preload_app = False
# gunicorn 27's control socket lives at ~/.gunicorn/gunicorn.ctl, shared by every gunicorn
# of the user: a second one (tests, a second `make run`) would delete the first's.
control_socket_disable = True
# The app logs one JSON access line per request itself.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()


def worker_exit(server: Any, worker: Any) -> None:
    """Close the exiting worker's pool, so its database sessions end with it."""
    app = getattr(worker, "wsgi", None)  # None when the app failed to load
    if app is not None and db.EXTENSION_KEY in getattr(app, "extensions", {}):
        db.get_from(app).close()
