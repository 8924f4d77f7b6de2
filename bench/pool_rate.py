"""Figure c: checkouts and returns per second, this pool against SQLAlchemy's QueuePool."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import nulldb
from bench.report import Goal, Section
from userservice.db.pool import ConnectionPool

ROOT = Path(__file__).resolve().parents[1]
THREADS = 8
POOL_SIZE = 4
CYCLES_PER_THREAD = 20_000
ROUNDS = 3


def ours() -> Callable[[], None]:
    """Return one checkout-and-return on userservice.db.pool.ConnectionPool."""
    pool = ConnectionPool(nulldb.connect(), min_size=1, max_size=POOL_SIZE)

    def cycle() -> None:
        with pool.connection():
            pass

    return cycle


def queue_pool() -> Callable[[], None]:
    """Return one checkout-and-return on sqlalchemy.pool.QueuePool, same connect function."""
    from sqlalchemy.pool import QueuePool  # installed by bench.run

    pool = QueuePool(nulldb.connect(), pool_size=POOL_SIZE, max_overflow=0)

    def cycle() -> None:
        conn = pool.connect()
        conn.close()

    return cycle


def rate(cycle: Callable[[], None]) -> float:
    """Return checkout-and-return cycles per second with THREADS threads hammering `cycle`."""
    for _ in range(1000):
        cycle()
    start = threading.Barrier(THREADS + 1)

    def work() -> None:
        start.wait()
        for _ in range(CYCLES_PER_THREAD):
            cycle()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    return THREADS * CYCLES_PER_THREAD / (time.perf_counter() - began)


def measure() -> dict[str, float]:
    """Return the median rate of each pool over ROUNDS alternating rounds."""
    cycles = {"userservice ConnectionPool": ours(), "SQLAlchemy QueuePool": queue_pool()}
    rates: dict[str, list[float]] = {name: [] for name in cycles}
    for _ in range(ROUNDS):
        for name, cycle in cycles.items():
            rates[name].append(rate(cycle))
    return {name: statistics.median(values) for name, values in rates.items()}


def section() -> Section:
    """Figure c as a report section, measured in a fresh process (less garbage to collect)."""
    command = [sys.executable, "-m", "bench.pool_rate"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rates: dict[str, float] = json.loads(out)
    ours_rate = rates["userservice ConnectionPool"]
    theirs = rates["SQLAlchemy QueuePool"]
    result = Section(
        "c. Pool",
        f"Checkouts and returns per second from {THREADS} threads, {CYCLES_PER_THREAD:,} each, "
        f"on pools of {POOL_SIZE} connections given the same null connect function: "
        "`with pool.connection(): pass` against `QueuePool(creator, pool_size=4, "
        "max_overflow=0)` with `conn = pool.connect(); conn.close()` (QueuePool also rolls "
        f"back on return, its default). Median of {ROUNDS} alternating rounds, in a process "
        "of its own (the rates swing by 2x with the machine's load; the ratio holds).",
        ("pool", "checkouts + returns / s"),
        rows=[(name, f"{value:,.0f}") for name, value in rates.items()],
    )
    result.goals.append(
        Goal("at least as fast as QueuePool", f"{ours_rate / theirs:.1f}x", ours_rate >= theirs)
    )
    result.commands.append(".venv/bin/python -m bench.pool_rate")
    return result


if __name__ == "__main__":
    print(json.dumps(measure()))
