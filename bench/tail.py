"""Figure f: open-loop latency at a constant rate on the shipped worker (bench/openloop.py)."""

from __future__ import annotations

from pathlib import Path

from bench import load, openloop, servers
from bench.report import Goal, Section
from bench.stack import GET_PATH, LOGGED, QUIET, SERVICE, SHIPPED

SECONDS = 10
SHARES = (0.50, 0.80, 0.95)
CONNECTIONS = (16, 256)


def open_loop(log: Path, capacity: dict[str, float]) -> Section:
    """Hold 50, 80 and 95 % of the closed-loop capacity (figure a) and time every answer."""
    section = Section(
        "f. Open-loop latency",
        "`GET /api/v1/users/{id}` on the null connection at a constant rate: request i is "
        "due at start + i / rate whatever the server does, waits for a free keep-alive "
        "connection if none is, and is timed from when it was due (no coordinated omission; "
        f"bench/openloop.py). {SECONDS} s per rate, after a wrk warm-up, at 50, 80 and 95 % of "
        "the service's median closed-loop rate in figure a (with the same access-log setting), "
        "over 16 and 256 connections. `max` is the longest any one request waited. "
        "`generator lag` is how late the generator itself sent a request a free connection "
        "could have taken; `run queue` as in figure a.",
        (
            "access log",
            "connections",
            "rate",
            "of capacity",
            "achieved",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "generator lag ms",
            "run queue ms",
            "non-2xx",
        ),
    )
    for name, env in (("off", QUIET), ("on", LOGGED)):
        rate_at = capacity["logged" if env is LOGGED else "quiet"]
        for connections in CONNECTIONS:
            args = [*SHIPPED, "--workers=1", "--log-level=warning", f"{SERVICE}:app"]
            with servers.gunicorn(env, log, args=args, probe=GET_PATH) as server:
                url = server.url(GET_PATH)
                load.warm_up(url, connections=connections)
                for share in SHARES:
                    _row(section, server, url, name, connections, share, share * rate_at)
                section.commands.append(f"{server.command} &")
    section.commands.append(
        ".venv/bin/python -m bench.openloop --rate RATE --connections N --seconds "
        f"{SECONDS} http://127.0.0.1:PORT{GET_PATH}"
    )
    return section


def _row(
    section: Section,
    server: servers.Server,
    url: str,
    log_name: str,
    connections: int,
    share: float,
    rate: float,
) -> None:
    """Run the generator once at `rate`; add its row, and the goal at 80 %."""
    queued = server.worker_run_queue_ms()
    figures = openloop.run(url, rate=rate, connections=connections, seconds=SECONDS).summary()
    queued = server.worker_run_queue_ms() - queued
    section.rows.append(
        (
            log_name,
            str(connections),
            f"{rate:,.0f}",
            f"{share:.0%}",
            f"{figures['achieved']:,.0f}",
            *(f"{figures[k]:.2f}" for k in ("p50_ms", "p99_ms", "p999_ms")),
            f"{figures['max_ms']:.0f}",
            f"{figures['generator_late_ms']:.1f}",
            f"{queued:.0f}",
            str(int(figures["refused"] + figures["failures"])),
        )
    )
    if share == 0.80:
        p999 = figures["p999_ms"]
        text = f"p99.9 < 50 ms at 80 %, access log {log_name}, {connections} connections"
        section.goals.append(Goal(text, f"{p999:.1f} ms", p999 < 50))
