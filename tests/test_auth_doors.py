"""The token check through every front door: each Lambda event shape, and gunicorn over HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from issuer import CHALLENGE, INVALID, READ, ROUTES, USER, WRITES, Issuer, bearer, issuer_and_app
from lambda_events import CONTEXT, alb_event, http_event, rest_event

from bench.servers import emulator_env, free_port, gunicorn
from userservice.lambda_adapter import handle

Event = Callable[[str, str, dict[str, str], str | None], dict[str, Any]]
DOORS: dict[str, Event] = {
    "API Gateway REST (1.0)": lambda m, p, h, b: rest_event(method=m, path=p, headers=h, body=b),
    "API Gateway HTTP API (2.0)": lambda m, p, h, b: http_event(
        method=m, raw_path=p, headers={k.lower(): v for k, v in h.items()}, body=b
    ),
    "function URL": lambda m, p, h, b: http_event(
        method=m,
        raw_path=p,
        headers={k.lower(): v for k, v in h.items()},
        body=b,
        function_url=True,
    ),
    "ALB, multi-value headers": lambda m, p, h, b: alb_event(
        multi_value=True, method=m, path=p, headers=h, body=b
    ),
    "ALB": lambda m, p, h, b: alb_event(multi_value=False, method=m, path=p, headers=h, body=b),
}


@pytest.fixture(scope="module")
def door_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Any]]:
    """One issuer and one secured app holding one user, shared by the front-door checks."""
    with issuer_and_app(tmp_path_factory.mktemp("doors")) as both:
        yield both


def through(app: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Invoke the app with a Lambda event; return status, headers (one value each) and body."""
    answer = handle(app, event, CONTEXT)
    headers = dict(answer.get("headers") or {})
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, ", ".join(values))
    return answer["statusCode"], headers, json.loads(answer["body"]) if answer["body"] else None


