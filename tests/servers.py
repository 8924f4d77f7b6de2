"""Real server processes on 127.0.0.1 for tests: gunicorn, and the emulator's server mode."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The socket helpers the benchmarks use too live in bench/servers.py (bench imports nothing
# from tests/); they are re-exported here for the tests.
from bench.servers import black_hole as black_hole
from bench.servers import free_port as free_port
from bench.servers import server_settings as server_settings
from userservice import create_app, db

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def wait_for_port(port: int, proc: subprocess.Popen[Any], seconds: float = 30) -> None:
    """Wait until something accepts connections on the port, or fail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened on port {port} within {seconds} s")


def call(port: int, method: str, path: str, body: object = None) -> tuple[int, dict, Any]:
    """Make one HTTP request to 127.0.0.1 and return status, headers and decoded JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


# What a slow client sends before it goes quiet, one kind per connection in turn.
SLOW_REQUESTS = {
    "partial headers": b"GET /api/v1/users/1 HTTP/1.1\r\nHo",
    "trickled body": (
        b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    ),
    "idle keep-alive": b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
}


def open_slow_clients(port: int, count: int) -> list[tuple[str, socket.socket]]:
    """Open `count` connections that each send part of a request (or one request) and stall."""
    opened = []
    kinds = list(SLOW_REQUESTS.items())
    for n in range(count):
        kind, data = kinds[n % len(kinds)]
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(data)
        opened.append((kind, sock))
    return opened


def read_until_closed(
    sock: socket.socket, since: float, seconds: float
) -> tuple[bytes, float | None]:
    """Read until the server closes; return what it sent and when it closed (None: not yet).

    The time is counted from `since` (a time.monotonic()), and waited for at most `seconds`.
    """
    received = b""
    sock.settimeout(max(0.01, since + seconds - time.monotonic()))
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return received, None
    except ConnectionResetError:
        pass
    return received, time.monotonic() - since


def timed_get(port: int, path: str) -> tuple[int, float]:
    """GET a path on a new connection; return the status and the seconds it took."""
    started = time.monotonic()
    status = call(port, "GET", path)[0]
    return status, time.monotonic() - started


def emulator_env(data_dir: str | Path, **extra: str) -> dict[str, str]:
    """Return the environment that runs the service on the embedded emulator in data_dir."""
    return {
        "ENVIRONMENT": "development",
        "SNOWFLAKE_ACCOUNT": "",
        "SNOWFLAKE_SECRET_ARN": "",
        "LOG_LEVEL": "WARNING",
        "EMULATOR_DATA_DIR": str(data_dir),
        **extra,
    }


def emulator_server_env(port: int, **extra: str) -> dict[str, str]:
    """Return the settings that point the service at `fakesnow -s` on 127.0.0.1:port."""
    return {
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_USER": "fake",
        "SNOWFLAKE_PASSWORD": "snow",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(port),
        "SNOWFLAKE_PROTOCOL": "http",
        **extra,
    }


@contextmanager
def gunicorn(port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Run the service under gunicorn with the project's gunicorn.conf.py until /health is up."""
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def workers(master_pid: int) -> list[int]:
    """Return the PIDs of a gunicorn master's worker processes."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


class EmulatorServer:
    """The emulator's HTTP server (`fakesnow -s`) in a subprocess, driven by its PID."""

    def __init__(self, port: int, log: Path | None = None) -> None:
        self.port = port
        self.log = log  # where its output (uvicorn's access lines) goes, if kept
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (in-memory: a restart starts empty) and wait until it listens."""
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [str(BIN / "fakesnow"), "-s", "--host", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        wait_for_port(self.port, self.proc)

    def create_schema(self) -> None:
        """Create the users table and its sequence, as `flask init-db` does on an account."""
        app = create_app(server_settings(self.port))
        with app.app_context():
            db.create_schema()
        db.get_from(app).close()

    def logins(self) -> int:
        """Count the logins the server has answered, from its access lines (needs a log)."""
        assert self.log is not None, "start the server with a log to count logins"
        return self.log.read_text().count("INFO:     Session login ")

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server with SIGTERM, as an orderly shutdown would, and wait for it."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the server with SIGSTOP: it keeps its sockets but answers nothing."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a paused server."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
