"""Measure what checking a bearer token adds: CPU microseconds per request, key already cached.

One process, one run: the service on the null connection (bench/nulldb.py) answers
GET /api/v1/users/1 through `app.wsgi_app` with no token required, and with tokens required
(an RS256 token from a 2048-bit RSA key, an ES256 token from a P-256 key; the key set served
by bench/standins.py and fetched before timing). Each token is checked in full on every
request (the verifier told to remember nothing: a new token each time, the worst case), and
as the service runs by default (a client sending the same token again: it is remembered).
`Verifier.verify` is timed alone too. CPU time is `time.process_time()`; the cases run in
alternating rounds, and each figure is the median over rounds of the mean per request.
Prints a Markdown table.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from werkzeug.test import EnvironBuilder

from bench import nulldb, standins
from bench.null_wsgi import settings
from userservice import auth, create_app, db
from userservice.auth import verifier
from userservice.auth.jwks import HttpLoader, KeySet
from userservice.settings import Settings

ROUNDS = 9
CALLS = 1_000
PATH = "/api/v1/users/1"
ISSUER, AUDIENCE = "https://issuer.example.com/", "userservice"
TARGET_US = 150


def cpu_us(fn: Callable[[], object]) -> float:
    """Return the mean CPU microseconds per call of fn over CALLS calls."""
    started = time.process_time()
    for _ in range(CALLS):
        fn()
    return (time.process_time() - started) / CALLS * 1e6


def requester(app: Flask, headers: dict[str, str]) -> Callable[[], object]:
    """Return a function that sends one GET through the app's WSGI callable and checks 200."""
    environ = EnvironBuilder(path=PATH, headers=headers).get_environ()
    answers: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        answers.append(status)

    def one() -> object:
        body = b"".join(app.wsgi_app(dict(environ), start_response))
        status = answers.pop()
        assert status.startswith("200"), (status, body)
        return body

    return one


def main() -> None:
    """Serve a key set of an RSA and an EC key, measure, and print the figures."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {
        "keys": [
            {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa-1"},
            {**ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "ec-1"},
        ]
    }
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "client_id": "bench",
        "scope": "users:read users:write",
        "iat": now,
        "exp": now + 3600,
    }
    tokens = {
        "RS256": jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}),
        "ES256": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "ec-1"}),
    }
    with standins.json_document(jwks) as (jwks_url, requested):
        report(measure(jwks_url, tokens, requested))


def measure(jwks_url: str, tokens: dict[str, str], fetches: list[str]) -> dict[str, list[float]]:
    """Time each case in alternating rounds; return the per-round means."""
    base = settings()
    trusting = dataclasses.replace(
        base, auth_issuer=ISSUER, auth_audience=AUDIENCE, auth_jwks_url=jwks_url
    )
    apps = [create_app(s, connect=nulldb.connect(0)) for s in (base, trusting, trusting)]
    open_app, remembering, forgetting = apps
    full = verifier.Verifier(trusting, keys(trusting), remember=0)
    forgetting.extensions[auth.EXTENSION_KEY] = full
    remembered = remembering.extensions[auth.EXTENSION_KEY]
    rs256, es256 = tokens["RS256"], tokens["ES256"]
    cases = {
        "no token required": requester(open_app, {}),
        "RS256, checked in full": requester(forgetting, _bearer(rs256)),
        "ES256, checked in full": requester(forgetting, _bearer(es256)),
        "RS256, sent again (remembered)": requester(remembering, _bearer(rs256)),
        "ES256, sent again (remembered)": requester(remembering, _bearer(es256)),
        "verify() alone, RS256 in full": lambda: full.verify(rs256),
        "verify() alone, ES256 in full": lambda: full.verify(es256),
        "verify() alone, RS256 remembered": lambda: remembered.verify(rs256),
        "verify() alone, ES256 remembered": lambda: remembered.verify(es256),
    }
    for case in cases.values():  # warm up: each key set is fetched here, once
        case()
    fetched = len(fetches)
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, case in cases.items():
            rounds[name].append(cpu_us(case))
    assert len(fetches) == fetched, "no key set fetch may happen while timing"
    for app in apps:
        db.get_from(app).close()
    return rounds


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def keys(trusting: Settings) -> KeySet:
    """Return a key set of its own for the verifier that remembers nothing."""
    return KeySet(
        HttpLoader(trusting.auth_jwks_url, trusting.auth_issuer, trusting.auth_jwks_timeout),
        algorithms=trusting.auth_algorithm_list,
        ttl=trusting.auth_jwks_cache_seconds,
        cooldown=trusting.auth_jwks_cooldown,
    )


def report(rounds: dict[str, list[float]]) -> None:
    """Print the figures as Markdown."""
    median = {name: statistics.median(values) for name, values in rounds.items()}
    base = median["no token required"]
    print(f"CPU per request, {ROUNDS} rounds x {CALLS} requests, median of round means\n")
    print("| case | CPU µs / request | added by the token check | at most 150 µs |")
    print("|---|---|---|---|")
    for name, value in median.items():
        if name.startswith("verify"):
            added, within = value, value <= TARGET_US
        elif name == "no token required":
            print(f"| {name} | {value:.1f} | | |")
            continue
        else:
            added = value - base
            within = added <= TARGET_US
        print(f"| {name} | {value:.1f} | {added:.1f} | {'yes' if within else 'NO'} |")


if __name__ == "__main__":
    main()
