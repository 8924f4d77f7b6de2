"""Every server process the bench starts on 127.0.0.1: gunicorn, `fakesnow -s`, and stand-ins."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from userservice.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Server:
    """A running gunicorn: its port, master process and the command that started it."""

    port: int
    proc: subprocess.Popen[bytes]
    command: str

    def url(self, path: str) -> str:
        """Return the URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def worker_pid(self) -> int:
        """Return the process ID of the (first) worker."""
        pid = self.proc.pid
        return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])

    def worker_run_queue_ms(self) -> float:
        """Return how long the worker's threads have waited for a CPU while runnable, in ms.

        The kernel's schedstat run delay: on a shared machine, a tail that this explains is
        other work's, not the server's.
        """
        tasks = Path(f"/proc/{self.worker_pid()}/task").iterdir()
        return sum(int((task / "schedstat").read_text().split()[1]) for task in tasks) / 1e6

    def worker_rss_kib(self) -> int:
        """Return the (one) worker's resident set size in KiB (VmRSS)."""
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in the worker's status")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, method: str, path: str, body: object = None, timeout: float = 30) -> int:
    """Make one request on a new connection and return its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextmanager
def gunicorn(args: list[str], env: dict[str, str], log: Path, probe: str) -> Iterator[Server]:
    """Run gunicorn until the block ends, once `probe` answers 200; its output goes to `log`."""
    port = free_port()
    argv = [str(BIN / "gunicorn"), f"--bind=127.0.0.1:{port}", *args]
    shown = " ".join(f"{k}={v}" for k, v in env.items())
    command = f"{shown} .venv/bin/gunicorn {' '.join(argv[1:])}".strip()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            _wait_until_ok(port, proc, probe)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError("\n".join([str(exc), command, *tail])) from None
        yield Server(port, proc, command)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _wait_until_ok(
    port: int, proc: subprocess.Popen[bytes], path: str, seconds: float = 120
) -> None:
    """Poll `path` until it answers 200, or raise if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if request(port, "GET", path, timeout=5) == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{path} did not answer 200 within {seconds} s")


class EmulatorServer:
    """The emulator's HTTP server (`fakesnow -s`, in memory) in a process driven by its PID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, seconds: float = 30) -> None:
        """Start the server (empty, as after any restart) and wait until it accepts connections."""
        argv = [str(BIN / "fakesnow"), "-s", "--host", "127.0.0.1", "-p", str(self.port)]
        self.proc = proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + seconds
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"fakesnow did not listen on {self.port} within {seconds} s")

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the server with SIGSTOP: it keeps its sockets but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a paused server."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def server_settings(port: int) -> Settings:
    """Return the service's default settings, pointed at an emulator server on 127.0.0.1:port."""
    return Settings(
        snowflake_account="fakesnow",
        snowflake_user="fake",
        snowflake_password="snow",
        snowflake_host="127.0.0.1",
        snowflake_port=port,
        snowflake_protocol="http",
        log_level="CRITICAL",
    )


@contextmanager
def black_hole() -> Iterator[int]:
    """Listen on a free port, accept every connection and never answer; yield the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return  # the listener was closed

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        listener.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()


@contextmanager
def json_document(document: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """Serve `document` at every path; yield its URL and the list of paths requested so far."""
    body, requested = json.dumps(document).encode(), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            """Answer with the document, and note the path asked for."""
            requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Write no access line to stderr."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/document.json", requested
    finally:
        server.shutdown()
        server.server_close()
