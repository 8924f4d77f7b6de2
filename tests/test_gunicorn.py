"""The service under gunicorn, with the project's gunicorn.conf.py, over real HTTP."""

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

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(data_dir: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "SNOWFLAKE_ACCOUNT": "",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "EMULATOR_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def wait_until_up(port: int, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if call(port, "GET", "/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not answer /health within 30 s")


def call(port: int, method: str, path: str, body: object = None) -> tuple[int, dict, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


def test_create_read_delete_over_http_and_data_survives_a_restart(tmp_path):
    port = free_port()
    with gunicorn(tmp_path, port) as proc:
        status, headers, created = call(
            port, "POST", "/api/v1/users", {"email": "ada@example.com", "name": "Ada"}
        )
        assert status == 201
        assert headers["Location"] == f"/api/v1/users/{created['id']}"
        assert call(port, "GET", headers["Location"])[2] == created
    output = proc.stdout.read() if proc.stdout else ""
    first_app_line = next(line for line in output.splitlines() if line.startswith("{"))
    assert json.loads(first_app_line)["message"] == (
        f"using the embedded Snowflake emulator (fakesnow); data in {tmp_path}"
    )

    with gunicorn(tmp_path, port):
        status, _, read = call(port, "GET", f"/api/v1/users/{created['id']}")
        assert (status, read) == (200, created)
        assert call(port, "DELETE", f"/api/v1/users/{created['id']}")[0] == 204
        assert call(port, "GET", f"/api/v1/users/{created['id']}")[0] == 404
