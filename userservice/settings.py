"""Read the service's settings once, from the environment and `.env`, and validate them."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn, Self

import click
from dotenv import dotenv_values

ENVIRONMENTS = ("development", "staging", "production")
SNOWFLAKE_REQUIRED = ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_WAREHOUSE")
PROTOCOLS = ("https", "http")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?")
WORKLOAD_IDENTITY_PROVIDERS = ("AWS",)
SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+")
HTTP_URL = re.compile(r"https?://[^\s/?#]+(/\S*)?")
# Asymmetric only: an HMAC algorithm would take the issuer's public key as a shared secret.
TOKEN_ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
# AUTH_ISSUER=dev trusts the development key under EMULATOR_DATA_DIR (userservice/auth/devkey.py).
DEV_ISSUER = "dev"
DEV_AUDIENCE = "userservice"


class StartupError(click.ClickException):
    """The service cannot start; the message says why and what to do.

    A click exception, so the flask CLI prints it as one line ("Error: ...") and exits 1,
    even when it is raised while flask builds the app; gunicorn.conf.py and wsgi.py print
    it as one line too.
    """

    def exit(self, code: int = 1) -> NoReturn:
        """Stop this process, saying why in one line on stderr (gunicorn's entry points)."""
        print(f"userservice: cannot start: {self.message}", file=sys.stderr, flush=True)
        raise SystemExit(code)


class SettingsError(StartupError, ValueError):
    """A setting is missing or invalid; the message names it."""


DAY = 86400
WEEK = 7 * DAY


def _setting(
    env: str,
    default: Any,
    *,
    secret: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """Declare a setting; a number has both bounds, so no value overflows at request time."""
    meta = {"env": env, "minimum": minimum, "maximum": maximum}
    return field(default=default, repr=not secret, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Hold every setting of the service; build it with `Settings.from_env()`."""

    environment: str = _setting("ENVIRONMENT", "development")
    snowflake_account: str = _setting("SNOWFLAKE_ACCOUNT", "")
    snowflake_user: str = _setting("SNOWFLAKE_USER", "")
    snowflake_password: str = _setting("SNOWFLAKE_PASSWORD", "", secret=True)
    snowflake_private_key_file: str = _setting("SNOWFLAKE_PRIVATE_KEY_FILE", "")
    snowflake_private_key: str = _setting("SNOWFLAKE_PRIVATE_KEY", "", secret=True)
    snowflake_private_key_passphrase: str = _setting(
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "", secret=True
    )
    snowflake_oauth_token: str = _setting("SNOWFLAKE_OAUTH_TOKEN", "", secret=True)
    snowflake_pat: str = _setting("SNOWFLAKE_PAT", "", secret=True)
    snowflake_workload_identity_provider: str = _setting("SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER", "")
    snowflake_secret_arn: str = _setting("SNOWFLAKE_SECRET_ARN", "")
    snowflake_role: str = _setting("SNOWFLAKE_ROLE", "")
    snowflake_warehouse: str = _setting("SNOWFLAKE_WAREHOUSE", "")
    snowflake_database: str = _setting("SNOWFLAKE_DATABASE", "USERSERVICE")
    snowflake_schema: str = _setting("SNOWFLAKE_SCHEMA", "PUBLIC")
    snowflake_host: str = _setting("SNOWFLAKE_HOST", "")
    snowflake_port: int = _setting("SNOWFLAKE_PORT", 443, minimum=1, maximum=65535)
    snowflake_protocol: str = _setting("SNOWFLAKE_PROTOCOL", "https")
    # The time budget (docs/OPERATIONS.md, "Time budget"): every request answered within 10 s.
    snowflake_login_timeout: float = _setting(
        "SNOWFLAKE_LOGIN_TIMEOUT", 5.0, minimum=1, maximum=300
    )
    snowflake_network_timeout: float = _setting(
        "SNOWFLAKE_NETWORK_TIMEOUT", 1.0, minimum=1, maximum=300
    )
    snowflake_socket_timeout: float = _setting(
        "SNOWFLAKE_SOCKET_TIMEOUT", 4.0, minimum=1, maximum=300
    )
    snowflake_statement_timeout: int = _setting(
        "SNOWFLAKE_STATEMENT_TIMEOUT", 3, minimum=1, maximum=604800
    )
    snowflake_lock_timeout: int = _setting("SNOWFLAKE_LOCK_TIMEOUT", 2, minimum=0, maximum=43200)
    db_pool_min_connections: int = _setting("DB_POOL_MIN_CONNECTIONS", 1, minimum=0, maximum=1000)
    db_pool_max_connections: int = _setting("DB_POOL_MAX_CONNECTIONS", 8, minimum=1, maximum=1000)
    db_pool_timeout: float = _setting("DB_POOL_TIMEOUT", 3.0, minimum=0.01, maximum=300)
    db_pool_max_lifetime: float = _setting("DB_POOL_MAX_LIFETIME", 3600.0, minimum=1, maximum=WEEK)
    db_pool_max_idle: float = _setting("DB_POOL_MAX_IDLE", 300.0, minimum=0.01, maximum=DAY)
    db_ready_timeout: float = _setting("DB_READY_TIMEOUT", 2.0, minimum=0.01, maximum=60)
    db_retry_after: int = _setting("DB_RETRY_AFTER", 5, minimum=1, maximum=DAY)
    emulator_data_dir: str = _setting("EMULATOR_DATA_DIR", ".data")
    max_content_length: int = _setting(
        "MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1, maximum=1024**3
    )
    host: str = _setting("HOST", "127.0.0.1")
    port: int = _setting("PORT", 8000, minimum=1, maximum=65535)
    web_concurrency: int = _setting("WEB_CONCURRENCY", 2, minimum=1, maximum=256)
    gunicorn_worker_connections: int = _setting(
        "GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1, maximum=100_000
    )
    read_timeout: int = _setting("READ_TIMEOUT", 5, minimum=1, maximum=3600)
    gunicorn_timeout: int = _setting("GUNICORN_TIMEOUT", 30, minimum=1, maximum=DAY)
    # How long a POST's Idempotency-Key is remembered; and how long an unanswered claim holds
    # its key before a retry may take it over (above the 10 s time budget, so a live request
    # is never overtaken; this bounds how long a create abandoned by a killed process blocks).
    idempotency_key_ttl_seconds: int = _setting(
        "IDEMPOTENCY_KEY_TTL_SECONDS", 86400, minimum=60, maximum=30 * DAY
    )
    idempotency_lease_seconds: int = _setting(
        "IDEMPOTENCY_LEASE_SECONDS", 15, minimum=11, maximum=DAY
    )
    log_level: str = _setting("LOG_LEVEL", "INFO")
    log_format: str = _setting("LOG_FORMAT", "json")
    metrics_emf: bool = _setting("METRICS_EMF", False)
    cors_origins: str = _setting("CORS_ORIGINS", "")
    cors_allow_credentials: bool = _setting("CORS_ALLOW_CREDENTIALS", False)
    service_version: str = _setting("SERVICE_VERSION", "0.1.0")
    auth_issuer: str = _setting("AUTH_ISSUER", "")
    auth_audience: str = _setting("AUTH_AUDIENCE", "")
    auth_jwks_url: str = _setting("AUTH_JWKS_URL", "")
    auth_algorithms: str = _setting("AUTH_ALGORITHMS", "RS256,ES256")
    auth_leeway: int = _setting("AUTH_LEEWAY", 60, minimum=0, maximum=3600)
    auth_jwks_cache_seconds: float = _setting(
        "AUTH_JWKS_CACHE_SECONDS", 300.0, minimum=1, maximum=DAY
    )
    auth_jwks_timeout: float = _setting("AUTH_JWKS_TIMEOUT", 2.0, minimum=0.1, maximum=60)
    auth_jwks_cooldown: float = _setting("AUTH_JWKS_COOLDOWN", 30.0, minimum=0.1, maximum=3600)
    auth_read_scope: str = _setting("AUTH_READ_SCOPE", "users:read")
    auth_write_scope: str = _setting("AUTH_WRITE_SCOPE", "users:write")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: str | Path | None = ".env",
        defaults: Mapping[str, str] | None = None,
    ) -> Self:
        """Build settings from `defaults`, then `.env`, then the environment; validate them."""
        values = dict(defaults or {})
        if env_file:
            values.update((k, v) for k, v in dotenv_values(env_file).items() if v is not None)
        values.update(os.environ if environ is None else environ)
        kwargs = {}
        for f in fields(cls):
            raw = values.get(f.metadata["env"], "").strip()
            if raw:
                kwargs[f.name] = _convert(f.metadata["env"], raw, type(f.default))
        for name in ("log_level", "snowflake_workload_identity_provider"):
            if name in kwargs:
                kwargs[name] = kwargs[name].upper()
        return cls(**kwargs)

    def __post_init__(self) -> None:
        """Validate however the settings were built: from_env, directly or by replace()."""
        self.validate()

    def validate(self) -> None:
        """Raise SettingsError naming the first setting that is out of range or missing."""
        for f in fields(self):
            minimum, maximum = f.metadata["minimum"], f.metadata["maximum"]
            if minimum is not None and getattr(self, f.name) < minimum:
                raise SettingsError(f"{f.metadata['env']} must be at least {number_text(minimum)}")
            if maximum is not None and getattr(self, f.name) > maximum:
                raise SettingsError(f"{f.metadata['env']} must be at most {number_text(maximum)}")
        if self.environment not in ENVIRONMENTS:
            raise SettingsError(f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
        self._validate_cors()
        if self.snowflake_protocol not in PROTOCOLS:
            raise SettingsError(f"SNOWFLAKE_PROTOCOL must be one of {', '.join(PROTOCOLS)}")
        if self.db_pool_min_connections > self.db_pool_max_connections:
            raise SettingsError("DB_POOL_MIN_CONNECTIONS must not exceed DB_POOL_MAX_CONNECTIONS")
        if self.snowflake_lock_timeout >= self.snowflake_statement_timeout:
            # Else a lock wait ends as a statement timeout, and is not told apart as busy.
            raise SettingsError("SNOWFLAKE_LOCK_TIMEOUT must be below SNOWFLAKE_STATEMENT_TIMEOUT")
        if self.idempotency_lease_seconds >= self.idempotency_key_ttl_seconds:
            raise SettingsError(
                "IDEMPOTENCY_LEASE_SECONDS must be below IDEMPOTENCY_KEY_TTL_SECONDS"
            )
        self._validate_snowflake()
        self._validate_auth()

    def _validate_cors(self) -> None:
        """Refuse origins that are not scheme://host[:port], and `*` with credentials."""
        for origin in self.cors_allowed_origins:
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise SettingsError(f"CORS_ORIGINS: {origin!r} is not scheme://host[:port]")
        if self.cors_allow_credentials and "*" in self.cors_allowed_origins:
            raise SettingsError(
                "CORS_ORIGINS must list origins, not *, with CORS_ALLOW_CREDENTIALS"
            )

    @property
    def cors_allowed_origins(self) -> tuple[str, ...]:
        """Return the CORS allow-list, one origin per entry."""
        return tuple(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    def _validate_snowflake(self) -> None:
        """Check the Snowflake settings that can be checked before the secret is read."""
        provider = self.snowflake_workload_identity_provider
        if provider and provider not in WORKLOAD_IDENTITY_PROVIDERS:
            raise SettingsError("SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER must be AWS or empty")
        arn = self.snowflake_secret_arn
        if arn and not SECRET_ARN.fullmatch(arn):
            raise SettingsError(
                "SNOWFLAKE_SECRET_ARN must be a secret's ARN "
                "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
            )
        if self.environment != "development":
            # The secret may carry the account and user; workload identity needs no user.
            optional = {"SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER"} if arn else set()
            if provider:
                optional.add("SNOWFLAKE_USER")
            missing = [
                name
                for name in SNOWFLAKE_REQUIRED
                if name not in optional and not self._env_value(name)
            ]
            if missing:
                raise SettingsError(
                    f"ENVIRONMENT={self.environment} needs a Snowflake account; "
                    f"missing: {', '.join(missing)}"
                )

    def _validate_auth(self) -> None:
        """Check the token settings: staging and production must name an issuer and audience."""
        bad = [a for a in self.auth_algorithm_list if a not in TOKEN_ALGORITHMS]
        if bad or not self.auth_algorithm_list:
            raise SettingsError(f"AUTH_ALGORITHMS must list some of {', '.join(TOKEN_ALGORITHMS)}")
        for name in ("AUTH_READ_SCOPE", "AUTH_WRITE_SCOPE"):
            if not re.fullmatch(r"[!#-\[\]-~]+", self._env_value(name)):
                raise SettingsError(f"{name} must be one scope name (no spaces or quotes)")
        if self.auth_issuer == DEV_ISSUER:
            if self.environment != "development":
                raise SettingsError("AUTH_ISSUER=dev is for development only")
            return
        for name in ("AUTH_ISSUER", "AUTH_JWKS_URL"):
            value = self._env_value(name)
            if value and not HTTP_URL.fullmatch(value):
                raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
        if self.environment != "development" or self.auth_issuer:
            missing = [n for n in ("AUTH_ISSUER", "AUTH_AUDIENCE") if not self._env_value(n)]
            if missing:
                raise SettingsError(
                    f"ENVIRONMENT={self.environment} needs bearer-token settings; "
                    f"missing: {', '.join(missing)}"
                )

    @property
    def auth_enabled(self) -> bool:
        """Tell whether the users routes ask for a bearer token."""
        return bool(self.auth_issuer)

    @property
    def auth_algorithm_list(self) -> tuple[str, ...]:
        """Return the algorithms a token may be signed with."""
        return tuple(a.strip() for a in self.auth_algorithms.split(",") if a.strip())

    @property
    def auth_expected_audience(self) -> str:
        """Return the audience a token must name (the development issuer has a default)."""
        if self.auth_issuer == DEV_ISSUER:
            return self.auth_audience or DEV_AUDIENCE
        return self.auth_audience

    @property
    def use_emulator(self) -> bool:
        """Tell whether the embedded emulator stands in for Snowflake."""
        return (
            self.environment == "development"
            and not self.snowflake_account
            and not self.snowflake_secret_arn
        )

    @property
    def docs_enabled(self) -> bool:
        """Tell whether Swagger UI, ReDoc and the spec are served."""
        return self.environment != "production"

    def _env_value(self, env: str) -> Any:
        return getattr(self, env.lower())


def number_text(bound: float) -> str:
    """Write a bound as the docs do: 2592000, 0.01 (never 2.592e+06)."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _finite(raw: str) -> float:
    """Read a number; inf and nan are not one (nan would pass every bound)."""
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _convert(env: str, raw: str, kind: type) -> Any:
    converters: dict[type, tuple[Callable[[str], Any], str]] = {
        int: (int, "an integer"),
        float: (_finite, "a number"),
        str: (str, "text"),
        bool: (lambda value: BOOLEANS[value.lower()], "true or false"),
    }
    convert, kind_name = converters[kind]
    try:
        return convert(raw)
    except (ValueError, KeyError):
        raise SettingsError(f"{env} must be {kind_name}, got {raw!r}") from None
