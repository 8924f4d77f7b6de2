"""A real token issuer for tests: RSA and EC keys, a JWKS server process, and signed tokens."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bench.servers import ServerProcess, emulator_env, free_port, gunicorn
from userservice import create_app, db
from userservice.settings import Settings

HERE = Path(__file__).resolve().parent
AUDIENCE = "userservice"
READ, WRITE = "users:read", "users:write"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CHALLENGE = 'Bearer realm="userservice"'
INVALID = 'Bearer realm="userservice", error="invalid_token"'
USER = {"email": "ada@example.com", "name": "Ada"}
# Each users route and method, with a body that would succeed were the caller allowed.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"email": "eve@example.com", "name": "Eve"}),
    ("GET", "/api/v1/users/1", None),
    ("PUT", "/api/v1/users/1", {"email": "eve@example.com", "name": "Eve"}),
    ("PATCH", "/api/v1/users/1", {"name": "Eve"}),
    ("DELETE", "/api/v1/users/1", None),
]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def build(folder: Path, **settings: Any) -> Flask:
    """Build an app on an emulator database of its own."""
    base = {"emulator_data_dir": str(folder / "emulator"), "log_level": "WARNING"}
    return create_app(Settings(**{**base, **settings}))


@contextmanager
def issuer_and_app(folder: Path) -> Iterator[tuple[Issuer, Flask]]:
    """Run an issuer and an app that trusts it, holding one user (USER, id 1)."""
    issuer = Issuer(folder / "issuer")
    issuer.start()
    app = build(folder, **issuer.settings())
    try:
        created = app.test_client().post("/api/v1/users", json=USER, headers=bearer(issuer.token()))
        assert created.status_code == 201
        yield issuer, app
    finally:
        db.get_from(app).close()
        issuer.stop()


@contextmanager
def issuer_and_gunicorn(folder: Path) -> Iterator[tuple[Issuer, int]]:
    """Run an issuer, and gunicorn on default settings serving an app that trusts it."""
    issuer = Issuer(folder / "issuer")
    issuer.start()
    try:
        env = emulator_env(folder / "emulator", **issuer.env())
        with gunicorn(env, folder / "gunicorn.log") as server:
            yield issuer, server.port
    finally:
        issuer.stop()


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    """Return the session's one 2048-bit RSA key: generating one costs tens of milliseconds."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header that carries the token."""
    return {"Authorization": f"Bearer {token}"}


class Issuer:
    """An issuer at http://127.0.0.1:PORT: its key set served by a process the test controls."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.jwks_url = f"{self.url}/jwks.json"
        self.keys: dict[str, PrivateKey] = {}
        argv = [sys.executable, str(HERE / "jwks_server.py"), str(self.port), str(folder)]
        self.server = ServerProcess(argv, self.port)
        self.add_key("rsa-1", rsa_key())
        self.add_key("ec-1", ec.generate_private_key(ec.SECP256R1()))
        (folder / "openid-configuration.json").write_text(
            json.dumps({"issuer": self.url, "jwks_uri": self.jwks_url})
        )

    def env(self, **extra: str) -> dict[str, str]:
        """Return the service settings that trust this issuer."""
        return {
            "AUTH_ISSUER": self.url,
            "AUTH_AUDIENCE": AUDIENCE,
            "AUTH_JWKS_URL": self.jwks_url,
            **extra,
        }

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Return the same as Settings keyword arguments."""
        return {
            "auth_issuer": self.url,
            "auth_audience": AUDIENCE,
            "auth_jwks_url": self.jwks_url,
            **extra,
        }

    # The key set.

    def add_key(self, kid: str, key: PrivateKey | None = None) -> None:
        """Publish a key (a new EC key unless one is given) under this kid."""
        self.keys[kid] = key or ec.generate_private_key(ec.SECP256R1())
        self.publish()

    def remove_key(self, kid: str) -> None:
        """Stop publishing a key; tokens it signed stay signed."""
        self.publish(exclude=kid)

    def publish(self, exclude: str | None = None) -> None:
        """Write the key set the server serves (atomically: a reader never sees half of it)."""
        entries = [_public_jwk(kid, key) for kid, key in self.keys.items() if kid != exclude]
        draft = self.folder / "jwks.json.draft"
        draft.write_text(json.dumps({"keys": entries}))
        draft.replace(self.folder / "jwks.json")

    # Tokens.

    def claims(self, scope: str = f"{READ} {WRITE}", **changes: Any) -> dict[str, Any]:
        """Return valid claims, changed as asked (a change to None removes the claim)."""
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-42",
            "client_id": "client-7",
            "scope": scope,
            "iat": now,
            "exp": now + 600,
            **changes,
        }
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, kid: str = "rsa-1", *, alg: str | None = None, **changes: Any) -> str:
        """Return a token signed by the kid's key, with valid claims changed as asked."""
        key = self.keys[kid]
        algorithm = alg or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(self.claims(**changes), key, algorithm=algorithm, headers={"kid": kid})

    # The server process.

    def start(self) -> None:
        """Start the key set server and wait until it listens."""
        self.server.start()

    def stop(self) -> None:
        """Kill the server by its PID: the port refuses connections from now on."""
        self.server.kill()

    def pause(self) -> None:
        """Freeze the server with SIGSTOP: connections are accepted but never answered."""
        self.server.pause()

    def requests(self, path: str = "/jwks.json") -> int:
        """Return how many requests for this path the server received."""
        log = self.folder / "requests.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return lines.count(path)


def _public_jwk(kid: str, key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}
