"""Run every benchmark and write docs/PERFORMANCE.md: `make bench`, or `python -m bench.run`."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench import machine
from bench.install import install

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "PERFORMANCE.md"
T = TypeVar("T")
# Everything after this line in the report is written by hand, and kept by every run.
KEEP_MARKER = "<!-- Written by hand below this line; `make bench` keeps it. -->"


def main() -> None:
    """Install what is needed, measure every figure, and write the report."""
    install()
    from bench import emulator, emulator_stall, pool_rate, report, stack, tail

    began = time.monotonic()
    loads, calibrations = [machine.load_average()], [machine.calibration_ms()]
    with tempfile.TemporaryDirectory(prefix="userservice-bench-") as tmp:
        log = Path(tmp) / "servers.log"
        pool = _stage("c. pool (about 15 s)", pool_rate.section)
        cost, capacity = _stage("a. stack cost (about 3 minutes)", lambda: stack.stack_cost(log))
        bound = _stage("b. latency bound (about 2 minutes)", lambda: stack.latency_bound(log))
        tails = _stage("f. open loop (about 3 minutes)", lambda: tail.open_loop(log, capacity))
        memory, own = _stage(
            "d, e. the emulator (about 3.5 minutes)", lambda: emulator.measure(Path(tmp), log)
        )
        stall = _stage(
            "g. the emulator under gevent (about 1 minute)",
            lambda: emulator_stall.measure(Path(tmp), log),
        )
    loads.append(machine.load_average())
    calibrations.append(machine.calibration_ms())
    sections = [cost, bound, tails, pool, memory, own, stall]
    minutes = (time.monotonic() - began) / 60
    report.write(REPORT, _head(loads, calibrations, minutes), sections, _kept())
    for section in sections:
        for goal in section.goals:
            verdict = "met   " if goal.met else "MISSED"
            print(f"{verdict} {section.title}: {goal.text} ({goal.measured})")
    print(f"wrote {REPORT.relative_to(ROOT)}")


def _stage(title: str, measure: Callable[[], T]) -> T:
    """Run one stage of the benchmark, saying what it is and how long it took."""
    print(title, flush=True)
    began = time.monotonic()
    result = measure()
    print(f"  done in {time.monotonic() - began:.0f} s", flush=True)
    return result


def _head(loads: list[str], calibrations: list[str], minutes: float) -> str:
    """Return the report's title, how it was made, and the machine."""
    rows = [
        *machine.describe(),
        ("load average (1 min) at start, end", ", ".join(loads)),
        ("CPU check (5M-step Python loop) at start, end", ", ".join(calibrations)),
    ]
    return "\n".join(
        [
            "# Performance",
            "",
            "Written by `make bench` (bench/run.py); do not edit above the hand-written part at",
            "the end. Except figures d and e, the service runs on the **null connection**",
            "(bench/nulldb.py): a connect function handed to the pool exactly as the Snowflake",
            "one is, whose cursors recognise each statement of sql/ and answer canned rows at no",
            "cost, so the figures measure the stack, not the emulator (about 5 ms of CPU per",
            "statement). wrk and the server share the machine's CPUs; other work on it skews",
            "every figure (see the load average).",
            "",
            "| machine | |",
            "|---|---|",
            *(f"| {what} | {value} |" for what, value in rows),
            f"| run time | {minutes:.1f} minutes |",
            "",
        ]
    )


def _kept() -> str:
    """Return the hand-written part of the current report (the marker line included)."""
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    _, found, kept = text.partition(KEEP_MARKER)
    return KEEP_MARKER + (kept if found else "\n")


if __name__ == "__main__":
    main()
