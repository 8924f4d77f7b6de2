"""Bearer tokens on every users route, checked against a real JWKS server process.

The issuer's key set is served by tests/jwks_server.py, a process started and stopped by PID;
its request log is the count of fetches. Every refusal is asserted with its exact status,
code and WWW-Authenticate, and costs no statement.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import fresh_database, keep_as_created
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from issuer import (
    CHALLENGE,
    INVALID,
    READ,
    ROUTES,
    USER,
    WRITE,
    WRITES,
    Issuer,
    bearer,
    build,
    issuer_and_app,
)

from userservice import auth, db
from userservice.auth import verifier
from userservice.settings import Settings


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[Issuer]:
    """A running issuer of this test's own."""
    issuer = Issuer(tmp_path / "issuer")
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    """Apps to close after the test."""
    built: list[Flask] = []
    yield built
    for app in built:
        db.get_from(app).close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, Flask]]:
    """One issuer and one secured app holding one user, for the checks that change nothing."""
    with issuer_and_app(tmp_path_factory.mktemp("shared")) as both:
        yield both


@pytest.fixture(scope="module")
def trusting(
    shared: tuple[Issuer, Flask], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """An app that trusts the shared issuer, for tests that each need a fresh database."""
    issuer, _ = shared
    app = keep_as_created(build(tmp_path_factory.mktemp("trusting"), **issuer.settings()))
    yield app
    db.get_from(app).close()


def call(app: Flask, method: str, path: str, body: Any, headers: Any = None, **kw: Any) -> Any:
    return app.test_client().open(path, method=method, json=body, headers=headers or {}, **kw)


def assert_unchanged(issuer: Issuer, app: Flask) -> None:
    """The shared app still holds exactly its one user, at its first version."""
    listed = call(app, "GET", "/api/v1/users", None, bearer(issuer.token()))
    assert [(u["id"], u["email"], u["name"]) for u in listed.get_json()] == [
        (1, USER["email"], USER["name"])
    ]
    assert call(app, "GET", "/api/v1/users/1", None, bearer(issuer.token())).headers["ETag"] == (
        '"v1"'
    )


# 401 UNAUTHENTICATED: no credential, or not `Bearer <token>`.

NO_CREDENTIAL: dict[str, Any] = {
    "no Authorization": ({}, "Send a token as Authorization: Bearer <token>."),
    "another scheme": (
        {"Authorization": "Basic dXNlcjpwYXNz"},
        "Send the token as Authorization: Bearer <token>.",
    ),
    "Bearer with no token": (
        {"Authorization": "Bearer"},
        "Send the token as Authorization: Bearer <token>.",
    ),
    "Bearer and a space": (
        {"Authorization": "Bearer "},
        "Send the token as Authorization: Bearer <token>.",
    ),
    "a token with no scheme": (
        {"Authorization": "eyJhbGciOi.eyJzdWIi.c2ln"},
        "Send the token as Authorization: Bearer <token>.",
    ),
}


@pytest.mark.parametrize("case", NO_CREDENTIAL)
def test_no_bearer_token_is_401_unauthenticated_on_every_route(
    shared, access_log, case, assert_problem
):
    issuer, app = shared
    headers, detail = NO_CREDENTIAL[case]
    for method, path, body in ROUTES:
        response = call(app, method, path, body, headers)
        problem = assert_problem(response, 401, "UNAUTHENTICATED", CHALLENGE)
        assert problem["detail"] == detail, (method, path)
    assert [r.db_statements for r in access_log] == [0] * len(ROUTES)
    assert_unchanged(issuer, app)


def test_two_authorization_headers_are_refused_on_every_route(shared, access_log, assert_problem):
    issuer, app = shared
    token = issuer.token()
    two = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    for method, path, body in ROUTES:
        response = call(app, method, path, body, two)
        problem = assert_problem(response, 401, "UNAUTHENTICATED", CHALLENGE)
        assert problem["detail"] == "Send one Authorization header with one credential."
    assert [r.db_statements for r in access_log] == [0] * len(ROUTES)


@pytest.mark.parametrize("with_header", [False, True])
def test_a_token_in_the_query_string_is_refused(shared, access_log, with_header, assert_problem):
    issuer, app = shared
    token = issuer.token()
    headers = bearer(token) if with_header else {}
    for method, path, body in ROUTES:
        response = call(app, method, path, body, headers, query_string={"access_token": token})
        problem = assert_problem(response, 401, "UNAUTHENTICATED", CHALLENGE)
        assert problem["detail"] == "Send the token in the Authorization header, never in the URL."
        assert token not in response.get_data(as_text=True)
    assert [r.db_statements for r in access_log] == [0] * len(ROUTES)


# 401 INVALID_TOKEN: the token is there but cannot be trusted.


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_pem(issuer: Issuer) -> str:
    """Sign HS256 with the RSA public key's PEM as the secret: the classic confusion attack."""
    pem = (
        issuer.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = _b64(json.dumps(issuer.claims()).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _alg_none(issuer: Issuer) -> str:
    return jwt.encode(issuer.claims(), None, algorithm="none", headers={"kid": "rsa-1"})


def _forged(issuer: Issuer) -> str:
    """A token naming rsa-1 but signed by another RSA key."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(issuer.claims(), other, algorithm="RS256", headers={"kid": "rsa-1"})


def _rsa_kid_under_es256(issuer: Issuer) -> str:
    """An ES256 header naming the RSA key (signed with the EC key, so the signature is real)."""
    return jwt.encode(
        issuer.claims(), issuer.keys["ec-1"], algorithm="ES256", headers={"kid": "rsa-1"}
    )


def _too_long(issuer: Issuer) -> str:
    return issuer.token(padding="x" * 9000)


INVALID_TOKENS: dict[str, tuple[Any, str]] = {
    "not a JWT": (lambda i: "not-a-jwt", "The token is malformed."),
    "three parts of garbage": (lambda i: "abc.def.ghi", "The token is malformed."),
    "bad signature": (_forged, "The token's signature does not verify."),
    "expired beyond the leeway": (
        lambda i: i.token(exp=int(time.time()) - 120),
        "The token has expired.",
    ),
    "exp missing": (lambda i: i.token(exp=None), "The token has no exp claim."),
    "nbf beyond the leeway": (
        lambda i: i.token(nbf=int(time.time()) + 120),
        "The token is not valid yet (nbf or iat is in the future).",
    ),
    "iat beyond the leeway": (
        lambda i: i.token(iat=int(time.time()) + 120),
        "The token is not valid yet (nbf or iat is in the future).",
    ),
    "wrong issuer": (
        lambda i: i.token(iss="https://evil.example.com/"),
        "The token's issuer (iss) is not the one this service trusts.",
    ),
    "iss missing": (lambda i: i.token(iss=None), "The token has no iss claim."),
    "wrong audience": (
        lambda i: i.token(aud="another-service"),
        "The token is not meant for this service (aud).",
    ),
    "aud list without ours": (
        lambda i: i.token(aud=["a", "b"]),
        "The token is not meant for this service (aud).",
    ),
    "aud missing": (lambda i: i.token(aud=None), "The token has no aud claim."),
    "alg none": (_alg_none, "The token's algorithm is not allowed."),
    "HS256 keyed with the public PEM": (
        _hs256_with_public_pem,
        "The token's algorithm is not allowed.",
    ),
    "RS384, not on the allow-list": (
        lambda i: i.token(alg="RS384"),
        "The token's algorithm is not allowed.",
    ),
    "an RSA key under an ES256 header": (
        _rsa_kid_under_es256,
        "The token's algorithm does not fit its key.",
    ),
    "no kid": (
        lambda i: jwt.encode(i.claims(), i.keys["rsa-1"], algorithm="RS256"),
        "The token names no key (kid).",
    ),
    "longer than 8 KB": (_too_long, "The token is longer than 8192 characters."),
}


@pytest.mark.parametrize("case", INVALID_TOKENS)
def test_an_invalid_token_is_401_invalid_token_on_every_route(
    shared, access_log, case, assert_problem
):
    issuer, app = shared
    make, detail = INVALID_TOKENS[case]
    token = make(issuer)
    for method, path, body in ROUTES:
        response = call(app, method, path, body, bearer(token))
        problem = assert_problem(response, 401, "INVALID_TOKEN", INVALID)
        assert problem["detail"] == detail, (method, path)
        assert token not in response.get_data(as_text=True)
    assert [r.db_statements for r in access_log] == [0] * len(ROUTES)
    assert [getattr(r, "sub", None) for r in access_log] == [None] * len(ROUTES)
    assert_unchanged(issuer, app)


# 403 INSUFFICIENT_SCOPE, and what passes.


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [(READ, {"GET"}), (WRITE, WRITES), ("", set()), ("users:admin", set())],
)
def test_each_method_needs_its_scope(shared, access_log, scope, allowed, assert_problem):
    issuer, app = shared
    token = issuer.token(scope=scope)
    for method, path, body in ROUTES:
        if method in allowed:
            continue
        needed = WRITE if method in WRITES else READ
        response = call(app, method, path, body, bearer(token))
        problem = assert_problem(
            response,
            403,
            "INSUFFICIENT_SCOPE",
            f'Bearer realm="userservice", error="insufficient_scope", scope="{needed}"',
        )
        assert problem["detail"] == f"The token lacks the {needed} scope."
    refused = [r for r in access_log if r.status == 403]
    assert [r.db_statements for r in refused] == [0] * sum(m not in allowed for m, _, _ in ROUTES)
    # A refused caller is still a known one: the access line names it.
    assert {(r.sub, r.client_id) for r in refused} == {("user-42", "client-7")}
    assert_unchanged(issuer, app)


@pytest.mark.parametrize(
    "claims",
    [
        # Functions, so that times are taken when the test runs, not when it is collected.
        lambda: {"scope": f"{READ} {WRITE}"},
        lambda: {"scope": None, "scp": [READ, WRITE]},
        lambda: {"scope": None, "scp": f"{READ} {WRITE}"},
        lambda: {"aud": ["another-service", "userservice"]},
        lambda: {"exp": int(time.time()) - 30},  # expired, within the 60 s leeway
        lambda: {"nbf": int(time.time()) + 30},
        lambda: {"padding": "x" * 5000},  # a token several KB long, under the limit
    ],
    ids=["scope", "scp list", "scp string", "aud list", "expired within leeway", "nbf", "long"],
)
@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_valid_token_with_the_scope_reaches_every_route(shared, trusting, claims, kid):
    issuer, _ = shared
    app = fresh_database(trusting)  # the routes write: a database of this test's own
    token = issuer.token(kid, **claims())
    statuses = [call(app, m, p, b, bearer(token)).status_code for m, p, b in ROUTES]
    assert statuses == [200, 201, 200, 200, 200, 204]


# The key set: rotation, outage, flood, discovery.


class Clock:
    """A monotonic clock for the key set, moved by the test instead of slept through."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keys_on_a_clock(app: Flask) -> tuple[Clock, Settings]:
    """Give the app's verifier a key set whose clock the test moves; return it and the settings."""
    settings = app.config["SETTINGS"]
    clock = Clock()
    app.extensions[auth.EXTENSION_KEY] = verifier.build(settings, clock=clock)
    return clock, settings


def test_a_new_kid_is_accepted_after_one_refetch_and_a_removed_key_refused_once_expired(
    tmp_path, issuer, apps, assert_problem
):
    # The default cooldown (30 s) and cache lifetime (300 s), passed on the key set's clock.
    apps.append(app := build(tmp_path, **issuer.settings()))
    clock, settings = keys_on_a_clock(app)
    assert call(app, "GET", "/api/v1/users", None, bearer(issuer.token())).status_code == 200
    assert issuer.requests() == 1

    issuer.add_key("ec-2")
    clock.now += settings.auth_jwks_cooldown
    assert call(app, "GET", "/api/v1/users", None, bearer(issuer.token("ec-2"))).status_code == 200
    assert issuer.requests() == 2
    # Within the cooldown, another new kid is refused without a fetch.
    issuer.add_key("ec-3")
    refused = call(app, "GET", "/api/v1/users", None, bearer(issuer.token("ec-3")))
    assert_problem(refused, 401, "INVALID_TOKEN", INVALID)
    assert issuer.requests() == 2

    issuer.remove_key("rsa-1")
    assert call(app, "GET", "/api/v1/users", None, bearer(issuer.token())).status_code == 200
    clock.now += settings.auth_jwks_cache_seconds
    removed = call(app, "GET", "/api/v1/users", None, bearer(issuer.token()))
    problem = assert_problem(removed, 401, "INVALID_TOKEN", INVALID)
    assert problem["detail"] == "The token's key (kid) is not in the issuer's key set."
    assert issuer.requests() == 3


def test_with_the_jwks_server_stopped_cached_keys_pass_and_unknown_ones_get_503(
    tmp_path, issuer, apps, assert_problem
):
    apps.append(app := build(tmp_path, **issuer.settings()))
    clock, settings = keys_on_a_clock(app)
    assert call(app, "GET", "/api/v1/users", None, bearer(issuer.token())).status_code == 200
    issuer.add_key("ec-2")
    issuer.stop()
    clock.now += settings.auth_jwks_cache_seconds  # expired: the refetch fails, the key serves

    for method, path, body in ROUTES:
        assert call(app, method, path, body, bearer(issuer.token())).status_code < 400
    for method, path, body in ROUTES:
        response = call(app, method, path, body, bearer(issuer.token("ec-2")))
        problem = assert_problem(response, 503, "AUTH_UNAVAILABLE", None)
        assert response.headers["Retry-After"] == f"{settings.auth_jwks_cooldown:.0f}"
        assert problem["detail"] == (
            "The token cannot be checked now: the issuer's keys are unreachable; retry."
        )
    clock.now += settings.auth_jwks_cooldown - 1
    response = call(app, "GET", "/api/v1/users", None, bearer(issuer.token("ec-2")))
    assert response.headers["Retry-After"] == "1"


def test_on_default_settings_an_unreachable_issuer_is_503_with_retry_after(
    tmp_path, apps, assert_problem
):
    issuer = Issuer(tmp_path / "never-started")
    apps.append(app := build(tmp_path, **issuer.settings()))

    response = call(app, "GET", "/api/v1/users", None, bearer(issuer.token()))

    assert_problem(response, 503, "AUTH_UNAVAILABLE", None)
    assert response.headers["Retry-After"] == "30"


@pytest.mark.slow
def test_on_default_settings_a_silent_issuer_costs_at_most_the_fetch_timeout(
    tmp_path, issuer, apps, assert_problem
):
    apps.append(app := build(tmp_path, **issuer.settings()))
    issuer.pause()
    started = time.monotonic()

    response = call(app, "GET", "/api/v1/users", None, bearer(issuer.token()))

    assert_problem(response, 503, "AUTH_UNAVAILABLE", None)
    assert time.monotonic() - started < 10  # AUTH_JWKS_TIMEOUT is 2 s; the margin is for load


def _random_kid_token(issuer: Issuer) -> str:
    """A token as a flood would send it: a made-up kid, a signature never checked."""
    head = _b64(json.dumps({"alg": "RS256", "kid": secrets.token_hex(8)}).encode())
    return f"{head}.{_b64(json.dumps(issuer.claims()).encode())}.{_b64(secrets.token_bytes(256))}"


def flood(app: Flask, issuer: Issuer, count: int) -> list[tuple[int, str]]:
    """Send count tokens with random kids from 8 threads; return (status, code) of each."""

    def one(_: int) -> tuple[int, str]:
        response = call(app, "GET", "/api/v1/users", None, bearer(_random_kid_token(issuer)))
        return response.status_code, response.get_json()["code"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def test_a_flood_of_unknown_kids_reaches_the_issuer_once_on_default_settings(
    tmp_path, issuer, apps
):
    apps.append(app := build(tmp_path, **issuer.settings()))

    answers = flood(app, issuer, 1000)

    assert set(answers) == {(401, "INVALID_TOKEN")}
    assert issuer.requests() == 1
    assert call(app, "GET", "/api/v1/users", None, bearer(issuer.token())).status_code == 200
    assert issuer.requests() == 1


def test_a_flood_reaches_the_issuer_at_most_once_per_cooldown(tmp_path, issuer, apps):
    apps.append(app := build(tmp_path, **issuer.settings(auth_jwks_cooldown=0.5)))
    started = time.monotonic()

    answers = flood(app, issuer, 1000)

    elapsed = time.monotonic() - started
    assert set(answers) == {(401, "INVALID_TOKEN")}
    assert 1 <= issuer.requests() <= int(elapsed / 0.5) + 1


def test_the_key_set_is_found_through_the_issuers_openid_configuration(tmp_path, issuer, apps):
    apps.append(app := build(tmp_path, **issuer.settings(auth_jwks_url="")))

    for _ in range(3):
        assert call(app, "GET", "/api/v1/users", None, bearer(issuer.token())).status_code == 200

    assert (issuer.requests("/.well-known/openid-configuration"), issuer.requests()) == (1, 1)


# What stays open, and what is written down.


def test_health_and_cors_preflight_need_no_token(tmp_path, issuer, apps):
    settings = issuer.settings(cors_origins="https://app.example.com")
    apps.append(app := build(tmp_path, **settings))
    client = app.test_client()

    preflight = client.options(
        "/api/v1/users/1",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "Authorization",
        },
    )

    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert client.get("/health").status_code == 200
    assert (client.get("/health/ready").get_json(), issuer.requests()) == ({"status": "ready"}, 0)


def test_logs_name_the_caller_and_each_write_is_audited_without_the_token(
    tmp_path, issuer, apps, access_log, audit_log, capsys
):
    apps.append(app := build(tmp_path, **issuer.settings(log_level="INFO")))
    token = issuer.token()
    call(app, "POST", "/api/v1/users", USER, bearer(token))
    call(app, "GET", "/api/v1/users/1", None, bearer(token))
    call(app, "DELETE", "/api/v1/users/1", None, bearer(issuer.token(scope=READ)))
    call(app, "DELETE", "/api/v1/users/1", None)

    assert [
        (r.status, getattr(r, "sub", None), getattr(r, "client_id", None)) for r in access_log
    ] == [
        (201, "user-42", "client-7"),
        (200, "user-42", "client-7"),
        (403, "user-42", "client-7"),
        (401, None, None),
    ]
    assert [(r.sub, r.client_id, r.method, r.user_id, r.status) for r in audit_log] == [
        ("user-42", "client-7", "POST", 1, 201),
        ("user-42", "client-7", "DELETE", 1, 403),
        (None, None, "DELETE", 1, 401),
    ]
    assert token not in capsys.readouterr().out


def test_emf_records_carry_the_caller(tmp_path, issuer, apps, capsys):
    apps.append(app := build(tmp_path, **issuer.settings(metrics_emf=True)))

    call(app, "GET", "/api/v1/users", None, bearer(issuer.token()))

    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (record["sub"], record["client_id"], record["StatusCode"]) == (
        "user-42",
        "client-7",
        "200",
    )
    assert "sub" not in json.dumps(record["_aws"])  # a property, never a dimension


@pytest.mark.slow
def test_a_remembered_token_still_expires(tmp_path, issuer, apps, assert_problem):
    apps.append(app := build(tmp_path, **issuer.settings(auth_leeway=0)))
    expires = int(time.time()) + 2
    token = issuer.token(exp=expires)
    assert call(app, "GET", "/api/v1/users", None, bearer(token)).status_code == 200
    while time.time() <= expires:  # until the token has expired, and no longer
        time.sleep(0.05)

    response = call(app, "GET", "/api/v1/users", None, bearer(token))

    problem = assert_problem(response, 401, "INVALID_TOKEN", INVALID)
    assert problem["detail"] == "The token has expired."
