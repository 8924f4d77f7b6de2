"""Drive load with wrk and read its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
WARM_UP_SECONDS = 3


@dataclass
class Run:
    """One wrk measurement: throughput, latency percentiles and failures."""

    command: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    max_ms: float


def wrk(
    url: str, *, connections: int, seconds: int, script: str | None = None, warm: bool = True
) -> Run:
    """Warm up (unless `warm` is false), measure `url` with wrk (2 threads), return the figures."""
    if warm:
        warm_up(url, connections=connections, script=script)
    argv = _wrk_argv(url, connections, seconds, script)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    shown = " ".join(a.replace(str(BENCH.parent) + "/", "") for a in argv)
    return _parse(out, shown)


def _wrk_argv(url: str, connections: int, seconds: int, script: str | None) -> list[str]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout=10s", "--latency"]
    if script:
        argv.append(f"--script={BENCH / script}")
    return [*argv, url]


def warm_up(url: str, *, connections: int, script: str | None = None) -> None:
    """Run wrk briefly, so pools, caches and lazy imports are in place before measuring."""
    argv = _wrk_argv(url, connections, WARM_UP_SECONDS, script)
    subprocess.run(argv, capture_output=True, check=True)


def _parse(out: str, command: str) -> Run:
    """Read requests/s, p50, p99 and failures from wrk's --latency report."""
    rate = float(_find(r"Requests/sec:\s+([\d.]+)", out))
    total = int(_find(r"(\d+) requests in", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failures = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        failures += sum(int(n) for n in socket_errors.groups())
    value, unit = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out).groups()
    worst = float(value) * _UNITS[unit]
    p50, p99 = _percentile("50", out), _percentile("99", out)
    return Run(command, rate, p50, p99, total, failures, worst)


def _percentile(which: str, out: str) -> float:
    value, unit = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
    return float(value) * _UNITS[unit]


def _find(pattern: str, out: str) -> str:
    match = re.search(pattern, out)
    if match is None:
        raise RuntimeError(f"wrk's report has no {pattern!r}:\n{out}")
    return match.group(1)
