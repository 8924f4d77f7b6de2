"""Measure the first request of a new Lambda environment, plain init and SnapStart.

Builds the x86_64 zip for the runtime's Python (bench/lambda_runtime.py), unpacks it alone and
serves it with `python -m awslambdaric` from a Runtime API server on 127.0.0.1, the database at
`fakesnow -s` through the real connector (login included), in RUNS fresh processes each:

(a) plain init: from the process's start to the first response, with its parts, as
    bench/lambda_probe/bench_handler.py notes them: interpreter and runtime client, the app's
    imports, building the app, the connector's import, then the first request (login and
    first statement, from the service's own access line);
(b) SnapStart: from `/restore/next` returning to the first response, and which modules the
    process imported after the restore.

Beside them, `import flask, flask_smorest` and the cold imports of the package (with and
without its .pyc) in fresh `python -B -I -S` processes. Prints Markdown; medians of RUNS.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bench.lambda_runtime import (
    build_zip,
    runtime_folder,
    runtime_python,
    start_client,
    stop_client,
    unpack,
)
from bench.runtime_api import RuntimeApi
from bench.servers import EmulatorServer, server_settings
from bench.standins import json_document
from userservice import create_app, db

RUNS = 10
ISSUER = "https://issuer.example.com/"
PROBE = Path(__file__).resolve().parent / "lambda_probe"
EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/api/v1/users/1",
    "rawQueryString": "",
    "headers": {"host": "bench.lambda-url.us-east-1.on.aws", "x-forwarded-proto": "https"},
    "requestContext": {"http": {"method": "GET", "path": "/api/v1/users/1"}, "stage": "$default"},
    "isBase64Encoded": False,
}
PROBE_CODE = """
import sys, time
sys.path[:0] = {path!r}
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""


