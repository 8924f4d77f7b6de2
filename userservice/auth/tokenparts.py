"""Read a JWT's header and claims strictly and within bounds, before PyJWT sees the token.

Everything here runs on text anyone can send, before a signature is checked, so every step is
bounded and every failure is one `InvalidToken`: the token's length (bearer.py and verifier.py),
its parts' alphabet (base64url, no padding), the JSON's nesting depth (counted before it is
parsed, so no parser recurses on it), the digits of an integer, no NaN, no duplicate keys, no
lone surrogates. Then the claims the service reads are typed: `exp`, `nbf`, `iat` JSON numbers
(not booleans, not strings) within year 0-9999 seconds; `iss`, `sub`, `client_id`, `azp`
strings; `aud` a string or a list of strings; `scope` a string of scopes split on ASCII spaces
(RFC 6749, section 3.3), `scp` a list of strings or such a string.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

from ..errors import InvalidToken

MALFORMED = "The token is malformed."
# Real headers and claims nest two or three levels (Keycloak's realm_access.roles is three).
MAX_DEPTH = 16
# A time in seconds fits in 12 digits; an integer claim of more is not one the service reads.
MAX_DIGITS = 32
# Seconds from 1970 to the end of year 9999: any later time is not a time.
LATEST = 253_402_300_799
TIMES = ("exp", "nbf", "iat")
TEXTS = ("iss", "sub", "client_id", "azp")
_PART = re.compile(r"[A-Za-z0-9_-]*")
# A JSON string (escapes included; unterminated, it runs to the end, so no text is scanned
# twice) or a bracket: brackets inside strings do not nest.
_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def read(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a compact JWS's header and claims, or raise InvalidToken; checks no signature."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken(MALFORMED)
    header, claims = _object(parts[0]), _object(parts[1])
    if parts[2]:  # the signature (empty under `alg: none`, which the allow-list refuses)
        _decode(parts[2])
    _check_claims(claims)
    return header, claims


def scopes(claims: dict[str, Any]) -> frozenset[str]:
    """Return the scopes granted by `scope` and `scp` (their types checked by read)."""
    granted: set[str] = set()
    for value in (claims.get("scope"), claims.get("scp")):
        items = value.split(" ") if isinstance(value, str) else value or []
        granted.update(item for item in items if item)
    return frozenset(granted)


def _decode(part: str) -> bytes:
    """Decode one base64url part (no padding, no other character), or raise InvalidToken."""
    if not part or len(part) % 4 == 1 or not _PART.fullmatch(part):
        raise InvalidToken(MALFORMED)
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _object(part: str) -> dict[str, Any]:
    """Parse one part as a JSON object, bounded in depth and number sizes."""
    try:
        text = _decode(part).decode("utf-8")
        _bound_depth(text)
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_integer,
            parse_constant=_no_constant,
        )
        # A lone surrogate (`"\ud800"`) parses but cannot be written out again, to a log line.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeError and json's errors are ValueErrors
        raise InvalidToken(MALFORMED) from None
    if not isinstance(value, dict):
        raise InvalidToken(MALFORMED)
    return value


def _bound_depth(text: str) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, counted in one pass over the text."""
    depth = 0
    for match in _NESTING.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError("nested too deeply")
        elif token in ("]", "}"):
            depth -= 1


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build an object, refusing a repeated key: two parsers could read two different tokens."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("repeated key")
    return found


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def _check_claims(claims: dict[str, Any]) -> None:
    """Refuse a claim the service reads whose type or range is not the one it means."""
    for name in TIMES:
        if name in claims and not _is_time(claims[name]):
            raise InvalidToken(f"The token's {name} is not a time in seconds.")
    for name in TEXTS:
        if name in claims and not isinstance(claims[name], str):
            raise InvalidToken(f"The token's {name} is not a string.")
    if "aud" in claims and not _is_texts(claims["aud"]):
        raise InvalidToken("The token's aud is not a string or a list of strings.")
    if "scope" in claims and not isinstance(claims["scope"], str):
        raise InvalidToken("The token's scope is not a string.")
    if "scp" in claims and not _is_texts(claims["scp"]):
        raise InvalidToken("The token's scp is not a string or a list of strings.")


def _is_time(value: Any) -> bool:
    # bool is an int in Python, not a number in JSON.
    if type(value) not in (int, float):
        return False
    return math.isfinite(value) and 0 <= value <= LATEST


def _is_texts(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
