"""Run the Lambda zip as Lambda does: awslambdaric, fed by a Runtime API server on 127.0.0.1.

RuntimeApi serves the endpoints of Lambda's Runtime API that awslambdaric calls, records every
call and answer, and holds `/restore/next` until told to restore. The zip is built with
scripts/build_lambda_zip.py for x86_64 and the runtime's Python, and awslambdaric with
boto3/botocore (what the managed runtime provides) is installed into a folder of its own for
that Python: never the project's venv. Used by the benchmarks and re-exported for the tests.
"""

from __future__ import annotations

import glob
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:userservice"
# What the managed runtime has besides the standard library (boto3 brings botocore & co.).
RUNTIME_PINS = ("awslambdaric", "boto3", "botocore")


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


def runtime_python() -> tuple[str, str]:
    """Return the newest Python 3.12 (else 3.11) found under pyenv or on PATH, and its version."""
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    for version in ("3.12", "3.11"):
        found = [
            p
            for r in roots
            if r
            for p in glob.glob(f"{r}/versions/{version}.*/bin/python{version}")
        ]
        found += [p for d in os.get_exec_path() if os.access(p := f"{d}/python{version}", os.X_OK)]
        if found:
            return sorted(found)[-1], version
    raise RuntimeError("no Python 3.12 (nor 3.11) here: install one, e.g. with pyenv")


def build_zip(out: Path, python: str, version: str, arch: str = "x86_64") -> Path:
    """Build the Lambda zip with the Makefile's target, for arch and the runtime's Python."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["make", "-s", "lambda-zip", f"ARCH={arch}", f"LAMBDA_INTERPRETER={python}"]
    command += [f"LAMBDA_PYTHON={version}", f"LAMBDA_ZIP={out}"]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


def unpack(archive: Path, target: Path) -> Path:
    """Unpack the zip into target, which must be empty or missing."""
    target.mkdir(parents=True, exist_ok=True)
    assert not any(target.iterdir()), f"{target} is not empty"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    return target


def runtime_folder(target: Path, python: str) -> Path:
    """Install awslambdaric and boto3/botocore, at the project's pins, for python into target."""
    pins = _pins(ROOT / "requirements-dev.txt") | _pins(ROOT / "requirements.txt")
    wanted = [f"{name}=={pins[name]}" for name in RUNTIME_PINS]
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*command, "--target", str(target), *wanted], check=True)
    return target


def _pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    pairs = (line.split("==") for line in lines if "==" in line)
    return {name.split("[")[0].lower(): version for name, version in pairs}


def start_client(
    path: Sequence[Path],
    python: str,
    api: RuntimeApi,
    env: Mapping[str, str],
    log: Path,
    handler: str = "lambda_handler.handler",
) -> subprocess.Popen[bytes]:
    """Start `python -m awslambdaric HANDLER` in path[0] (the package), as Lambda would.

    Nothing is on the module path but `path`: the unpacked zip, then the runtime's folder.
    """
    package = path[0]
    environ = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": ":".join(map(str, path)),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "userservice",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(package),
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [python, "-m", "awslambdaric", handler],
            cwd=package,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_client(proc: subprocess.Popen[bytes]) -> None:
    """Stop the client with SIGTERM (a non-200 /invocation/next would make it segfault)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
