"""The built zip under awslambdaric, as Lambda runs it: plain init, errors, deadline, SnapStart.

The zip is built once per module for x86_64 and the runtime's Python (3.12, found under pyenv),
unpacked alone into an empty folder and served by `python -m awslambdaric` with nothing else
on the path but the runtime's own packages (awslambdaric, boto3/botocore). The Runtime API is
tests/runtime_api.py's server; the database is `fakesnow -s`, reached by the real connector
inside the zip; tokens are checked against a JWKS server process. The handler is
tests/lambda_probe/probe_handler.py, which wraps lambda_handler with test-only routes and
markers (see its docstring).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
import uuid
import warnings
from base64 import b64decode, b64encode
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from issuer import CHALLENGE, Issuer
from lambda_events import DOORS, door_event
from runtime_api import (
    PROBE,
    RuntimeApi,
    build_zip,
    connections_to,
    runtime_folder,
    runtime_python,
    start_client,
    stop_client,
    unpack,
)

from bench.servers import EmulatorServer, server_settings

pytestmark = pytest.mark.slow

HANDLER = "probe_handler.handler"
SECRET = "s3cr3t-password-never-shown"


@dataclass
class Runtime:
    """The runtime's Python and the module path Lambda would give the function."""

    python: str
    path: list[Path]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    python, version = runtime_python()
    if version != "3.12":
        warnings.warn(
            f"no Python 3.12 here: the python{version} runtime, with {python}", stacklevel=1
        )
    folder = tmp_path_factory.mktemp("lambda")
    archive = build_zip(folder / "build" / "lambda.zip", python, version)
    package = unpack(archive, folder / "task")
    return Runtime(python, [package, runtime_folder(folder / "runtime", python), PROBE])


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(log=tmp_path_factory.mktemp("fakesnow") / "server.log")
    server.start()
    server.create_schema()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    running = Issuer(tmp_path_factory.mktemp("issuer"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def env(emulator: EmulatorServer, issuer: Issuer) -> dict[str, str]:
    """Production settings, as template.yaml gives them, pointed at the emulator's server."""
    return {
        "ENVIRONMENT": "production",
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_USER": "fake",
        "SNOWFLAKE_PASSWORD": SECRET,
        "SNOWFLAKE_WAREHOUSE": "userservice",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(emulator.port),
        "SNOWFLAKE_PROTOCOL": "http",
        "DB_POOL_MAX_CONNECTIONS": "1",
        **issuer.env(),
    }


@contextmanager
def serving(
    runtime: Runtime, env: Mapping[str, str], log: Path
) -> Iterator[tuple[RuntimeApi, subprocess.Popen[bytes]]]:
    """Run one runtime client against a Runtime API server of its own."""
    api = RuntimeApi().start()
    proc = start_client(runtime.path, runtime.python, api, env, log, handler=HANDLER)
    try:
        yield api, proc
    finally:
        stop_client(proc)
        api.stop()


def event(door: str, method: str, path: str, body: bytes | None = None, **kw: Any) -> Any:
    """Return a real event of the door for the request; with base64=True, body goes encoded."""
    encoded = kw.pop("base64", False)
    text = None if body is None else (b64encode(body).decode() if encoded else body.decode())
    return door_event(door, method=method, path=path, body=text, base64=encoded, **kw)


def headers_of(answer: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return the answer's headers by lower-case name, every value; cookies as Set-Cookie."""
    if "multiValueHeaders" in answer:
        found = {k.lower(): list(v) for k, v in answer["multiValueHeaders"].items()}
    else:
        found = {k.lower(): [v] for k, v in (answer.get("headers") or {}).items()}
    if answer.get("cookies"):
        found["set-cookie"] = list(answer["cookies"])
    return found


def body_of(answer: Mapping[str, Any]) -> bytes:
    raw = answer.get("body") or ""
    return b64decode(raw) if answer.get("isBase64Encoded") else raw.encode()


def json_of(answer: Mapping[str, Any]) -> Any:
    return json.loads(body_of(answer))


def token_headers(issuer: Issuer, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token()}", **headers}


def test_every_front_door_serves_create_get_patch_and_delete(runtime, env, issuer, tmp_path):
    statuses = {}
    with serving(runtime, env, tmp_path / "client.log") as (api, _):
        for door in DOORS:
            user = {"email": f"{door}@example.com", "name": door}
            json_headers = token_headers(issuer, **{"Content-Type": "application/json"})
            made = api.invoke(
                event(
                    door, "POST", "/api/v1/users", json.dumps(user).encode(), headers=json_headers
                )
            ).answer
            created = json_of(made)
            path = f"/api/v1/users/{created['id']}"
            stage = "/testStage" if door == "rest" else ""
            assert headers_of(made)["location"] == [stage + path]
            got = api.invoke(event(door, "GET", path, headers=token_headers(issuer))).answer
            etag = headers_of(got)["etag"][0]
            change = json.dumps({"name": "Changed"}).encode()
            patched = api.invoke(
                event(door, "PATCH", path, change, headers={**json_headers, "If-Match": etag})
            ).answer
            stale = api.invoke(
                event(door, "PATCH", path, change, headers={**json_headers, "If-Match": etag})
            ).answer
            gone = api.invoke(event(door, "DELETE", path, headers=token_headers(issuer))).answer
            after = api.invoke(event(door, "GET", path, headers=token_headers(issuer))).answer
            answers = [made, got, patched, stale, gone, after]
            statuses[door] = [a["statusCode"] for a in answers]
            assert {k: created[k] for k in user} == user
            assert {k: json_of(got)[k] for k in ("id", "email", "name")} == {
                "id": created["id"],
                **user,
            }
            assert json_of(patched)["name"] == "Changed"
            assert headers_of(patched)["etag"] != [etag]
            assert (json_of(stale)["code"], body_of(gone)) == ("PRECONDITION_FAILED", b"")
            assert headers_of(after)["content-type"] == ["application/problem+json"]
    assert statuses == {door: [201, 200, 200, 412, 204, 404] for door in DOORS}


def test_a_token_is_checked_against_the_issuers_key_set(runtime, env, issuer, tmp_path):
    with serving(runtime, env, tmp_path / "client.log") as (api, _):
        refused = api.invoke(event("http", "GET", "/api/v1/users")).answer
        wrong = api.invoke(
            event(
                "http",
                "GET",
                "/api/v1/users",
                headers={"Authorization": f"Bearer {issuer.token(aud='other')}"},
            )
        )
        allowed = api.invoke(event("http", "GET", "/api/v1/users", headers=token_headers(issuer)))

    assert (refused["statusCode"], headers_of(refused)["www-authenticate"]) == (401, [CHALLENGE])
    assert wrong.answer["statusCode"] == 401
    assert allowed.answer["statusCode"] == 200
    assert "/jwks.json" in (issuer.folder / "requests.log").read_text().split()


@pytest.mark.parametrize("door", ["rest", "http", "alb-multi-value"])
def test_binary_bodies_two_cookies_and_repeated_query_keys(runtime, env, door, tmp_path):
    data = bytes(range(256))
    query = {"tag": ["a b", "c"], "page": ["2"]}
    with serving(runtime, env, tmp_path / "client.log") as (api, _):
        answer = api.invoke(
            event(
                door,
                "POST",
                "/probe/echo",
                data,
                query=query,
                base64=True,
                headers={"Content-Type": "application/octet-stream"},
            )
        ).answer

    headers = headers_of(answer)
    assert (answer["statusCode"], answer["isBase64Encoded"], body_of(answer)) == (200, True, data)
    assert headers["set-cookie"] == ["first=1; Path=/", "second=2; Path=/"]
    shown = "tag=a b&tag=c&page=2" if door.startswith("alb") else "tag=a+b&tag=c&page=2"
    assert headers["x-query"] == [shown]


def test_an_http_api_stage_prefix_stays_in_the_location(runtime, env, issuer, tmp_path):
    user = json.dumps({"email": "stage@example.com", "name": "Stage"}).encode()
    headers = token_headers(issuer, **{"Content-Type": "application/json"})
    with serving(runtime, env, tmp_path / "client.log") as (api, _):
        answer = api.invoke(
            event("http", "POST", "/live/api/v1/users", user, headers=headers, stage="live")
        ).answer

    assert answer["statusCode"] == 201
    assert headers_of(answer)["location"] == [f"/live/api/v1/users/{json_of(answer)['id']}"]


def test_a_settings_error_at_init_reaches_init_error_naming_the_setting(runtime, env, tmp_path):
    bad = {**env, "SNOWFLAKE_LOGIN_TIMEOUT": "soon"}
    with serving(runtime, bad, tmp_path / "client.log") as (api, proc):
        code = proc.wait(timeout=60)

    ((headers, body),) = api.init_errors
    assert (code, api.calls) == (1, ["POST /init/error"])
    assert body["errorType"] == headers["Lambda-Runtime-Function-Error-Type"].split(".")[-1]
    assert body["errorType"] not in ("", "Exception")
    assert "SNOWFLAKE_LOGIN_TIMEOUT" in body["errorMessage"]
    assert "\n" not in body["errorMessage"]
    assert SECRET not in json.dumps(body) + (tmp_path / "client.log").read_text()


def test_an_unexpected_exception_is_a_500_problem_and_the_next_call_is_served(
    runtime, env, tmp_path
):
    with serving(runtime, env, tmp_path / "client.log") as (api, proc):
        failed = api.invoke(event("http", "GET", "/probe/fail")).answer
        healthy = api.invoke(event("http", "GET", "/health")).answer
        alive = proc.poll() is None

    problem = json_of(failed)
    assert (failed["statusCode"], problem["code"], problem["status"]) == (
        500,
        "INTERNAL_ERROR",
        500,
    )
    assert "RuntimeError" not in failed["body"]
    assert "Traceback" not in failed["body"]
    assert (healthy["statusCode"], alive) == (200, True)
    assert not [call for call in api.calls if call.endswith("/error")]


def test_a_warm_invocation_reuses_the_connection_of_the_first(
    runtime, env, issuer, emulator, tmp_path
):
    before = emulator.logins()
    with serving(runtime, env, tmp_path / "client.log") as (api, proc):
        first = api.invoke(event("http", "GET", "/api/v1/users", headers=token_headers(issuer)))
        after_first = emulator.logins()
        second = api.invoke(event("http", "GET", "/api/v1/users", headers=token_headers(issuer)))
        held = connections_to(proc.pid, emulator.port)

    assert (first.answer["statusCode"], second.answer["statusCode"]) == (200, 200)
    assert (after_first - before, emulator.logins() - before, held) == (1, 1, 1)


def test_an_invocation_with_less_time_than_the_database_budget_answers_503_in_time(
    runtime, env, issuer, emulator, tmp_path
):
    deadline_in = 2.0  # the default budget is 10 s (README, "Time budget")
    with serving(runtime, env, tmp_path / "client.log") as (api, _):
        warm = api.invoke(event("http", "GET", "/health/ready"))
        emulator.pause()
        try:
            started = time.monotonic()
            late = api.invoke(
                event("http", "GET", "/api/v1/users", headers=token_headers(issuer)),
                deadline_in=deadline_in,
            )
            elapsed = time.monotonic() - started
        finally:
            emulator.resume()

    assert warm.answer["statusCode"] == 200
    assert (late.kind, late.answer["statusCode"]) == ("response", 503)
    assert json_of(late.answer)["code"] == "DATABASE_UNAVAILABLE"
    assert headers_of(late.answer)["retry-after"] == [
        str(server_settings(emulator.port).db_retry_after)
    ]
    assert elapsed < deadline_in


# SnapStart: AWS_LAMBDA_INITIALIZATION_TYPE=snap-start makes awslambdaric run the hooks.


def test_snapstart_runs_the_hooks_in_order_with_no_connection_in_the_snapshot(
    runtime, env, emulator, tmp_path
):
    before = emulator.logins()
    snap = {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    with serving(runtime, snap, tmp_path / "client.log") as (api, proc):
        assert api.restore_asked.wait(60), "the client never asked for /restore/next"
        held, warmed = connections_to(proc.pid, emulator.port), emulator.logins() - before
        calls_before_restore = list(api.calls)
        api.restore.set()
        answer = api.invoke(event("http", "GET", "/health/ready")).answer
        calls = [re.sub(r"/invocation/[0-9a-f-]{36}/", "/invocation/ID/", c) for c in api.calls]

    assert (held, warmed) == (0, 1)  # warmed up with one login, which was closed
    assert calls_before_restore == ["GET /probe/before_snapshot", "GET /restore/next"]
    assert calls == [
        "GET /probe/before_snapshot",
        "GET /restore/next",
        "GET /probe/after_restore",
        "GET /invocation/next",
        "GET /probe/handler",
        "POST /invocation/ID/response",
    ]
    assert (answer["statusCode"], emulator.logins() - before) == (200, 2)  # a session of its own


def test_two_restores_from_one_random_state_give_different_request_ids(runtime, env, tmp_path):
    state = random.Random(20261202).getstate()
    (tmp_path / "state.json").write_text(json.dumps(state))
    unseeded = random.Random()
    unseeded.setstate(state)
    without_reseed = str(uuid.UUID(int=unseeded.getrandbits(128), version=4))
    snap = {
        **env,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "PROBE_RANDOM_STATE": str(tmp_path / "state.json"),
    }
    ids = []
    with ExitStack() as stack:
        clients = [
            stack.enter_context(serving(runtime, snap, tmp_path / f"client-{n}.log"))
            for n in range(2)
        ]
        for api, _ in clients:
            assert api.restore_asked.wait(60)
            api.restore.set()
        for api, _ in clients:
            answer = api.invoke(event("alb-single-value", "GET", "/health")).answer
            ids.append(headers_of(answer)["x-request-id"][0])

    assert ids[0] != ids[1]
    assert without_reseed not in ids


def test_a_failing_after_restore_hook_reaches_restore_error(runtime, env, tmp_path):
    snap = {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start", "PROBE_FAIL_RESTORE": "1"}
    with serving(runtime, snap, tmp_path / "client.log") as (api, proc):
        api.restore.set()
        code = proc.wait(timeout=60)

    ((_, body),) = api.restore_errors
    assert (code, body["errorType"], body["errorMessage"]) == (
        65,
        "RuntimeError",
        "an after-restore hook failed",
    )
    assert "GET /invocation/next" not in api.calls
