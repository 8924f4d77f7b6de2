"""Describe the machine and the code a run measured."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def describe() -> list[tuple[str, str]]:
    """Return (what, value) pairs: date, CPUs, CPU model, memory, software and code."""
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPUs (nproc)", str(len(os.sched_getaffinity(0)))),
        ("CPU model", _cpuinfo("model name")),
        ("memory", f"{_meminfo_kib('MemTotal') / 1024 / 1024:.1f} GiB"),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("wrk", _first_line(["wrk", "--version"])),
        ("code", _code_version()),
    ]


def load_average() -> str:
    """Return the 1-minute load average (other work on the machine skews every figure)."""
    return Path("/proc/loadavg").read_text().split()[0]


def calibration_ms() -> str:
    """Time a fixed pure-Python loop: a slower figure than usual means a busy or throttled CPU."""
    began = time.thread_time()
    total = 0
    for number in range(5_000_000):
        total += number
    return f"{(time.thread_time() - began) * 1000:.0f} ms"


def _cpuinfo(key: str) -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def _first_line(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return (result.stdout or result.stderr).splitlines()[0].strip()


def _code_version() -> str:
    """Name the commit measured, and say whether the working tree had changes on top of it."""
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    status = subprocess.run(
        [
            "git",
            "--no-optional-locks",
            "-C",
            str(ROOT),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return f"{commit}" + (" with uncommitted changes" if status.strip() else "")
