"""A null Snowflake connection: cursors answer each statement of sql/ with canned rows.

Handed to the pool as `connect`, exactly as the Snowflake connector's is, it costs nothing
but the optional `latency` (a sleep per statement, standing for network time; no lock is
held while sleeping), so a benchmark measures the stack rather than the database.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from userservice.db import queries

USERS_IN_TABLE = 1000
CREATED = datetime(2025, 1, 1, 12, 0, 0)
USER_COLUMNS = ("ID", "EMAIL", "NAME", "CREATED_AT", "UPDATED_AT", "VERSION")
# Snowflake names a DML result's columns after what it counted.
DML_ANSWERS = {
    "insert_user": (("number of rows inserted",), [(1,)]),
    "update_user": (
        ("number of rows updated", "number of multi-joined rows updated"),
        [(1, 0)],
    ),
    "delete_user": (("number of rows updated", "number of rows deleted"), [(0, 1)]),
    "ping": (("OK",), [(1,)]),
    "create_users_id_seq": (("status",), [("USERS_ID_SEQ successfully created.",)]),
    "create_users_table": (("status",), [("Table USERS successfully created.",)]),
    "create_users_hybrid_table": (("status",), [("Table USERS successfully created.",)]),
}
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def connect(latency: float = 0.0) -> Callable[[], NullConnection]:
    """Return a connect function whose connections sleep `latency` seconds per statement."""
    catalogue = queries.load()
    ids = itertools.count(USERS_IN_TABLE + 1)
    return partial(NullConnection, catalogue, ids, latency)


class NullConnection:
    """A DB-API connection whose cursors recognise the statements of sql/."""

    def __init__(self, catalogue: dict[str, queries.Query], ids: Any, latency: float) -> None:
        self._catalogue = catalogue
        self._ids = ids
        self.latency = latency
        self.closed = False

    def cursor(self) -> NullCursor:
        """Open a cursor."""
        return NullCursor(self)

    def recognise(self, sql: str) -> queries.Query:
        """Return the sql/ statement that `sql` was sent from, whatever comment follows it."""
        for query in self._catalogue.values():
            if sql.startswith(query.sql):
                return query
        bare = _normalise(sql)
        for query in self._catalogue.values():
            if bare.startswith(_normalise(query.sql)):
                return query
        raise LookupError(f"the null connection knows no statement like {sql[:80]!r}")

    def next_id(self) -> int:
        """Take the next id, as the sequence would."""
        return next(self._ids)

    def commit(self) -> None:
        """Do nothing: there is no transaction."""

    def rollback(self) -> None:
        """Do nothing: there is no transaction (QueuePool rolls back on return)."""

    def close(self) -> None:
        """Mark the connection closed."""
        self.closed = True

    def is_closed(self) -> bool:
        """Tell whether close() was called, as the Snowflake connector does."""
        return self.closed


class NullCursor:
    """A cursor that answers the statement it was given with plausible canned rows."""

    def __init__(self, connection: NullConnection) -> None:
        self._connection = connection
        self.description: list[tuple[Any, ...]] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Any = (), **_options: Any) -> NullCursor:
        """Answer one statement, after the connection's latency (its QUERY_TAG is ignored)."""
        query = self._connection.recognise(sql)
        values = dict(zip(query.params, params or (), strict=True))
        columns, self._rows = self._answer(query.name, values)
        self.description = [(name, 0, None, None, None, None, True) for name in columns]
        if self._connection.latency:
            time.sleep(self._connection.latency)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Return the rows of the last statement."""
        rows, self._rows = self._rows, []
        return rows

    def close(self) -> None:
        """Forget the last result."""
        self._rows = []

    def _answer(self, name: str, values: dict[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
        """Return the column names and rows Snowflake would for statement `name`."""
        if name == "get_user":
            return USER_COLUMNS, [_user_row(int(values["id"]))]
        if name == "get_user_for_update":
            row = _user_row(int(values["id"]))
            return (*USER_COLUMNS, "EMAIL_KEY", "TAKEN"), [(*row, row[1], False)]
        if name == "next_user_id":
            return ("ID",), [(self._connection.next_id(),)]
        if name == "list_users":
            return _list_page(values)
        columns, rows = DML_ANSWERS[name]
        return columns, list(rows)


def _user_row(user_id: int) -> tuple[Any, ...]:
    return (user_id, f"user{user_id}@example.com", f"User {user_id}", CREATED, CREATED, 1)


def _list_page(values: dict[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
    """Answer list_users: the total on every row, then the page (one NULL row when empty)."""
    total = 1 if values["email_key"] is not None else USERS_IN_TABLE
    first = int(values["offset"]) + 1
    last = min(total, int(values["offset"]) + int(values["page_size"]))
    rows = [(total, *_user_row(i)) for i in range(first, last + 1)]
    return ("TOTAL", *USER_COLUMNS), rows or [(total, *(None,) * len(USER_COLUMNS))]


def _normalise(sql: str) -> str:
    return " ".join(_COMMENTS.sub(" ", sql).split())
