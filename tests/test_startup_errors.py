"""What stops the start says so in one line and exits non-zero: bad settings, a held emulator.

Each command runs as a newcomer runs it (gunicorn with gunicorn.conf.py, the flask CLI,
make), in its own process; the emulator is held by the service itself under gunicorn.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.servers import BIN, ROOT, emulator_env, free_port, gunicorn

pytestmark = pytest.mark.slow

GUNICORN = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
INIT_DB = [str(BIN / "flask"), "--app", "userservice", "init-db"]


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository's folder and wait for it."""
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def health(port: int) -> int:
    """Return the status of GET /health on 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def held(tmp_path_factory) -> Iterator[tuple[Path, int, int]]:
    """Serve on an emulator folder; yield the folder, the master's PID and its worker's."""
    data_dir = tmp_path_factory.mktemp("held")
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with gunicorn(emulator_env(data_dir), log) as master:
        assert health(master.port) == 200  # the worker has built the app: it holds the files
        [worker] = master.workers()
        yield data_dir, master.proc.pid, worker


def lock_line(data_dir: Path, master: int, worker: int) -> str:
    """Return the one line that names the process holding the emulator's files."""
    return (
        f"the emulator's data in {data_dir} is in use by process {worker} (gunicorn), a worker "
        f"of {master}: stop it (kill {master}), or point EMULATOR_DATA_DIR at another folder"
    )


def test_a_bad_setting_stops_gunicorn_with_one_line(tmp_path):
    result = run(GUNICORN, emulator_env(tmp_path, PORT="eighty"))

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "userservice: cannot start: PORT must be an integer, got 'eighty'\n",
    )


def test_an_unreadable_key_stops_gunicorn_with_one_line_before_any_worker_forks():
    # Against Snowflake, WEB_CONCURRENCY (2) workers: each would print the line, and the
    # master, stopped by the first, would race the second into a HaltServer traceback.
    env = {
        "ENVIRONMENT": "production",
        "PORT": str(free_port()),
        "SNOWFLAKE_ACCOUNT": "acct",
        "SNOWFLAKE_USER": "u",
        "SNOWFLAKE_WAREHOUSE": "w",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": "1",
        "SNOWFLAKE_PRIVATE_KEY_FILE": "/nonexistent/key.pem",
        "AUTH_ISSUER": "http://127.0.0.1:1/",
        "AUTH_AUDIENCE": "a",
        "AUTH_JWKS_URL": "http://127.0.0.1:1/jwks",
    }
    line = (
        "userservice: cannot start: SNOWFLAKE_PRIVATE_KEY_FILE cannot be read"
        " (No such file or directory)\n"
    )

    for _ in range(5):
        result = run(GUNICORN, env)

        assert (result.returncode, result.stdout, result.stderr) == (1, "", line)


def test_a_bad_setting_stops_the_flask_cli_with_one_line(tmp_path):
    result = run(INIT_DB, emulator_env(tmp_path, DB_POOL_TIMEOUT="soon"))

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "Error: DB_POOL_TIMEOUT must be a number, got 'soon'\n",
    )


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        ("IDEMPOTENCY_KEY_TTL_SECONDS", "IDEMPOTENCY_KEY_TTL_SECONDS must be at most 2592000"),
        ("IDEMPOTENCY_LEASE_SECONDS", "IDEMPOTENCY_LEASE_SECONDS must be at most 86400"),
    ],
)
def test_a_huge_number_stops_gunicorn_and_the_flask_cli_with_one_line(tmp_path, setting, line):
    # Once these started, and the first keyed POST was a 500 (OverflowError in timedelta).
    env = emulator_env(tmp_path, **{setting: "999999999999"})

    served = run(GUNICORN, env)
    init_db = run(INIT_DB, env)

    assert (served.returncode, served.stdout, served.stderr) == (
        1,
        "",
        f"userservice: cannot start: {line}\n",
    )
    assert (init_db.returncode, init_db.stdout, init_db.stderr) == (1, "", f"Error: {line}\n")


def test_a_data_dir_that_is_a_file_stops_gunicorn_and_the_flask_cli_with_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    env = emulator_env(afile)
    line = f"EMULATOR_DATA_DIR={afile} is not a folder the service can write (a file, not a folder)"

    served = run(GUNICORN, env)
    init_db = run(INIT_DB, env)

    assert (served.returncode, served.stdout, served.stderr) == (
        1,
        "",
        f"userservice: cannot start: {line}\n",
    )
    assert (init_db.returncode, init_db.stderr) == (1, f"Error: {line}\n")
    assert "Traceback" not in init_db.stdout


def test_init_db_beside_a_running_server_names_the_server_in_one_line(held):
    data_dir, master, worker = held

    result = run(INIT_DB, emulator_env(data_dir))

    assert (result.returncode, result.stderr) == (
        1,
        f"Error: {lock_line(data_dir, master, worker)}\n",
    )
    assert "Traceback" not in result.stdout


def test_a_second_server_on_the_same_data_names_the_first_and_never_binds(held):
    data_dir, master, worker = held
    port = free_port()

    result = run(GUNICORN, emulator_env(data_dir, PORT=str(port)))

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"userservice: cannot start: {lock_line(data_dir, master, worker)}\n",
    )
    with pytest.raises(ConnectionRefusedError):
        health(port)


def test_a_worker_that_meets_the_lock_stops_gunicorn_rather_than_restarting(held):
    # The master checks first; a worker that still meets the lock (another process took it
    # in between) exits with gunicorn's boot-error code, which stops the master.
    data_dir, master, worker = held

    result = run([sys.executable, "-c", "import wsgi"], emulator_env(data_dir))

    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        3,
        f"userservice: cannot start: {lock_line(data_dir, master, worker)}",
    )
    assert "Traceback" not in result.stderr
