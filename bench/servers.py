"""Server processes on 127.0.0.1 for the benchmarks and the tests: gunicorn and `fakesnow -s`.

The one place that starts, pauses and kills them by PID (the tests import it; bench/ imports
nothing from tests/). Stand-ins that run in-process live in bench/standins.py.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from userservice import create_app, db
from userservice.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The service as `make run` serves it.
SERVICE = ("--config=gunicorn.conf.py", "wsgi:app")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[Any], seconds: float = 30) -> None:
    """Wait until something accepts connections on the port; raise if the process exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {seconds} s")


def call(
    port: int, method: str, path: str, body: object = None, timeout: float = 30
) -> tuple[int, dict[str, str], Any]:
    """Make one request on a new connection; return status, headers and the decoded JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


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


@dataclass
class Server:
    """A running gunicorn: its port, master process, the command that started it and its log."""

    port: int
    proc: subprocess.Popen[bytes]
    command: str
    log: Path

    def url(self, path: str) -> str:
        """Return the URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def workers(self) -> list[int]:
        """Return the PIDs of the master's worker processes."""
        pid = self.proc.pid
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]

    def worker_run_queue_ms(self) -> float:
        """Return how long the worker's threads have waited for a CPU while runnable, in ms.

        The kernel's schedstat run delay: on a shared machine, a tail that this explains is
        other work's, not the server's.
        """
        tasks = Path(f"/proc/{self.workers()[0]}/task").iterdir()
        return sum(int((task / "schedstat").read_text().split()[1]) for task in tasks) / 1e6

    def worker_rss_kib(self) -> int:
        """Return the (first) worker's resident set size in KiB (VmRSS)."""
        for line in Path(f"/proc/{self.workers()[0]}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in the worker's status")

    def output(self) -> str:
        """Return what gunicorn and the service wrote so far (all of it once the block ended)."""
        return self.log.read_text(errors="replace")


@contextmanager
def gunicorn(
    env: dict[str, str],
    log: Path,
    *,
    args: Sequence[str] = SERVICE,
    port: int | None = None,
    probe: str = "/health",
) -> Iterator[Server]:
    """Run gunicorn until the block ends, once `probe` answers 200; its output goes to `log`."""
    port = port or free_port()
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
        yield Server(port, proc, command, log)
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
            if call(port, "GET", path, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{path} did not answer 200 within {seconds} s")


def emulator_env(data_dir: str | Path, **extra: str) -> dict[str, str]:
    """Return the environment that serves the service on the embedded emulator in data_dir."""
    return {
        "ENVIRONMENT": "development",
        "SNOWFLAKE_ACCOUNT": "",
        "SNOWFLAKE_SECRET_ARN": "",
        "LOG_LEVEL": "WARNING",
        "EMULATOR_DATA_DIR": str(data_dir),
        **extra,
    }


class ServerProcess:
    """A server process listening on 127.0.0.1:port, started from argv and driven by its PID."""

    def __init__(self, argv: list[str], port: int, log: Path | None = None) -> None:
        self.argv, self.port = argv, port
        self.log = log  # where its output goes, if kept (appended across restarts)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, seconds: float = 30) -> None:
        """Start the process and wait until it accepts connections."""
        if self.log is None:
            self.proc = subprocess.Popen(
                self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        else:
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, seconds)

    def stop(self) -> None:
        """Stop the process with SIGTERM, as an orderly shutdown would, and wait for it."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """Kill the process with SIGKILL, as a crash would (a paused one is thawed first)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the process with SIGSTOP: it keeps its sockets but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a paused process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


class EmulatorServer(ServerProcess):
    """The emulator's HTTP server (`fakesnow -s`, in memory: a restart starts empty).

    Run through bench/fakesnow_server.py, which runs its statements one at a time, as
    Snowflake runs MERGEs on one table and as the embedded emulator does.
    """

    def __init__(self, log: Path | None = None) -> None:
        port = free_port()
        script = ROOT / "bench" / "fakesnow_server.py"
        argv = [sys.executable, str(script), "--host", "127.0.0.1", "-p", str(port)]
        super().__init__(argv, port, log)

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
