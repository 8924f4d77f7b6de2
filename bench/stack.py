"""Figures a and b: the service and a bare Flask app under the worker gunicorn.conf.py ships."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import load, servers
from bench.report import Goal, Section

SERVICE, BARE, BARE_HEADERS = "bench.null_wsgi", "bench.bare_wsgi", "bench.bare_headers"
GET_PATH, POST_PATH = "/api/v1/users/1", "/api/v1/users"
SECONDS = 15
ROUNDS = 2
LATENCY_MS = 50
POOL = 8
# The service's DB_POOL_TIMEOUT (default): no request waits for a session longer.
POOL_TIMEOUT_S = 3.0
# The service's own gunicorn.conf.py (gevent worker, READ_TIMEOUT, the door's problem details);
# only the app module differs between the service and its floor.
SHIPPED = ["--config=gunicorn.conf.py"]
# For reference only: the thread worker the service served with before, same settings.
GTHREAD = ["--config=gunicorn.conf.py", "--worker-class=gthread", "--threads=8"]
QUIET, LOGGED = {"LOG_LEVEL": "WARNING"}, {"LOG_LEVEL": "INFO"}


def measure(
    module: str,
    worker: list[str],
    env: dict[str, str],
    log: Path,
    *,
    connections: int = 16,
    post: bool = False,
    settle: float = 0.0,
) -> tuple[load.Run, float]:
    """Serve `module` with one worker; return wrk's figures and the worker's run-queue wait.

    `settle` seconds pass between the warm-up and the measurement, for the requests the
    warm-up left queued in the server when its wrk exited to be served or refused.
    """
    args = [*worker, "--workers=1", "--log-level=warning", f"{module}:app"]
    with servers.gunicorn(env, log, args=args, probe=GET_PATH) as server:
        url, script = server.url(POST_PATH if post else GET_PATH), "post.lua" if post else None
        load.warm_up(url, connections=connections, script=script)
        time.sleep(settle)
        queued = server.worker_run_queue_ms()
        run = load.wrk(url, connections=connections, seconds=SECONDS, script=script, warm=False)
        queued = server.worker_run_queue_ms() - queued
        run.command = f"{server.command} &\n{run.command}"
        return run, queued


CASES = (
    ("service, access log off (LOG_LEVEL=WARNING)", SERVICE, QUIET),
    ("service, access log on (LOG_LEVEL=INFO)", SERVICE, LOGGED),
    ("bare Flask (floor)", BARE, QUIET),
    # A reference, not a goal: the floor with the eight headers the service adds to answers.
    ("bare Flask with the service's headers (reference)", BARE_HEADERS, QUIET),
)
# The cases given as a ratio to the floor (CASES[2]).
COMPARED = (CASES[0], CASES[1], CASES[3])


def stack_cost(log: Path) -> tuple[Section, dict[str, float]]:
    """Figure a: service against its floor on the shipped worker, alternating rounds."""
    runs: dict[str, list[tuple[load.Run, float]]] = {label: [] for label, _, _ in CASES}
    for _ in range(ROUNDS):
        for label, module, env in CASES:
            runs[label].append(measure(module, SHIPPED, env, log))
    reference = measure(SERVICE, GTHREAD, LOGGED, log)
    section = Section(
        "a. Stack cost",
        "`GET /api/v1/users/{id}` on the null connection, 16 wrk connections for "
        f"{SECONDS} s after a 3 s warm-up, one worker. The service and bare Flask "
        "(bench/bare_wsgi.py: one route, the same pool, SQL and null connection) both run under "
        "the service's own gunicorn.conf.py (the gevent worker it ships); each round measures "
        "them in turn, so the ratios compare runs made seconds apart. bench/bare_headers.py is "
        "the floor sending the eight headers the service adds to every answer: what gunicorn's "
        "check of each header costs, apart from the service's own work. One gthread run "
        "(8 threads) is kept for reference. `run queue` is how long the worker waited, "
        "runnable, for a CPU that other processes held (the machine is shared).",
        ("app", "round", "requests/s", "p50 ms", "p99 ms", "max ms", "p99/p50", "run queue ms"),
    )
    for label, _, _ in CASES:
        section.rows += [_cells(label, str(n), *r) for n, r in enumerate(runs[label], 1)]
    section.rows.append(_cells("service, gthread 8, access log on (reference)", "1", *reference))
    rates = {
        label: statistics.median(r.requests_per_s for r, _ in rs) for label, rs in runs.items()
    }
    floor = rates[CASES[2][0]]
    for label, _, _ in COMPARED:
        ratios = [
            a.requests_per_s / b.requests_per_s
            for (a, _), (b, _) in zip(runs[label], runs[CASES[2][0]], strict=True)
        ]
        section.rows.append(
            (
                f"ratio {label} / bare",
                "per round",
                ", ".join(f"{x:.2f}" for x in ratios),
                "",
                "",
                "",
                "",
                "",
            )
        )
    logged = rates[CASES[1][0]] / floor
    section.goals.append(
        Goal("requests/s ratio >= 0.85, access log on", f"{logged:.2f}", logged >= 0.85)
    )
    for label, _, _ in CASES[:2]:
        worst = max(r.p99_ms / r.p50_ms for r, _ in runs[label])
        section.goals.append(Goal(f"p99 <= 5 x p50, {label}", f"{worst:.1f} x", worst <= 5))
    section.notes.append(_in_process_note())
    section.commands += [runs[label][0][0].command for label, _, _ in CASES]
    section.commands.append(reference[0].command)
    return section, {"quiet": rates[CASES[0][0]], "logged": rates[CASES[1][0]]}


def _in_process_note() -> str:
    """Measure both apps' CPU per request with no server, in a fresh process."""
    command = [sys.executable, "-m", "bench.profile_get", "--cpu-only"]
    out = subprocess.run(command, cwd=servers.ROOT, capture_output=True, text=True, check=True)
    return (
        f"CPU per request with no server (`.venv/bin/python -m bench.profile_get --cpu-only`, "
        f"the apps called as WSGI functions, best of 7 rounds): {out.stdout.splitlines()[-1]}. "
        "gunicorn's worker adds the same cost to both, which is why the ratio under "
        "gunicorn is higher than this one."
    )


