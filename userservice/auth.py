"""Know who is calling: verify the bearer token (RFC 6750) of every users call, and audit writes.

Tokens are JWTs checked with PyJWT against the issuer's key set (see jwks.py): the algorithm
from the allow-list only, `iss`, `aud` and `exp` required, `nbf` and `iat` honoured with
AUTH_LEEWAY. The check runs as the users blueprint's first hook, so a refused call costs no
database work.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import jwt
from flask import Flask, Response, current_app, g, request

from . import devauth
from .errors import AuthUnavailable, InsufficientScope, InvalidToken, Unauthenticated
from .jwks import HttpLoader, KeySet, KeysUnavailable, UnknownKey
from .settings import DEV_ISSUER, Settings

EXTENSION_KEY = "userservice.auth"
# RFC 6750's b64token; a JWT is three base64url parts joined by dots.
BEARER = re.compile(r"bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
# Far above any issuer's real tokens, far below what would cost to parse.
MAX_TOKEN_LENGTH = 8192
READ_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Most specific first: several of PyJWT's errors subclass others.
REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet (nbf or iat is in the future)."),
    (jwt.InvalidIssuerError, "The token's issuer (iss) is not the one this service trusts."),
    (jwt.InvalidAudienceError, "The token is not meant for this service (aud)."),
    (jwt.InvalidSignatureError, "The token's signature does not verify."),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not allowed."),
    (jwt.InvalidIssuedAtError, "The token's iat is not a number."),
    (jwt.DecodeError, "The token is malformed."),
)
log = logging.getLogger(__name__)
audit_log = logging.getLogger("userservice.audit")


@dataclass(frozen=True)
class Caller:
    """Who a verified token speaks for: its subject, its client and the scopes it grants."""

    subject: str | None
    client: str | None
    scopes: frozenset[str]


class Verifier:
    """Check tokens against one issuer, audience and key set."""

    def __init__(self, settings: Settings, keys: KeySet) -> None:
        self._keys = keys
        self._algorithms = settings.auth_algorithm_list
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_expected_audience
        self._leeway = settings.auth_leeway

    def verify(self, token: str) -> Caller:
        """Return the caller a token speaks for, or raise InvalidToken or AuthUnavailable."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(f"The token is longer than {MAX_TOKEN_LENGTH} characters.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The token is malformed.") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self._algorithms:
            raise InvalidToken("The token's algorithm is not allowed.")
        if not isinstance(kid, str):
            raise InvalidToken("The token names no key (kid).")
        try:
            key = self._keys.key(kid, algorithm)
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except UnknownKey as exc:
            raise InvalidToken(str(exc)) from None
        except KeysUnavailable as exc:
            raise AuthUnavailable(str(exc), exc.retry_after) from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from None
        return Caller(_text(claims.get("sub")), _client(claims), _scopes(claims))


def _reason(exc: jwt.PyJWTError) -> str:
    """Say which rule a token broke, without echoing it."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"The token has no {exc.claim} claim."
    return next((text for kind, text in REASONS if isinstance(exc, kind)), "The token is invalid.")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _client(claims: dict[str, Any]) -> str | None:
    """Return the client the token was issued to: `client_id` (OAuth) or `azp` (OpenID)."""
    return _text(claims.get("client_id")) or _text(claims.get("azp"))


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """Return the granted scopes, from `scope` (a string) or `scp` (a list or a string)."""
    granted: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(item for item in value if isinstance(item, str))
    return frozenset(granted)


def authenticate() -> None:
    """Refuse a users call without a valid token that grants the scope its method needs."""
    verifier: Verifier | None = current_app.extensions.get(EXTENSION_KEY)
    # A preflight never gets here (cors.py answers it); a bare OPTIONS lists methods only.
    if verifier is None or request.method == "OPTIONS":
        return
    g.caller = caller = verifier.verify(_bearer_token())
    settings = current_app.config["SETTINGS"]
    needed = (
        settings.auth_read_scope if request.method in READ_METHODS else settings.auth_write_scope
    )
    if needed not in caller.scopes:
        raise InsufficientScope(needed)


def _bearer_token() -> str:
    """Return the token of the one `Authorization: Bearer` header, or raise Unauthenticated."""
    if "access_token" in request.args:
        raise Unauthenticated("Send the token in the Authorization header, never in the URL.")
    value = request.headers.get("Authorization", "").strip()
    if not value:
        raise Unauthenticated()
    # Servers and front doors join repeated headers with a comma, which no b64token holds.
    if "," in value:
        raise Unauthenticated("Send one Authorization header with one credential.")
    match = BEARER.fullmatch(value)
    if match is None:
        raise Unauthenticated("Send the token as Authorization: Bearer <token>.")
    return match.group(1)


def caller_fields() -> dict[str, str]:
    """Return the verified subject and client, for the access line and metrics."""
    caller: Caller | None = g.get("caller")
    if caller is None:
        return {}
    found = {"sub": caller.subject, "client_id": caller.client}
    return {name: value for name, value in found.items() if value is not None}


def audit(response: Response) -> Response:
    """Log one audit line per write: who, through which client, did what to which user."""
    if request.method in WRITE_METHODS:
        user_id = (request.view_args or {}).get("user_id")
        if user_id is None and response.status_code == 201:
            # The new user's id ends its Location (/api/v1/users/{id}).
            user_id = int(response.headers["Location"].rsplit("/", 1)[-1])
        caller: Caller | None = g.get("caller")
        audit_log.info(
            "audit",
            extra={
                "sub": caller.subject if caller else None,
                "client_id": caller.client if caller else None,
                "method": request.method,
                "user_id": user_id,
                "status": response.status_code,
            },
        )
    return response


def init_app(app: Flask) -> None:
    """Build the verifier from the settings, or say loudly that the service is open."""
    settings: Settings = app.config["SETTINGS"]
    app.cli.add_command(devauth.dev_token_command)
    if not settings.auth_enabled:
        log.warning(
            "authentication is off: AUTH_ISSUER is empty, so anyone who reaches the service "
            "may read and change every user (development only; see the README)"
        )
        return
    if settings.auth_issuer == DEV_ISSUER:
        load = devauth.key_set_loader(settings)
    else:
        load = HttpLoader(settings.auth_jwks_url, settings.auth_issuer, settings.auth_jwks_timeout)
    keys = KeySet(
        load,
        algorithms=settings.auth_algorithm_list,
        ttl=settings.auth_jwks_cache_seconds,
        cooldown=settings.auth_jwks_cooldown,
    )
    app.extensions[EXTENSION_KEY] = Verifier(settings, keys)
    log.info(
        "bearer tokens required on /api/v1: issuer %s, audience %s",
        settings.auth_issuer,
        settings.auth_expected_audience,
    )
