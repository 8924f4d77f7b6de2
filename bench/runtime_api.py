"""Lambda's Runtime API on 127.0.0.1, for one runtime client: hands out events, records answers.

Serves what awslambdaric calls: `/invocation/next` (with the four headers Lambda sends),
`/invocation/{id}/response` and `/error`, `/init/error`, `/restore/next` (held until told to
restore) and `/restore/error`. Any other GET is recorded too (the tests' probe marks points
that way) and answered 404. Used by bench/lambda_cold_start.py; re-exported for the tests.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:userservice"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing of a client that went away (the runtime client is stopped mid-call)."""


@dataclass
class Invocation:
    """One event handed to the client, and what came back for it."""

    request_id: str
    event: Mapping[str, Any]
    deadline_ms: int
    kind: str = ""  # "response" or "error" once answered
    answer: Any = None
    answered: threading.Event = field(default_factory=threading.Event)


class RuntimeApi:
    """Lambda's Runtime API for one runtime client, on 127.0.0.1; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []  # "METHOD /path" without the prefix, in arrival order
        self.init_errors: list[tuple[dict[str, str], Any]] = []
        self.restore_errors: list[tuple[dict[str, str], Any]] = []
        self.restore_asked = threading.Event()  # the client is waiting on /restore/next
        self.restore = threading.Event()  # set it to let /restore/next answer
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """Return host:port, as AWS_LAMBDA_RUNTIME_API wants it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> RuntimeApi:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; a client still waiting on /invocation/next is left hanging."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def submit(self, event: Mapping[str, Any], deadline_in: float = 30.0) -> Invocation:
        """Queue an event for the next /invocation/next, due deadline_in seconds from now."""
        deadline_ms = int((time.time() + deadline_in) * 1000)
        invocation = Invocation(str(uuid.uuid4()), event, deadline_ms)
        self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation

    def invoke(
        self, event: Mapping[str, Any], deadline_in: float = 30.0, timeout: float = 60.0
    ) -> Invocation:
        """Hand the client one event and wait until it answers."""
        invocation = self.submit(event, deadline_in)
        if not invocation.answered.wait(timeout):
            raise TimeoutError(f"no answer to invocation {invocation.request_id} in {timeout} s")
        return invocation

    def _next(self) -> Invocation | None:
        while not self._stopping.is_set():
            try:
                return self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.removeprefix(PREFIX)
                api.calls.append(f"GET {path}")
                if path == "/invocation/next":
                    self._send_next()
                elif path == "/restore/next":
                    api.restore_asked.set()
                    api.restore.wait()
                    self._reply(200, {})
                else:
                    self._reply(404, {"errorMessage": f"no {path}"})

            def do_POST(self) -> None:
                path = self.path.removeprefix(PREFIX)
                api.calls.append(f"POST {path}")
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                parts = path.strip("/").split("/")
                if path == "/init/error":
                    api.init_errors.append((dict(self.headers), body))
                elif path == "/restore/error":
                    api.restore_errors.append((dict(self.headers), body))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[1] in api._invocations:
                    invocation = api._invocations[parts[1]]
                    invocation.kind, invocation.answer = parts[2], body
                    invocation.answered.set()
                else:
                    self._reply(404, {"errorMessage": f"no {path}"})
                    return
                self._reply(202, {"status": "OK"})

            def _send_next(self) -> None:
                invocation = api._next()
                if invocation is None:
                    return  # stopping: the client is stopped with SIGTERM, never a non-200
                body = json.dumps(invocation.event).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{invocation.request_id}")
                self.end_headers()
                self.wfile.write(body)

            def _reply(self, status: int, document: object) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Write no access line to stderr."""

        return Handler
