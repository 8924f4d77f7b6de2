"""Figures a and b: the service and a bare Flask app under gunicorn on the null connection."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from bench import load, servers
from bench.report import Goal, Section

SERVICE, BARE = "bench.null_wsgi", "bench.bare_wsgi"
GET_PATH, POST_PATH = "/api/v1/users/1", "/api/v1/users"
SECONDS = 20
LATENCY_MS = 50
CLIENTS = 32


def measure(
    module: str,
    *,
    threads: int,
    connections: int,
    env: dict[str, str],
    log: Path,
    post: bool = False,
) -> load.Run:
    """Serve `module` with one gthread worker and measure GET (or POST) with wrk."""
    args = ["--workers=1", "--worker-class=gthread", f"--threads={threads}", "--keep-alive=5"]
    args += ["--log-level=warning", f"{module}:app"]
    with servers.gunicorn(env, log, args=args, probe=GET_PATH) as server:
        url = server.url(POST_PATH if post else GET_PATH)
        script = "post.lua" if post else None
        run = load.wrk(url, connections=connections, seconds=SECONDS, script=script)
        run.command = f"{server.command} &\n{run.command}"
        return run


def stack_cost(log: Path) -> Section:
    """Figure a: service against bare app, 8 threads, 16 connections, twice each, alternating."""
    quiet = {"LOG_LEVEL": "WARNING"}
    runs: dict[str, list[load.Run]] = {SERVICE: [], BARE: []}
    for _ in range(2):
        for module in (SERVICE, BARE):
            runs[module].append(measure(module, threads=8, connections=16, env=quiet, log=log))
    logged = measure(SERVICE, threads=8, connections=16, env={"LOG_LEVEL": "INFO"}, log=log)
    bare_rate = statistics.mean(run.requests_per_s for run in runs[BARE])
    ratio = statistics.mean(run.requests_per_s for run in runs[SERVICE]) / bare_rate
    section = Section(
        "a. Stack cost",
        "`GET /api/v1/users/{id}` on the null connection: the service against a bare Flask app "
        "(bench/bare_wsgi.py: one route, the same pool, SQL and null connection), each under "
        "gunicorn with one worker and 8 gthreads, 16 wrk connections for 20 s after a 3 s "
        "warm-up. The two are measured twice, alternating, and the rates averaged; the service "
        "once more with its access log on (LOG_LEVEL=INFO, JSON lines to a file).",
        ("app", "run", "requests/s", "p50 ms", "p99 ms", "failures"),
    )
    for module, label in ((SERVICE, "service, LOG_LEVEL=WARNING"), (BARE, "bare Flask")):
        section.rows += [_cells(label, str(n), run) for n, run in enumerate(runs[module], 1)]
    section.rows.append(_cells("service, LOG_LEVEL=INFO (access log on)", "1", logged))
    section.rows.append(("ratio service / bare", "mean", f"{ratio:.2f}", "", "", ""))
    logged_ratio = logged.requests_per_s / bare_rate
    section.rows.append(("ratio service (INFO) / bare", "", f"{logged_ratio:.2f}", "", "", ""))
    section.goals.append(Goal("requests/s ratio >= 0.85 (WARNING)", f"{ratio:.2f}", ratio >= 0.85))
    section.notes.append(_in_process_note())
    section.commands += [runs[SERVICE][0].command, runs[BARE][0].command, logged.command]
    return section


def _in_process_note() -> str:
    """Measure both apps' CPU per request with no server, in a fresh process."""
    command = [sys.executable, "-m", "bench.profile_get", "--cpu-only"]
    out = subprocess.run(command, cwd=servers.ROOT, capture_output=True, text=True, check=True)
    return (
        f"CPU per request with no server (`.venv/bin/python -m bench.profile_get --cpu-only`, "
        f"the apps called as WSGI functions, best of 7 rounds): {out.stdout.strip()}. "
        "gunicorn's gthread worker adds the same cost to both, which is why the ratio under "
        "gunicorn is higher than this one."
    )


def latency_bound(log: Path) -> Section:
    """Figure b: 50 ms per statement, 32 threads, 32 connections, pool max 32."""
    section = Section(
        "b. Latency-bound throughput",
        f"The null connection sleeping {LATENCY_MS} ms per statement (network time, no lock "
        f"held), one worker with {CLIENTS} gthreads, pool maximum {CLIENTS}, {CLIENTS} wrk "
        f"connections for {SECONDS} s. Little's law bounds requests/s at {CLIENTS} / "
        f"(statements x {LATENCY_MS} ms): 640 for GET (1 statement), 320 for POST (2). POST "
        "bodies carry a unique email each (bench/post.lua). The bare Flask app's GET is "
        "measured the same way, for reference.",
        ("app", "request", "requests/s", "bound", "of bound", "p50 ms", "p99 ms", "failures"),
    )
    for module, post in ((SERVICE, False), (SERVICE, True), (BARE, False)):
        _bound_case(section, module, post, log)
    return section


def _bound_case(section: Section, module: str, post: bool, log: Path) -> None:
    """Measure one app and method against Little's law; add its row, command and goals."""
    env = {"LOG_LEVEL": "WARNING", "BENCH_LATENCY_MS": str(LATENCY_MS)}
    env["BENCH_POOL_MAX"] = str(CLIENTS)
    run = measure(module, threads=CLIENTS, connections=CLIENTS, env=env, log=log, post=post)
    statements = 2 if post else 1
    bound = CLIENTS / (statements * LATENCY_MS / 1000)
    share = run.requests_per_s / bound
    method = "POST" if post else "GET"
    label = "service" if module == SERVICE else "bare Flask"
    section.rows.append(
        (
            label,
            method,
            f"{run.requests_per_s:,.0f}",
            f"{bound:,.0f}",
            f"{share:.2f}",
            f"{run.p50_ms:.1f}",
            f"{run.p99_ms:.1f}",
            str(run.failures),
        )
    )
    section.commands.append(run.command)
    if module == SERVICE:
        limit = 1.5 * statements * LATENCY_MS
        section.goals += [
            Goal(f"{method}: >= 0.93 of the bound", f"{share:.2f}", share >= 0.93),
            Goal(f"{method}: p99 <= {limit:.0f} ms", f"{run.p99_ms:.1f} ms", run.p99_ms <= limit),
        ]


def _cells(label: str, number: str, run: load.Run) -> tuple[str, ...]:
    return (
        label,
        number,
        f"{run.requests_per_s:,.0f}",
        f"{run.p50_ms:.2f}",
        f"{run.p99_ms:.2f}",
        str(run.failures),
    )