def service_env(port: int, jwks_url: str) -> dict[str, str]:
    """Production settings pointed at the emulator's server and a key set on 127.0.0.1."""
    return {
        "ENVIRONMENT": "production",
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_USER": "fake",
        "SNOWFLAKE_PASSWORD": "snow",
        "SNOWFLAKE_WAREHOUSE": "bench",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(port),
        "SNOWFLAKE_PROTOCOL": "http",
        "AUTH_ISSUER": ISSUER,
        "AUTH_AUDIENCE": "userservice",
        "AUTH_JWKS_URL": jwks_url,
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def issuer() -> Iterator[tuple[str, str]]:
    """Serve an RSA key set on 127.0.0.1; yield its URL and a read token it verifies."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "bench", "alg": "RS256"}
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "userservice", "sub": "bench", "scope": "users:read",
              "iat": now, "exp": now + 3600}  # fmt: skip
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    with json_document({"keys": [jwk]}) as (url, _):
        yield url, token


def first_request(
    path: list[Path], python: str, env: dict[str, str], folder: Path, snap: bool, token: str
) -> dict[str, Any]:
    """Start one fresh client and return the times of its first request, in seconds."""
    times = folder / "times.json"
    env = {**env, "BENCH_TIMES": str(times)}
    if snap:
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
    api = RuntimeApi().start()
    log = folder / "client.log"
    log.write_bytes(b"")
    started = time.time()
    proc = start_client(path, python, api, env, log, handler="bench_handler.handler")
    try:
        restored = None
        if snap:
            if not api.restore_asked.wait(60):
                raise RuntimeError(f"no /restore/next: {log.read_text()[-2000:]}")
            restored = time.time()
            api.restore.set()
        event = {**EVENT, "headers": {**EVENT["headers"], "authorization": f"Bearer {token}"}}
        invocation = api.invoke(event)
        answered = time.time()
    finally:
        stop_client(proc)
        api.stop()
    assert invocation.answer["statusCode"] == 200, invocation.answer
    marks = json.loads(times.read_text())
    # The service's log lines are compact JSON (logs.py).
    access = next(json.loads(line) for line in log.read_text().splitlines()
                  if '"logger":"userservice.access"' in line)  # fmt: skip
    return {"started": started, "restored": restored, "answered": answered, "access": access,
            **marks}  # fmt: skip


def plain_parts(run: dict[str, Any]) -> dict[str, float]:
    """Split a plain init's first request into its parts, in seconds."""
    access = run["access"]
    handled = run["handled"] - run["handler_called"]
    login = access["pool_wait_ms"] / 1000
    statement = access["db_ms"] / 1000
    return {
        "interpreter and runtime client": run["module"] - run["started"],
        "app imports (`import userservice`)": run["app_imports"] - run["module"],
        "app build (settings, `create_app`)": run["app_built"] - run["app_imports"],
        "connector import": run["connector_imported"] - run["app_built"],
        "login (pool wait of the first request)": login,
        "first statement": statement,
        "rest of the request, and the runtime's round trips": (
            run["answered"] - run["connector_imported"] - login - statement
        ),
        "**total: process start to first response**": run["answered"] - run["started"],
        "(of which the handler)": handled,
    }


def median_import(python: str, path: list[str], statement: str, env: dict[str, str]) -> float:
    """Return the median time of a statement in RUNS fresh `python -B -I -S` processes."""
    code = PROBE_CODE.format(path=path, statement=statement)
    times = []
    for _ in range(RUNS):
        result = subprocess.run(
            [python, "-B", "-I", "-S", "-c", code],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


@contextmanager
def emulator() -> Iterator[EmulatorServer]:
    """Run `fakesnow -s` holding the users table and user 1."""
    server = EmulatorServer()
    server.start()
    app = create_app(server_settings(server.port))
    with app.app_context():
        db.create_schema()
    app.test_client().post("/api/v1/users", json={"email": "ada@example.com", "name": "Ada"})
    db.get_from(app).close()
    try:
        yield server
    finally:
        server.kill()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    python, version = runtime_python()
    with tempfile.TemporaryDirectory() as tmp, emulator() as server, issuer() as (url, token):
        work = Path(tmp)
        archive = build_zip(work / "build" / "lambda.zip", python, version)
        package = unpack(archive, work / "task")
        runtime = runtime_folder(work / "runtime", python)
        path = [package, runtime, PROBE]
        env = service_env(server.port, url)
        plain = [first_request(path, python, env, work, False, token) for _ in range(RUNS)]
        snap = [first_request(path, python, env, work, True, token) for _ in range(RUNS)]
        nopyc = unpack(archive, work / "nopyc")
        for cache in list(nopyc.rglob("__pycache__")):
            subprocess.run(["rm", "-rf", str(cache)], check=True)
        imports = [
            (label, [median_import(python, [str(tree), str(runtime)], statement, env)
                     for tree in (package, nopyc)])
            for label, statement in (
                ("`import flask, flask_smorest`", "import flask, flask_smorest"),
                ("`import lambda_handler` (app built)", "import lambda_handler"),
                ("`import snowflake.connector`", "import snowflake.connector"),
            )
        ]  # fmt: skip
    report(python, version, plain, snap, imports)


def report(
    python: str,
    version: str,
    plain: list[dict[str, Any]],
    snap: list[dict[str, Any]],
    imports: list[tuple[str, list[float]]],
) -> None:
    print(f"Python {version} ({python}), x86_64 zip, `fakesnow -s`; median of {RUNS} fresh")
    print("processes each; first request `GET /api/v1/users/1` (one login, one statement).\n")
    print("**(a) Plain init**, process start to first response:\n")
    print("| part | median |\n|---|---|")
    parts = [plain_parts(run) for run in plain]
    for name in parts[0]:
        print(f"| {name} | {ms(statistics.median(p[name] for p in parts))} |")
    total_a = statistics.median(r["answered"] - r["started"] for r in plain)
    total_b = statistics.median(r["answered"] - r["restored"] for r in snap)
    login_b = statistics.median(r["access"]["pool_wait_ms"] / 1000 for r in snap)
    late = sorted({m for r in snap for m in r["imported_after_restore"]})
    print("\n**(b) SnapStart**, `/restore/next` returning to first response:\n")
    print("| figure | median |\n|---|---|")
    print(f"| restore to first response | {ms(total_b)} |")
    print(f"| of which the login of the restored environment's own session | {ms(login_b)} |")
    print(f"| (b) / (a) | {total_b / total_a:.2f} (goal: at most 0.25) |")
    shown = ", ".join(f"`{m}`" for m in late[:30]) or "none"
    print(f"\nModules imported after the restore ({len(late)}): {shown}\n")
    print("**Cold imports** (`python -B -I -S`, the package and the runtime's folder only):\n")
    print("| import | with .pyc | without .pyc |\n|---|---|---|")
    for label, (with_pyc, without) in imports:
        print(f"| {label} | {ms(with_pyc)} | {ms(without)} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
