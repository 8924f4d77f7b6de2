"""Start gunicorn on a free port, find its worker, and read the worker's memory."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


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
        """Return the PID of the (one) worker."""
        pid = self.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0])

    def worker_rss_kib(self) -> int:
        """Return the worker's resident set size in KiB (VmRSS)."""
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in the worker's status")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def null_args(module: str, threads: int) -> list[str]:
    """Return gunicorn's arguments for a bench WSGI module: one gthread worker."""
    return [
        "--workers=1",
        "--worker-class=gthread",
        f"--threads={threads}",
        "--keep-alive=5",
        "--log-level=warning",
        f"{module}:app",
    ]


@contextmanager
def gunicorn(args: list[str], env: dict[str, str], log: Path, probe: str) -> Iterator[Server]:
    """Run gunicorn until the block ends, once `probe` answers 200; its output goes to `log`."""
    port = free_port()
    argv = [GUNICORN, f"--bind=127.0.0.1:{port}", *args]
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
    server = Server(port, proc, command)
    try:
        try:
            _wait_until_ok(server, probe)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError("\n".join([str(exc), *tail])) from None
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _wait_until_ok(server: Server, path: str, seconds: float = 120) -> None:
    """Poll `path` until it answers 200, or raise if gunicorn exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.proc.returncode}: {server.command}")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"{path} did not answer 200 within {seconds} s: {server.command}")
