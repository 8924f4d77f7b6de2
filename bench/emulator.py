"""Figures d and e: worker memory under a read/write mix, and the emulator's own speed."""

from __future__ import annotations

from pathlib import Path

from bench import load, servers
from bench.mix import CLIENTS, CYCLE, Mix
from bench.report import Goal, Section

CHECKPOINTS = (1_000, 5_000, 10_000, 15_000, 20_000)
SECONDS = 20


def measure(tmp: Path, log: Path) -> tuple[Section, Section]:
    """Serve the emulator as `make run` does; return the memory and emulator sections."""
    env = servers.emulator_env(tmp / "data", LOG_LEVEL="INFO")
    with servers.gunicorn(env, log, probe="/health/ready") as server:
        memory = _memory(server)
        emulator = _emulator_speed(server)
    return memory, emulator


def _memory(server: servers.Server) -> Section:
    """Figure d: worker RSS at each checkpoint of the mix."""
    section = Section(
        "d. Memory",
        "The service on the emulator, started as `make run` starts it (gunicorn.conf.py: one "
        "gevent worker, access log on) with a fresh EMULATOR_DATA_DIR, driven by "
        f"bench/mix.py from {CLIENTS} keep-alive connections: in every {len(CYCLE)} requests "
        f"{CYCLE.count('P')} POST (unique email), {CYCLE.count('U')} PATCH, {CYCLE.count('L')} "
        f"list page and {CYCLE.count('G')} GET /users/{{id}}. The worker's VmRSS (from "
        "/proc/<worker>/status) is read after each checkpoint.",
        ("requests sent", "worker VmRSS MiB", "failures so far"),
    )
    mix = Mix(server.port)
    rss: dict[int, int] = {}
    for checkpoint in CHECKPOINTS:
        mix.send(checkpoint - mix.sent)
        rss[checkpoint] = server.worker_rss_kib()
        section.rows.append((f"{checkpoint:,}", f"{rss[checkpoint] / 1024:.1f}", str(mix.failures)))
    first, last = rss[CHECKPOINTS[0]], rss[CHECKPOINTS[-1]]
    growth = (last - first) / first
    section.goals.append(
        Goal(
            f"VmRSS growth from {CHECKPOINTS[0]:,} to {CHECKPOINTS[-1]:,} requests < 10%",
            f"{growth * 100:+.1f}%",
            growth < 0.10,
        )
    )
    steps = [after - before for before, after in zip((0, *CHECKPOINTS), CHECKPOINTS, strict=False)]
    section.commands += [
        f"{server.command} &",
        f"# bench/emulator.py runs the mix in-process; the same client from a shell, in turn with"
        f" {', '.join(f'{n:,}' for n in steps)} requests, reading VmRSS after each:",
        f".venv/bin/python -m bench.mix {server.port} {steps[0]}",
    ]
    return section


def _emulator_speed(server: servers.Server) -> Section:
    """Figure e: the emulator's own requests/s and latency on GET /users/{id}."""
    run = load.wrk(server.url("/api/v1/users/1"), connections=16, seconds=SECONDS)
    section = Section(
        "e. The emulator's own figures",
        "These are the emulator's figures, not the service's: fakesnow spends about 5 ms of CPU "
        "translating each statement, so this measures fakesnow. Same server as figure d, right "
        "after it, 16 wrk connections for 20 s.",
        ("request", "requests/s", "p50 ms", "p99 ms", "failures"),
    )
    section.rows.append(
        (
            "GET /api/v1/users/{id} (emulator)",
            f"{run.requests_per_s:,.0f}",
            f"{run.p50_ms:.1f}",
            f"{run.p99_ms:.1f}",
            str(run.failures),
        )
    )
    section.commands += [f"{server.command} &", run.command]
    return section
