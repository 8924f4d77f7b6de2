"""The container image, built from the Dockerfile as it stands and served by its own command.

No registry is needed: `make image-base` makes the Dockerfile's FROM image from Debian's
packages (debootstrap; cached outside the repository, keyed by its recipe) and podman builds
the Dockerfile with chroot isolation. `buildah run --isolation chroot --network host` then runs
the image's CMD as its USER, against `fakesnow -s` and a JWKS server on the host. If the engine
cannot run here, the tests fail with its output: they never skip.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from issuer import Issuer

from bench.servers import EmulatorServer, free_port, wait_for_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TAG = "localhost/userservice-test:latest"
ISOLATION = ["--isolation", "chroot"]
# What `buildah run` itself adds to the output when the command exits non-zero.
BUILDAH_SAYS = re.compile(r"subprocess exited with status \d+|Error: exit status \d+")


def run(command: list[str], timeout: float = 900) -> str:
    """Run a command; fail the test with its output if it fails."""
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


@pytest.fixture(scope="module")
def image() -> str:
    """Build the Dockerfile on the local base; print how long each step took."""
    started = time.monotonic()
    base = run(["make", "-s", "image-base"]).strip().splitlines()[-1]
    based = time.monotonic()
    run(["podman", "build", "--pull=never", "--network=host", *ISOLATION, "-t", TAG, "."])
    print(f"image base {based - started:.0f} s ({base}); build {time.monotonic() - based:.0f} s")
    return TAG


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer()
    server.start()
    server.create_schema()
    yield server
    server.kill()


@contextmanager
def serving(image: str, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run the image's own command in a container of its own until the block ends."""
    container = run(["buildah", "from", "--pull-never", image]).strip()
    command = json.loads(
        run(["podman", "image", "inspect", "--format", "{{json .Config.Cmd}}", image])
    )
    flags = [f"--env={name}={value}" for name, value in env.items()]
    argv = ["buildah", "run", *ISOLATION, "--network", "host", *flags, container, "--", *command]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)
        run(["buildah", "rm", container])


def request(port: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def listener_uid(port: int) -> int:
    """Return the uid of the process listening on 127.0.0.1:port (or any address), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if fd.readlink().as_posix() in inodes:
                status = (fd.parents[1] / "status").read_text()
                return int(status.split("Uid:")[1].split()[0])
        except OSError:
            continue
    raise AssertionError(f"no process listens on port {port}")


def test_the_image_serves_health_and_users_through_the_connector_as_non_root(
    image, emulator, tmp_path
):
    issuer = Issuer(tmp_path / "issuer")
    issuer.start()
    port = free_port()
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_USER": "fake",
        "SNOWFLAKE_PASSWORD": "snow",
        "SNOWFLAKE_WAREHOUSE": "userservice",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(emulator.port),
        "SNOWFLAKE_PROTOCOL": "http",
        **issuer.env(),
    }
    token = issuer.token()
    try:
        with serving(image, env, tmp_path / "container.log") as proc:
            wait_for_port(port, proc, seconds=60)
            uid = listener_uid(port)
            health = request(port, "GET", "/health", token)
            made = request(port, "POST", "/api/v1/users", token, {"email": "c@x.io", "name": "C"})
            path = f"/api/v1/users/{made[1]['id']}"
            got = request(port, "GET", path, token)
            gone = request(port, "DELETE", path, token)
            after = request(port, "GET", path, token)
    finally:
        issuer.stop()

    assert health == (200, {"status": "ok"})
    assert (made[0], got[0], got[1]["email"], gone, after[0]) == (
        201,
        200,
        "c@x.io",
        (204, None),
        404,
    )
    assert uid == 10001  # the Dockerfile's USER, not root


def test_production_without_snowflake_settings_refuses_in_one_line(image, tmp_path):
    log = tmp_path / "container.log"
    with serving(image, {"HOST": "127.0.0.1", "PORT": str(free_port())}, log) as proc:
        code = proc.wait(timeout=120)

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if not BUILDAH_SAYS.fullmatch(line)]
    assert code != 0
    assert lines == [
        "userservice: cannot start: ENVIRONMENT=production needs a Snowflake account; "
        "missing: SNOWFLAKE_ACCOUNT, "
        "SNOWFLAKE_USER, SNOWFLAKE_WAREHOUSE"
    ]
