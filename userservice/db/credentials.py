"""Decide how the service logs in to Snowflake: exactly one method, and the key it may need.

No secret value ever enters a message here: errors name settings, never their values.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..settings import Settings, SettingsError
from .secrets_manager import SecretError, fetch_secret, merge_secret

log = logging.getLogger(__name__)

# Login method -> the settings that choose it; exactly one of them may be set.
METHODS: dict[str, tuple[str, ...]] = {
    "key pair": ("SNOWFLAKE_PRIVATE_KEY_FILE", "SNOWFLAKE_PRIVATE_KEY"),
    "OAuth": ("SNOWFLAKE_OAUTH_TOKEN",),
    "programmatic access token": ("SNOWFLAKE_PAT",),
    "workload identity": ("SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER",),
    "password": ("SNOWFLAKE_PASSWORD",),
}
# The connector's authenticators that need a user name (the others carry the identity).
NEED_USER = ("SNOWFLAKE_JWT", "SNOWFLAKE")
# Snowflake's codes for a refused login; the connector also gives them SQLSTATE 28000.
# A refused login re-reads the secret at most this often, so a bad secret cannot turn every
# connect attempt into a Secrets Manager call.
REFRESH_EVERY = 30.0
LOGIN_REFUSED = frozenset({390100, 390144, 390303, 390318, *range(394300, 394307)})


def method(settings: Settings) -> str:
    """Return the one login method the settings choose, or raise SettingsError naming them."""
    named = {env: name for name, envs in METHODS.items() for env in envs if _get(settings, env)}
    if not named:
        every = ", ".join(env for envs in METHODS.values() for env in envs)
        raise SettingsError(f"no way to log in to Snowflake: set one of {every}")
    if len(named) > 1:
        raise SettingsError(f"set only one way to log in to Snowflake, not {', '.join(named)}")
    (found,) = named.values()
    if settings.snowflake_private_key_passphrase and found != "key pair":
        raise SettingsError("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE is set, but no private key")
    return found


def login_arguments(settings: Settings) -> dict[str, Any]:
    """Return the connector's arguments for the settings' login method."""
    s = settings
    found = method(s)
    if found == "key pair":
        return {"authenticator": "SNOWFLAKE_JWT", "private_key": load_private_key(s)}
    if found == "OAuth":
        return {"authenticator": "OAUTH", "token": s.snowflake_oauth_token}
    if found == "programmatic access token":
        return {"authenticator": "PROGRAMMATIC_ACCESS_TOKEN", "token": s.snowflake_pat}
    if found == "workload identity":
        provider = s.snowflake_workload_identity_provider
        return {"authenticator": "WORKLOAD_IDENTITY", "workload_identity_provider": provider}
    return {"authenticator": "SNOWFLAKE", "password": s.snowflake_password}


def resolve(settings: Settings) -> dict[str, Any]:
    """Check that the settings can log in and return the login arguments."""
    arguments = login_arguments(settings)
    needed = ["account"] + (["user"] if arguments["authenticator"] in NEED_USER else [])
    for name in needed:
        if not getattr(settings, f"snowflake_{name}"):
            raise SettingsError(
                f"SNOWFLAKE_{name.upper()} is empty (set it, or put {name!r} in the secret)"
            )
    if "password" in arguments and settings.environment == "production":
        log.warning(
            "logging in to Snowflake with SNOWFLAKE_PASSWORD: Snowflake refuses single-factor"
            " passwords for service users; use a key pair, a token or workload identity"
        )
    return arguments


def load_private_key(settings: Settings) -> Any:
    """Load and decrypt the PKCS#8 private key, or raise SettingsError naming the setting."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    source, pem = _read_pem(settings)
    passphrase = settings.snowflake_private_key_passphrase.encode() or None
    try:
        key = load_pem_private_key(pem, passphrase)
    except TypeError:
        if passphrase is None:
            raise SettingsError(
                f"{source} is encrypted: set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"
            ) from None
        raise SettingsError(
            f"{source} is not encrypted: unset SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"
        ) from None
    except ValueError:
        if passphrase is not None and b"ENCRYPTED PRIVATE KEY" in pem:
            raise SettingsError(
                f"SNOWFLAKE_PRIVATE_KEY_PASSPHRASE does not decrypt {source}"
            ) from None
        raise SettingsError(f"{source} is not a PEM PKCS#8 private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SettingsError(f"{source} must hold an RSA private key")
    return key


def is_login_refused(exc: BaseException) -> bool:
    """Tell whether Snowflake refused the credentials, as opposed to being unreachable."""
    from snowflake.connector.errors import DatabaseError

    if not isinstance(exc, DatabaseError):
        return False
    return exc.errno in LOGIN_REFUSED or exc.sqlstate == "28000"


def _read_pem(settings: Settings) -> tuple[str, bytes]:
    """Return the setting the key comes from and its PEM bytes."""
    if settings.snowflake_private_key_file:
        path = Path(settings.snowflake_private_key_file).expanduser()
        try:
            return "SNOWFLAKE_PRIVATE_KEY_FILE", path.read_bytes()
        except OSError as exc:
            raise SettingsError(
                f"SNOWFLAKE_PRIVATE_KEY_FILE cannot be read ({exc.strerror})"
            ) from None
    text = settings.snowflake_private_key
    if "\n" not in text:
        # One-line environments (a Lambda console, a CI variable) often hold `\n` escapes.
        text = text.replace("\\n", "\n")
    return "SNOWFLAKE_PRIVATE_KEY", text.encode()


def _get(settings: Settings, env: str) -> Any:
    return getattr(settings, env.lower())


class Credentials:
    """Hold the settings to connect with and their login arguments, from a secret if one is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        fetch: Callable[[str], str] = fetch_secret,
        refresh_every: float = REFRESH_EVERY,
    ) -> None:
        self._settings = settings
        self._fetch = fetch
        self._refresh_every = refresh_every
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._current: tuple[Settings, dict[str, Any]] | None = None
        if not settings.snowflake_secret_arn:
            # Without a secret everything is known now, so a bad key fails the start.
            self._current = (settings, resolve(settings))

    def __repr__(self) -> str:
        return f"Credentials(secret_arn={self._settings.snowflake_secret_arn!r})"

    def current(self) -> tuple[Settings, dict[str, Any]]:
        """Return the settings to connect with and the login arguments."""
        with self._lock:
            if self._current is None:
                self._current = self._read()
            return self._current

    def refresh(self) -> bool:
        """Read the secret again after a refused login; tell whether its credentials changed."""
        if not self._settings.snowflake_secret_arn:
            return False
        with self._lock:
            if time.monotonic() - self._read_at < self._refresh_every:
                return False
            before = self._current
            self._current = self._read()
            return before is None or before[0] != self._current[0]

    def _read(self) -> tuple[Settings, dict[str, Any]]:
        """Fetch the secret and resolve the login it holds (lock held)."""
        self._read_at = time.monotonic()
        try:
            merged = merge_secret(self._settings, self._fetch(self._settings.snowflake_secret_arn))
            return merged, resolve(merged)
        except (SecretError, SettingsError) as exc:
            log.error("cannot log in with the secret SNOWFLAKE_SECRET_ARN names: %s", exc)
            raise SecretError(f"SNOWFLAKE_SECRET_ARN: {exc}") from None
