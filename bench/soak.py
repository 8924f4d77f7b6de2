"""Load and soak: gunicorn on the emulator over real HTTP, wrk's read/write mix at 32 connections.

Seeds 50 users, then runs bench/soak.lua (80% GET one user, 10% list, 10% create) for
SECONDS and reports requests/s, p50 and p99, the error count (every non-2xx answer and every
socket error) and the worker's RSS at the start and the end. These are the emulator's
figures: it spends about 5 ms of CPU per statement translating SQL, so they measure it, not
the service's own cost (bench/run.py measures that with a null connection).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from servers import call, emulator_env, free_port, gunicorn, workers  # noqa: E402

SECONDS = 60
CONNECTIONS = 32


def rss_kib(pid: int) -> int:
    """Return a process's resident set size in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1])


def wrk(port: int) -> str:
    """Run wrk with the mix and return its report."""
    return subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "soak.lua"),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def figures(report: str) -> dict[str, str]:
    """Read requests/s, p50, p99 and the errors from wrk's report."""
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    return {
        "requests": re.search(r"(\d+) requests in", report)[1],
        "rps": re.search(r"Requests/sec:\s+([\d.]+)", report)[1],
        "p50": re.search(r"50%\s+(\S+)", report)[1],
        "p99": re.search(r"99%\s+(\S+)", report)[1],
        "errors": str(int(non_2xx[1]) if non_2xx else 0)
        + (f" (+ socket {socket.groups()})" if socket else ""),
    }


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = emulator_env(data)
        with gunicorn(port, env) as master:
            for n in range(50):
                assert (
                    call(
                        port,
                        "POST",
                        "/api/v1/users",
                        {"email": f"seed{n}@example.com", "name": "Seed"},
                    )[0]
                    == 201
                )
            (worker,) = workers(master.pid)
            rss_start = rss_kib(worker)
            started = time.monotonic()
            report = wrk(port)
            took = time.monotonic() - started
            rss_end = rss_kib(worker)
    got = figures(report)
    print(
        f"| soak: {CONNECTIONS} connections, {took:.0f} s, 80/10/10 GET/list/POST, emulator "
        f"| {got['rps']} req/s | p50 {got['p50']} | p99 {got['p99']} | {got['requests']} "
        f"requests, errors {got['errors']} | worker RSS {rss_start / 1024:.1f} -> "
        f"{rss_end / 1024:.1f} MiB |"
    )


if __name__ == "__main__":
    main()