def send(door: str, app: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    if body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    event = DOORS[door](method, path, headers, json.dumps(body) if body is not None else None)
    return through(app, event)


@pytest.mark.parametrize("door", DOORS)
def test_every_refusal_is_the_same_through_every_lambda_front_door(door_app, access_log, door):
    issuer, app = door_app
    cases = [
        ({}, 401, "UNAUTHENTICATED", CHALLENGE),
        ({"Authorization": "Bearer"}, 401, "UNAUTHENTICATED", CHALLENGE),
        (bearer(issuer.token(exp=None)), 401, "INVALID_TOKEN", INVALID),
        (bearer(issuer.token(aud="someone-else")), 401, "INVALID_TOKEN", INVALID),
        (bearer("abc.def.ghi"), 401, "INVALID_TOKEN", INVALID),
    ]
    for headers, status, code, challenge in cases:
        for method, path, body in ROUTES:
            answer = send(door, app, method, path, body, headers)
            assert (answer[0], answer[2]["code"]) == (status, code), (method, path, headers)
            assert answer[1]["WWW-Authenticate"] == challenge
    read_only = bearer(issuer.token(scope=READ))
    for method, path, body in ROUTES:
        if method in WRITES:
            status, headers, problem = send(door, app, method, path, body, read_only)
            assert (status, problem["code"]) == (403, "INSUFFICIENT_SCOPE")
            assert headers["WWW-Authenticate"] == (
                'Bearer realm="userservice", error="insufficient_scope", scope="users:write"'
            )
    assert {r.db_statements for r in access_log} == {0}


@pytest.mark.parametrize("door", DOORS)
def test_a_valid_token_passes_through_every_lambda_front_door(door_app, door):
    issuer, app = door_app
    token = issuer.token()
    assert send(door, app, "GET", "/api/v1/users", None, bearer(token))[0] == 200
    assert send(door, app, "GET", "/api/v1/users/1", None, bearer(token))[0] == 200
    status, _, user = send(door, app, "PATCH", "/api/v1/users/1", {"name": "Ada"}, bearer(token))
    assert (status, user["name"]) == (200, "Ada")


def test_two_authorization_headers_are_refused_by_the_doors_that_pass_both(door_app):
    issuer, app = door_app
    first, second = f"Bearer {issuer.token()}", f"Bearer {issuer.token()}"
    rest = rest_event(path="/api/v1/users", headers={"Authorization": second})
    rest["multiValueHeaders"]["Authorization"] = [first, second]
    alb = alb_event(multi_value=True, path="/api/v1/users", headers={"Authorization": second})
    alb["multiValueHeaders"]["Authorization"] = [first, second]
    # HTTP API and function URLs join repeated headers with a comma themselves.
    joined = http_event(raw_path="/api/v1/users", headers={"authorization": f"{first},{second}"})
    for event in (rest, alb, joined):
        status, headers, problem = through(app, event)
        assert (status, problem["code"], headers["WWW-Authenticate"]) == (
            401,
            "UNAUTHENTICATED",
            CHALLENGE,
        )


def test_an_api_gateway_authorizers_claims_are_not_trusted_without_the_token(door_app):
    _, app = door_app
    event = http_event(raw_path="/api/v1/users")
    event["requestContext"]["authorizer"] = {
        "jwt": {"claims": {"sub": "admin", "scope": "users:read users:write"}, "scopes": None}
    }

    status, _, problem = through(app, event)

    assert (status, problem["code"]) == (401, "UNAUTHENTICATED")


def request(port: int, method: str, path: str, headers: list[tuple[str, str]], body: Any = None):
    """Send one request with exactly these header lines (repeats included)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path)
        data = json.dumps(body).encode() if body is not None else b""
        for name, value in [*headers, ("Content-Length", str(len(data)))]:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Type", "application/json")
        conn.endheaders(data)
        response = conn.getresponse()
        raw = response.read()
        return response.status, response.headers, json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.mark.slow
def test_over_real_http_every_refusal_holds_and_changes_nothing(tmp_path: Path):
    issuer = Issuer(tmp_path / "issuer")
    issuer.start()
    port = free_port()
    try:
        env = emulator_env(tmp_path / "emulator", **issuer.env())
        with gunicorn(env, tmp_path / "gunicorn.log", port=port):
            auth = ("Authorization", f"Bearer {issuer.token()}")
            created = request(port, "POST", "/api/v1/users", [auth], USER)
            assert created[0] == 201
            refusals = [
                ([], 401, "UNAUTHENTICATED", CHALLENGE),
                ([auth, auth], 401, "UNAUTHENTICATED", CHALLENGE),
                (
                    [("Authorization", "Bearer " + issuer.token(iss="x"))],
                    401,
                    "INVALID_TOKEN",
                    INVALID,
                ),
                (
                    [("Authorization", "Bearer " + issuer.token(scope=READ))],
                    403,
                    "INSUFFICIENT_SCOPE",
                    'Bearer realm="userservice", error="insufficient_scope", scope="users:write"',
                ),
            ]
            for headers, status, code, challenge in refusals:
                for method, path, body in ROUTES:
                    if status == 403 and method not in WRITES:
                        continue
                    answer = request(port, method, path, headers, body)
                    assert (answer[0], answer[2]["code"]) == (status, code), (method, path)
                    assert answer[1]["WWW-Authenticate"] == challenge
            listed = request(port, "GET", "/api/v1/users", [auth])
            got = request(port, "GET", "/api/v1/users/1", [auth])
    finally:
        issuer.stop()

    assert [(u["id"], u["name"]) for u in listed[2]] == [(1, "Ada")]
    assert got[1]["ETag"] == '"v1"'
    assert issuer.requests() == 1


@pytest.mark.parametrize("door", DOORS)
def test_the_idempotency_key_reaches_the_service_through_every_lambda_front_door(door_app, door):
    issuer, app = door_app
    key = {"Idempotency-Key": '"' + door.replace(" ", "-") + '"', **bearer(issuer.token())}
    body = {"email": f"door-{len(door)}@example.com", "name": "Door"}  # one address per door

    first = send(door, app, "POST", "/api/v1/users", body, key)
    again = send(door, app, "POST", "/api/v1/users", body, key)
    reused = send(door, app, "POST", "/api/v1/users", {**body, "name": "Other"}, key)

    assert (first[0], "Idempotent-Replayed" in first[1]) == (201, False)
    assert (again[0], again[1]["Idempotent-Replayed"], again[2]) == (201, "true", first[2])
    assert (reused[0], reused[2]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