def latency_bound(log: Path) -> Section:
    """Figure b: 50 ms per statement, pool 8, 32 and 256 connections, on the shipped worker."""
    section = Section(
        "b. Latency-bound throughput",
        f"The null connection sleeping {LATENCY_MS} ms per statement (network time, no lock "
        f"held), the shipped gevent worker, pool maximum {POOL}, 32 and 256 wrk connections "
        f"for {SECONDS} s. Little's law bounds requests/s at {POOL} / (statements x "
        f"{LATENCY_MS} ms): {POOL * 1000 // LATENCY_MS} for GET (1 statement), "
        f"{POOL * 500 // LATENCY_MS} for POST (2). POST bodies carry a unique email each "
        "(bench/post.lua). Each run starts once the warm-up's queued requests are answered "
        f"(pool timeout + statements after its wrk exits). Requests wait for a session in "
        f"arrival order at most DB_POOL_TIMEOUT ({POOL_TIMEOUT_S:g} s), then get 503; one "
        "handed a session just before its timeout still runs its statements: `max ms` shows "
        "that none waits past the timeout plus them (the goal allows twice their time).",
        (
            "app",
            "request",
            "connections",
            "2xx/s",
            "bound",
            "of bound",
            "p50 ms",
            "p99 ms",
            "max ms",
            "non-2xx",
        ),
    )
    for connections in (32, 256):
        for post in (False, True):
            _bound_case(section, SERVICE, post, connections, log)
    _bound_case(section, BARE, False, 32, log)
    return section


def _bound_case(section: Section, module: str, post: bool, connections: int, log: Path) -> None:
    """Measure one app and method against Little's law; add its row, command and goals."""
    env = {**QUIET, "BENCH_LATENCY_MS": str(LATENCY_MS), "BENCH_POOL_MAX": str(POOL)}
    statements = 2 if post else 1
    # Up to `connections` requests of the warm-up are still queued for a session when its wrk
    # exits; measured at once, the run would spend its first seconds (up to the pool timeout)
    # serving requests nobody reads. They are all answered within the pool timeout plus
    # their own statements.
    settle = POOL_TIMEOUT_S + 2 * statements * LATENCY_MS / 1000
    run, _ = measure(module, SHIPPED, env, log, connections=connections, post=post, settle=settle)
    bound = POOL / (statements * LATENCY_MS / 1000)
    # A 503 (no session within the pool timeout) is not throughput: count 2xx answers only.
    answered = run.requests_per_s * (run.requests - run.failures) / max(run.requests, 1)
    share = answered / bound
    method = "POST" if post else "GET"
    label = "service" if module == SERVICE else "bare Flask"
    section.rows.append(
        (
            label,
            method,
            str(connections),
            f"{answered:,.0f}",
            f"{bound:,.0f}",
            f"{share:.2f}",
            f"{run.p50_ms:.1f}",
            f"{run.p99_ms:.1f}",
            f"{run.max_ms:.0f}",
            str(run.failures),
        )
    )
    section.commands.append(run.command)
    if module == SERVICE:
        section.goals += [
            Goal(
                f"{method}, {connections} connections: >= 0.93 of the bound",
                f"{share:.2f}",
                share >= 0.93,
            ),
            Goal(
                f"{method}, {connections} connections: none waits past the pool timeout",
                f"{run.max_ms:.0f} ms",
                run.max_ms <= 3000 + statements * LATENCY_MS * 2,
            ),
        ]


def _cells(label: str, number: str, run: load.Run, queued: float) -> tuple[str, ...]:
    return (
        label,
        number,
        f"{run.requests_per_s:,.0f}",
        f"{run.p50_ms:.2f}",
        f"{run.p99_ms:.2f}",
        f"{run.max_ms:.0f}",
        f"{run.p99_ms / run.p50_ms:.1f}",
        f"{queued:.0f}",
    )


if __name__ == "__main__":  # `python -m bench.stack cost|bound`: figure a or b alone, as Markdown
    import tempfile

    from bench.install import install

    install()
    with tempfile.TemporaryDirectory(prefix="userservice-bench-") as tmp:
        if sys.argv[1:] == ["bound"]:
            print(latency_bound(Path(tmp) / "servers.log").markdown())
        elif sys.argv[1:] == ["cost"]:
            print(stack_cost(Path(tmp) / "servers.log")[0].markdown())
        else:
            sys.exit("usage: python -m bench.stack cost|bound")
