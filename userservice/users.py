"""Apply the users rules: unique emails, not-found, and ETag preconditions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import db, queries
from .errors import EmailTaken, PreconditionFailed, UserNotFound

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
    with db.connection() as conn:
        rows = queries.run(
            conn,
            "list_users",
            email=email,
            offset=min((page - 1) * page_size, MAX_OFFSET),
            page_size=page_size,
        )
    total = int(rows[0]["total"])
    return [_user(row) for row in rows if row["id"] is not None], total


def create_user(*, email: str, name: str) -> User:
    """Create a user, or raise EmailTaken when another has the email (ignoring case)."""
    now = _now()
    with db.connection() as conn:
        user_id = int(queries.run(conn, "next_user_id")[0]["id"])
        inserted = queries.run(
            conn, "insert_user", id=user_id, email=email, name=name, now=_sql_time(now)
        )
    if not _affected(inserted):
        raise EmailTaken()
    return {
        "id": user_id,
        "email": email,
        "name": name,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def update_user(
    user_id: int, *, email: str | None = None, name: str | None = None, if_match: str | None
) -> User:
    """Change a user's email and/or name; None keeps the current value."""
    versions = None if if_match is None else _versions(if_match)
    with db.connection() as conn:
        updated = queries.run(
            conn,
            "update_user",
            id=user_id,
            email=email,
            name=name,
            now=_sql_time(_now()),
            versions=versions,
        )
        user = _one(queries.run(conn, "get_user", id=user_id))
    if not _affected(updated):
        if if_match is not None and not matches(if_match, user):
            raise PreconditionFailed()
        raise EmailTaken()
    return user


def delete_user(user_id: int, *, if_match: str | None) -> None:
    """Delete a user, or raise UserNotFound / PreconditionFailed."""
    versions = None if if_match is None else _versions(if_match)
    with db.connection() as conn:
        deleted = queries.run(conn, "delete_user", id=user_id, versions=versions)
        if not _affected(deleted):
            # Only a failed conditional delete pays this second statement, to tell 404 from 412.
            if versions is not None:
                _one(queries.run(conn, "get_user", id=user_id))
                raise PreconditionFailed()
            raise UserNotFound()


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


def _affected(rows: list[dict[str, Any]]) -> int:
    """Read the count from a DML result row (number of rows inserted/updated/deleted)."""
    return int(next(iter(rows[0].values()))) if rows else 0


def _now() -> datetime:
    return datetime.now(UTC)


def _sql_time(moment: datetime) -> str:
    """Format a UTC time for TO_TIMESTAMP_NTZ, which keeps the wall clock it is given."""
    return moment.replace(tzinfo=None).isoformat()
