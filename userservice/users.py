"""Apply the users rules: unique emails, not-found, and ETag preconditions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from . import db
from .db import is_duplicate_key, queries
from .emails import email_key
from .errors import EmailTaken, PreconditionFailed, UserNotFound, WriteConflict

User = dict[str, Any]
ANY = "*"
# Ids come from a 64-bit sequence: a larger number names no user, and a long enough one
# fails to bind (a 500), so the route refuses it before it reaches SQL.
MAX_ID = 2**63 - 1
# More rows than any table holds: a page past it is empty, and the offset stays 64-bit.
MAX_OFFSET = 2**62


def etag(user: User) -> str:
    """Return the user's strong entity tag."""
    return f'"v{user["version"]}"'


def matches(header: str, user: User, *, weak: bool = False) -> bool:
    """Tell whether an If-Match (strong) or If-None-Match (weak) value names the user."""
    versions = _versions(header, weak=weak)
    return versions is None or str(user["version"]) in versions.split(",")


def get_user(user_id: int) -> User:
    """Return one user, or raise UserNotFound."""
    with db.connection() as conn:
        return _one(queries.run(conn, "get_user", id=user_id))


def list_users(*, email: str | None, page: int, page_size: int) -> tuple[list[User], int]:
    """Return one page of users in id order and the number of users that match."""
    try:
        key = None if email is None else email_key(email)
    except ValueError:
        return [], 0  # no user holds an address that has no key
    with db.connection() as conn:
        rows = queries.run(
            conn,
            "list_users",
            email_key=key,
            offset=min((page - 1) * page_size, MAX_OFFSET),
            page_size=page_size,
        )
    total = int(rows[0]["total"])
    return [_user(row) for row in rows if row["id"] is not None], total


def create_user(
    *, email: str, name: str, user_id: int | None = None, now: datetime | None = None
) -> User:
    """Create a user, or raise EmailTaken when another holds the same address in any spelling.

    An Idempotency-Key's claim brings the id and time to write: a user already there with that
    id is the one an earlier attempt with the key wrote, and is answered as created.
    """
    now = now or _now()
    with db.connection() as conn, _refused_key():
        if user_id is None:
            user_id = int(queries.run(conn, "next_user_id")[0]["id"])
        [counts] = queries.run(
            conn,
            "insert_user",
            id=user_id,
            email=email,
            email_key=email_key(email),
            name=name,
            now=sql_time(now),
        )
    if not int(counts["number of rows inserted"]) + int(counts["number of rows updated"]):
        raise EmailTaken()
    written = {"email": email, "name": name, "created_at": now, "updated_at": now}
    return {"id": user_id, **written, "version": 1}


def update_user(
    user_id: int,
    *,
    email: str | None = None,
    name: str | None = None,
    if_match: str | None,
    if_none_match: str | None = None,
) -> User:
    """Change a user's email and/or name (None keeps it); return exactly what the write stored.

    404, 412 and 409 come from the first statement's read. The write is conditioned on the
    version read, so a write that lands is known exactly; one that lost a race to another
    write answers 412 when a precondition was sent (it held for a version now gone), else 503.
    """
    new_key = None if email is None else email_key(email)
    with db.connection() as conn, _refused_key():
        read = queries.run(conn, "get_user_for_update", id=user_id, email_key=new_key)
        current = _one(read)
        _check_preconditions(current, if_match, if_none_match)
        if read[0]["taken"]:
            raise EmailTaken()
        user = _changed(current, email=email, name=name)
        key = read[0]["email_key"] if new_key is None else new_key
        if not _write(conn, user, key, read_version=current["version"]):
            conditional = if_match is not None or if_none_match is not None
            raise PreconditionFailed() if conditional else WriteConflict()
    return user


def _check_preconditions(user: User, if_match: str | None, if_none_match: str | None) -> None:
    """Raise PreconditionFailed unless If-Match (strong) and If-None-Match (weak) let a write on."""
    if if_match is not None and not matches(if_match, user):
        raise PreconditionFailed()
    if if_none_match is not None and matches(if_none_match, user, weak=True):
        raise PreconditionFailed("The user is at a version that If-None-Match names (or *).")


def delete_user(user_id: int, *, if_match: str | None) -> None:
    """Delete a user, or raise UserNotFound / PreconditionFailed, in one statement."""
    versions = None if if_match is None else _versions(if_match)
    with db.connection() as conn:
        [counts] = queries.run(conn, "delete_user", id=user_id, versions=versions)
    if int(counts["number of rows deleted"]):
        return
    if int(counts["number of rows updated"]):
        raise PreconditionFailed()
    raise UserNotFound()


@contextmanager
def _refused_key() -> Iterator[None]:
    """Answer 409 when the table itself refuses a second holder of an email_key (hybrid)."""
    try:
        yield
    except Exception as exc:
        if is_duplicate_key(exc):
            raise EmailTaken() from exc
        raise


def _write(conn: Any, user: User, key: str | None, *, read_version: int) -> bool:
    """Store the user if it is still at the version read; tell whether it was."""
    updated = queries.run(
        conn,
        "update_user",
        id=user["id"],
        email=user["email"],
        email_key=key,
        name=user["name"],
        now=sql_time(user["updated_at"]),
        version=read_version,
    )
    return bool(queries.affected(updated))


def _changed(current: User, *, email: str | None, name: str | None) -> User:
    """Return the user as the write will leave it: one version on, updated now."""
    return {
        **current,
        "email": current["email"] if email is None else email,
        "name": current["name"] if name is None else name,
        "updated_at": _now(),
        "version": current["version"] + 1,
    }


def _versions(header: str, *, weak: bool = False) -> str | None:
    """Turn an entity-tag list into comma-separated versions; None for `*`."""
    tags = [tag.strip() for tag in header.split(",")]
    if ANY in tags:
        return None
    if weak:
        tags = [tag.removeprefix("W/") for tag in tags]
    found = [tag[2:-1] for tag in tags if tag.startswith('"v') and tag.endswith('"')]
    return ",".join(v for v in found if v.isdigit() and len(v) <= 19)


def _one(rows: list[dict[str, Any]]) -> User:
    if not rows:
        raise UserNotFound()
    return _user(rows[0])


def _user(row: dict[str, Any]) -> User:
    return {
        "id": int(row["id"]),
        "email": row["email"],
        "name": row["name"],
        "created_at": row["created_at"].replace(tzinfo=UTC),
        "updated_at": row["updated_at"].replace(tzinfo=UTC),
        "version": int(row["version"]),
    }


def _now() -> datetime:
    return datetime.now(UTC)


def sql_time(moment: datetime) -> str:
    """Format a UTC time for TO_TIMESTAMP_NTZ, which keeps the wall clock it is given."""
    return moment.replace(tzinfo=None).isoformat()
