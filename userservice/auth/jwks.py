"""Cache an issuer's JSON Web Key Set, and fetch it at most once per cooldown.

PyJWT's PyJWKClient refetches the set for every token naming an unknown `kid`, and forgets
its keys when a fetch fails; a flood of made-up `kid`s would reach the issuer, and an issuer
outage would refuse every token. Here a fetch happens only when the set is missing, expired
or lacks the token's key, and never twice within the cooldown; a failed fetch keeps the keys
already known.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jwt

Loader = Callable[[], Mapping[str, Any]]
# A key set is a few KB; a larger answer is not one, and is not read in full.
MAX_DOCUMENT_BYTES = 256 * 1024
log = logging.getLogger(__name__)


class UnknownKey(Exception):
    """The key set has no key for the token's `kid`, or not for the token's algorithm."""


class KeysUnavailable(Exception):
    """No known key fits the token, and the key set could not be fetched."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class KeySet:
    """The issuer's signing keys by (`kid`, algorithm), fetched when needed and cached."""

    def __init__(
        self,
        load: Loader,
        *,
        algorithms: Iterable[str],
        ttl: float,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._algorithms = tuple(algorithms)
        self._ttl = ttl
        self._cooldown = cooldown
        self._clock = clock
        self._keys: dict[tuple[str, str], jwt.PyJWK] = {}
        self._kids: frozenset[str] = frozenset()
        self._fetched_at = -math.inf
        self._tried_at = -math.inf
        self._failure: str | None = None
        self._lock = threading.Lock()

    def key(self, kid: str, algorithm: str) -> jwt.PyJWK:
        """Return the key that verifies this `kid` and algorithm, fetching the set when due."""
        found = self._keys.get((kid, algorithm))
        if found is not None:
            if self._clock() - self._fetched_at >= self._ttl:
                # Expired: refresh, unless another thread is at it; meanwhile the key serves.
                self._refresh(wait=False)
                found = self._keys.get((kid, algorithm))
            if found is not None:
                return found
        else:
            self._refresh(wait=True)
            found = self._keys.get((kid, algorithm))
            if found is not None:
                return found
        if kid in self._kids:
            raise UnknownKey("The token's algorithm does not fit its key.")
        if self._failure is not None:
            raise KeysUnavailable(self._failure, self._retry_after())
        raise UnknownKey("The token's key (kid) is not in the issuer's key set.")

    def _refresh(self, *, wait: bool) -> None:
        """Fetch the set unless it was tried within the cooldown; keep the old keys on failure."""
        if not self._lock.acquire(blocking=wait):
            return
        try:
            now = self._clock()
            if now - self._tried_at < self._cooldown:
                return  # fetched (or tried) just now, perhaps by the thread we waited for
            self._tried_at = now
            try:
                self._keys = _usable_keys(self._load(), self._algorithms)
            except (OSError, ValueError, TypeError) as exc:
                self._failure = f"the key set could not be fetched: {type(exc).__name__}: {exc}"
                log.warning("%s", self._failure)
                return
            self._kids = frozenset(kid for kid, _ in self._keys)
            self._fetched_at, self._failure = now, None
        finally:
            self._lock.release()

    def _retry_after(self) -> int:
        """Return the whole seconds until the next fetch may be tried (at least 1)."""
        return max(1, math.ceil(self._tried_at + self._cooldown - self._clock()))


def _usable_keys(
    document: Mapping[str, Any], algorithms: tuple[str, ...]
) -> dict[tuple[str, str], jwt.PyJWK]:
    """Return the signing keys of a JWKS document by (`kid`, algorithm), for allowed ones only."""
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("the document has no `keys` list")
    keys = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        for algorithm in algorithms:
            if entry.get("alg", algorithm) != algorithm:
                continue
            try:
                keys[(entry["kid"], algorithm)] = jwt.PyJWK(entry, algorithm)
            except jwt.PyJWTError:
                continue  # a key of another type: an RSA key cannot verify ES256
    return keys


class HttpLoader:
    """Fetch the key set from AUTH_JWKS_URL, or from the URL the issuer's discovery names."""

    def __init__(self, jwks_url: str, issuer: str, timeout: float) -> None:
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._timeout = timeout

    def __call__(self) -> Mapping[str, Any]:
        """Fetch and return the key set document."""
        if not self._jwks_url:
            self._jwks_url = self._discover()
        return fetch_json(self._jwks_url, self._timeout)

    def _discover(self) -> str:
        """Return the `jwks_uri` of the issuer's OpenID configuration."""
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        config = fetch_json(url, self._timeout)
        if config.get("issuer") != self._issuer:
            raise ValueError(f"{url} names issuer {config.get('issuer')!r}, not AUTH_ISSUER")
        jwks_uri = config.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError(f"{url} names no jwks_uri")
        return jwks_uri


def fetch_json(url: str, timeout: float) -> Mapping[str, Any]:
    """GET a JSON object with a timeout on each socket operation; refuse oversized answers."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError(f"{url} answered JSON that is not an object")
    return document
