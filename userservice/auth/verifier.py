"""Verify bearer tokens: JWTs signed by the issuer's keys, for this audience, not expired.

auth/tokenparts.py first reads the header and claims strictly, within bounds; then PyJWT checks
the token against the key set (auth/jwks.py): the algorithm from the allow-list only, `iss`,
`aud` and `exp` required, `nbf` and `iat` honoured with AUTH_LEEWAY. A token verified
once is remembered (by its SHA-256) until it expires or its key changes: clients send the
same token for its whole life, and checking a signature again proves nothing new.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from ..errors import MAX_TOKEN_LENGTH, AuthUnavailable, InvalidToken
from ..settings import DEV_ISSUER, Settings
from . import devkey, tokenparts
from .caller import Caller
from .jwks import HttpLoader, KeySet, KeysUnavailable, UnknownKey

# Verified tokens remembered per process; each entry is a digest and a few small objects.
REMEMBERED = 1024
# Most specific first: several of PyJWT's errors subclass others.
REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet (nbf or iat is in the future)."),
    (jwt.InvalidIssuerError, "The token's issuer (iss) is not the one this service trusts."),
    (jwt.InvalidAudienceError, "The token is not meant for this service (aud)."),
    (jwt.InvalidSignatureError, "The token's signature does not verify."),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not allowed."),
    (jwt.InvalidIssuedAtError, "The token's iat is not a number."),
    (jwt.DecodeError, tokenparts.MALFORMED),
)
# What else PyJWT or cryptography may raise on a token's bytes: malformed, whatever the cause.
MALFORMED_ERRORS = (ArithmeticError, LookupError, RecursionError, TypeError, ValueError)


@dataclass(frozen=True)
class _Verified:
    caller: Caller
    kid: str
    algorithm: str
    key: jwt.PyJWK
    expires: float


class Verifier:
    """Check tokens against one issuer, audience and key set."""

    def __init__(self, settings: Settings, keys: KeySet, remember: int = REMEMBERED) -> None:
        self._keys = keys
        self._algorithms = settings.auth_algorithm_list
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_expected_audience
        self._leeway = settings.auth_leeway
        self._remember = remember
        self._verified: dict[bytes, _Verified] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> Caller:
        """Return the caller a token speaks for, or raise InvalidToken or AuthUnavailable."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(f"The token is longer than {MAX_TOKEN_LENGTH} characters.")
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None and self._still_good(known):
            return known.caller
        verified = self._check(token)
        with self._lock:
            if len(self._verified) >= self._remember > 0:
                del self._verified[next(iter(self._verified))]  # the oldest
            if self._remember > 0:
                self._verified[digest] = verified
        return verified.caller

    def _still_good(self, known: _Verified) -> bool:
        """Tell whether a remembered token is unexpired and its key is still the issuer's."""
        if time.time() > known.expires + self._leeway:
            return False
        try:
            return self._keys.key(known.kid, known.algorithm) is known.key
        except (UnknownKey, KeysUnavailable):
            return False

    def _check(self, token: str) -> _Verified:
        """Verify the token in full: its key, signature and claims."""
        header = tokenparts.read(token)[0]
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
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
            raise AuthUnavailable(str(exc), retry_after=exc.retry_after) from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from None
        except MALFORMED_ERRORS:
            raise InvalidToken(tokenparts.MALFORMED) from None
        caller = Caller(claims.get("sub"), _client(claims), tokenparts.scopes(claims))
        return _Verified(caller, kid, algorithm, key, float(claims["exp"]))


def _reason(exc: jwt.PyJWTError) -> str:
    """Say which rule a token broke, without echoing it."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"The token has no {exc.claim} claim."
    return next((text for kind, text in REASONS if isinstance(exc, kind)), "The token is invalid.")


def _client(claims: dict[str, Any]) -> str | None:
    """Return the client the token was issued to: `client_id` (OAuth) or `azp` (OpenID)."""
    # Both are strings when present (tokenparts.read checked them).
    client: str | None = claims.get("client_id") or claims.get("azp")
    return client


def build(settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> Verifier:
    """Return the verifier for the settings' issuer: its key set over HTTP, or the dev key."""
    if settings.auth_issuer == DEV_ISSUER:
        load = devkey.key_set_loader(settings)
    else:
        load = HttpLoader(settings.auth_jwks_url, settings.auth_issuer, settings.auth_jwks_timeout)
    keys = KeySet(
        load,
        algorithms=settings.auth_algorithm_list,
        ttl=settings.auth_jwks_cache_seconds,
        cooldown=settings.auth_jwks_cooldown,
        clock=clock,
    )
    return Verifier(settings, keys)
