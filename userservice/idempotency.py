"""Answer a retried POST /users as its first attempt was answered: the Idempotency-Key header.

draft-ietf-httpapi-idempotency-key-header-07. A key belongs to the caller (its token subject):
the first request with it claims it (find, then claim: two statements) and stores its answer
(one more); the same key with the same body gets that answer back from the first statement
alone; with another body, 422; while the first is unanswered, 409.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, current_app, g, request

from . import db
from .auth import Caller
from .db import budget, is_duplicate_key, queries
from .errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyMalformed,
    IdempotencyKeyRepeated,
    IdempotencyKeyReused,
)
from .proxies import unproxied
from .schemas import IDEMPOTENCY_KEY_PATTERN
from .settings import Settings
from .users import sql_time

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
# A comma outside a quoted key: two headers joined into one value (gunicorn, API Gateway's
# HTTP API and the adapter's multi-value headers all join with a comma), or a list in one.
LIST = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^",])*,')
# A released claim (the create failed with a 5xx) is dated back to this, long past any lease.
RELEASED_AT = "1970-01-01T00:00:00"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A key this request holds, and the user id and creation time its create must write."""

    scope: str
    key: str
    claim: str
    user_id: int
    created_at: datetime


def parse_key(value: str | None) -> str | None:
    """Return the key a header value carries (None when absent), or raise a 400."""
    if value is None:
        return None
    if LIST.match(value):
        raise IdempotencyKeyRepeated()
    match = KEY.fullmatch(value.strip())
    if match is None:
        raise IdempotencyKeyMalformed()
    quoted, bare = match.groups()
    return bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)


def begin(payload: Mapping[str, Any]) -> Claim | Response | None:
    """Claim the request's key, or return the stored answer; None when it sends no key."""
    key = parse_key(request.headers.get(HEADER))
    if key is None:
        return None
    settings: Settings = current_app.config["SETTINGS"]
    scope, fingerprint, now = _scope(), _fingerprint(payload), datetime.now(UTC)
    with db.connection() as conn:
        [row] = queries.run(conn, "find_idempotency_key", scope=scope, idem_key=key)
        found = _decide(row, fingerprint, now, settings)
        if isinstance(found, Response):
            return found
        user_id, created_at, held_by = found
        claim = Claim(scope, key, str(uuid.uuid4()), user_id, created_at)
        try:
            [counts] = queries.run(
                conn,
                "claim_idempotency_key",
                scope=scope,
                idem_key=key,
                fingerprint=fingerprint,
                claim=claim.claim,
                user_id=user_id,
                now=sql_time(now),
                expires_at=sql_time(now + timedelta(seconds=settings.idempotency_key_ttl_seconds)),
                held_by=held_by,
                stale_before=sql_time(now - timedelta(seconds=settings.idempotency_lease_seconds)),
            )
        except Exception as exc:
            if is_duplicate_key(exc):  # a hybrid table: another request inserted the claim first
                raise IdempotencyKeyInFlight() from exc
            raise
    if sum(int(count) for count in counts.values()) != 1:
        raise IdempotencyKeyInFlight()  # another request claimed it since the first statement
    g.idempotency = claim
    return claim


def finish(response: Response) -> Response:
    """Store the answer under the request's key; after a 5xx, release the key instead."""
    claim: Claim | None = g.pop("idempotency", None)
    if claim is None:
        return response
    where = {"scope": claim.scope, "idem_key": claim.key, "claim": claim.claim}
    if budget.room(unproxied(g)) <= 0:
        # The database stalled the create: a statement now would answer past the budget. The
        # claim stays unanswered; a retry takes it over once the lease passes (as after a kill).
        log.warning(
            "left an Idempotency-Key claimed: no time left in the request's budget to %s it",
            "release" if response.status_code >= 500 else "store the answer under",
        )
        return response
    try:
        with db.connection() as conn:
            if response.status_code >= 500:
                queries.run(conn, "release_idempotency_key", **where, released_at=RELEASED_AT)
            else:
                queries.run(
                    conn,
                    "store_idempotent_response",
                    **where,
                    status=response.status_code,
                    response=_stored(response),
                )
    except Exception:
        # The answer itself stands. The claim stays unanswered, so a retry waits out the lease
        # and then takes the key over with the same user id: it writes (or finds) this user.
        log.warning("could not store the answer under an Idempotency-Key", exc_info=True)
    return response


def _decide(
    row: Mapping[str, Any], fingerprint: str, now: datetime, settings: Settings
) -> Response | tuple[int, datetime, str | None]:
    """Return the stored answer, or the user id, time and abandoned claim a claim takes on."""
    naive_now = now.replace(tzinfo=None)
    if row["fingerprint"] is None or row["expires_at"] <= naive_now:
        return int(row["next_id"]), now, None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused()
    if row["status"] is not None:
        return _replay(int(row["status"]), json.loads(row["response"]))
    if row["claimed_at"] > naive_now - timedelta(seconds=settings.idempotency_lease_seconds):
        raise IdempotencyKeyInFlight()
    return int(row["user_id"]), row["created_at"].replace(tzinfo=UTC), str(row["claim"])


def _replay(status: int, stored: Mapping[str, str]) -> Response:
    """Rebuild the first answer: its status, body, Location and ETag, marked as a replay."""
    g.idempotent_replay = True  # its access and audit lines say so
    headers = {name: stored[name.lower()] for name in ("Location", "ETag") if stored[name.lower()]}
    return current_app.response_class(
        stored["body"],
        status=status,
        content_type=stored["content_type"],
        headers={**headers, REPLAYED: "true"},
    )


def _stored(response: Response) -> str:
    """Return what a replay needs of an answer, as JSON."""
    return json.dumps(
        {
            "body": response.get_data(as_text=True),
            "content_type": response.content_type,
            "location": response.headers.get("Location"),
            "etag": response.headers.get("ETag"),
        }
    )


def _scope() -> str:
    """Name whose keys these are: the token's subject (else its client), or "" with no tokens."""
    caller: Caller | None = g.get("caller")
    if caller is None:
        return ""  # authentication off: every caller shares one scope (development)
    return f"sub:{caller.subject}" if caller.subject else f"client:{caller.client or ''}"


def _fingerprint(payload: Mapping[str, Any]) -> str:
    """Hash the validated body, so that key order and white space do not make it another."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
