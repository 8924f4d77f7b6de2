"""Sign development tokens with a key kept under EMULATOR_DATA_DIR; AUTH_ISSUER=dev trusts it.

`flask --app userservice dev-token` and `make token` (auth/setup.py's command) print a token signed
here. The key is an ES256 key made on first use, readable by its owner only; the service
trusts it only in development.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from ..settings import DEV_AUDIENCE, DEV_ISSUER, Settings
from .jwks import Loader

KEY_FILE = "dev-token-key.pem"
ALGORITHM = "ES256"
DEV_CLIENT = "dev-token"
# How long `make token` waits for the running service to say whether it trusts the token.
PROBE_TIMEOUT = 2.0


def key_path(settings: Settings) -> Path:
    """Return where the development signing key lives."""
    return Path(settings.emulator_data_dir) / KEY_FILE


def private_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """Load the development key, making it first if there is none (race-safe, mode 0600)."""
    path = key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        draft.write_bytes(pem)
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # fails if another process made the key first: keep theirs
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key


def _kid(key: ec.EllipticCurvePrivateKey) -> str:
    """Name the key by its public half, so a new key never matches an old token."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "dev-" + hashlib.sha256(der).hexdigest()[:16]


def key_set_loader(settings: Settings) -> Loader:
    """Return a loader of the key set that holds exactly the development key."""

    def load() -> Mapping[str, Any]:
        key = private_key(settings)
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": _kid(key), "alg": ALGORITHM, "use": "sig"}]}

    return load


def mint(
    settings: Settings,
    scopes: Iterable[str],
    expires_in: int,
    subject: str = "dev-user",
) -> str:
    """Return a development token for these scopes, valid for expires_in seconds."""
    key = private_key(settings)
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": settings.auth_audience or DEV_AUDIENCE,
        "sub": subject,
        "client_id": DEV_CLIENT,
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": _kid(key)})


def refusal(settings: Settings, token: str) -> str | None:
    """Ask the service on HOST:PORT why it refuses the token; None if it does not, or is down.

    A token is only useful to the server that trusts its key, and that server may keep its
    key under another EMULATOR_DATA_DIR than the one these settings name.
    """
    conn = http.client.HTTPConnection(settings.host, settings.port, timeout=PROBE_TIMEOUT)
    try:
        conn.request("GET", "/api/v1/users/0", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
    except OSError:
        return None  # nothing listening: no server to disagree with
    finally:
        conn.close()
    if response.status != 401:
        return None  # 404 or 403: the token's key and claims were accepted
    try:
        return str(json.loads(body)["detail"])
    except (ValueError, KeyError, TypeError):
        return "401 Unauthorized"


def untrusted(settings: Settings, token: str, made: list[Path]) -> str | None:
    """Return a warning when the running service refuses the token, removing what minting made.

    `made` is what minting created (the key, its folder): kept, it would be a stray key that
    no server trusts.
    """
    refused = refusal(settings, token)
    if refused is None:
        return None
    for path in reversed(made):
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    key = key_path(settings).resolve()
    # Name only a key file that is there: one made for this token was just removed again.
    signer = f"a key made for it at {key}, removed again" if made else str(key)
    return (
        f"warning: the service on port {settings.port} refuses this token ({refused}): it is "
        f"signed with {signer}; run make token with the server's EMULATOR_DATA_DIR"
    )
