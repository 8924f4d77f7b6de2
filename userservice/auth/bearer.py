"""Guard the users routes with bearer tokens (RFC 6750): check calls, name callers, audit writes.

The check runs as the users blueprint's first hook, so a refused call costs no database work.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from flask import Request, Response, current_app, g, request

from ..errors import InsufficientScope, Unauthenticated
from ..proxies import unproxied
from .caller import Caller
from .setup import EXTENSION_KEY

if TYPE_CHECKING:
    from .verifier import Verifier

# RFC 6750's b64token; a JWT is three base64url parts joined by dots.
BEARER = re.compile(r"bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
READ_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
audit_log = logging.getLogger("userservice.audit")


def authenticate() -> None:
    """Refuse a users call without a valid token that grants the scope its method needs."""
    app = unproxied(current_app)
    verifier: Verifier | None = app.extensions.get(EXTENSION_KEY)
    served = unproxied(request)
    # A preflight never gets here (cors.py answers it); a bare OPTIONS lists methods only.
    if verifier is None or served.method == "OPTIONS":
        return
    g.caller = caller = verifier.verify(_bearer_token(served))
    settings = app.config["SETTINGS"]
    needed = (
        settings.auth_read_scope if served.method in READ_METHODS else settings.auth_write_scope
    )
    if needed not in caller.scopes:
        raise InsufficientScope(needed)


def _bearer_token(served: Request) -> str:
    """Return the token of the one `Authorization: Bearer` header, or raise Unauthenticated."""
    if "access_token" in served.args:
        raise Unauthenticated("Send the token in the Authorization header, never in the URL.")
    value = served.headers.get("Authorization", "").strip()
    if not value:
        raise Unauthenticated()
    # Servers and front doors join repeated headers with a comma, which no b64token holds.
    if "," in value:
        raise Unauthenticated("Send one Authorization header with one credential.")
    match = BEARER.fullmatch(value)
    if match is None:
        raise Unauthenticated("Send the token as Authorization: Bearer <token>.")
    return match.group(1)


def caller_fields(state: Any) -> dict[str, str]:
    """Return the verified subject and client in the request's `g`, for its access line."""
    caller: Caller | None = state.get("caller")
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
                # The stored answer to an earlier request with its Idempotency-Key.
                **({"idempotent_replay": True} if g.get("idempotent_replay") else {}),
            },
        )
    return response
