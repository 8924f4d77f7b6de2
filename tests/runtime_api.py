"""Lambda's Runtime API on 127.0.0.1 and the built zip under awslambdaric, for tests.

The server is bench/runtime_api.py's and the build bench/lambda_runtime.py's (the cold-start
benchmark runs the same way; bench imports nothing from tests/); this adds what only the tests
need.
"""

from __future__ import annotations

from pathlib import Path

from bench.lambda_runtime import build_zip as build_zip
from bench.lambda_runtime import runtime_folder as runtime_folder
from bench.lambda_runtime import runtime_python as runtime_python
from bench.lambda_runtime import start_client as start_client
from bench.lambda_runtime import stop_client as stop_client
from bench.lambda_runtime import unpack as unpack
from bench.runtime_api import Invocation as Invocation
from bench.runtime_api import RuntimeApi as RuntimeApi

PROBE = Path(__file__).resolve().parent / "lambda_probe"
# /proc/net/tcp's states that still hold a connection (all but LISTEN and TIME_WAIT).
HELD_STATES = {"01", "02", "03", "04", "05", "07", "08", "09", "0B"}


def connections_to(pid: int, port: int) -> int:
    """Count the TCP connections process pid holds to 127.0.0.1:port, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] in HELD_STATES and fields[9] in inodes:
                count += 1
    return count
