"""Prove the SQL in sql/ on one session or two: DDL, every statement once, a lock-wait MERGE."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from userservice import queries
from userservice.db import describe
from userservice.queries import Query

SQL_DIR = queries.SQL_DIR
HYBRID = re.compile(r"\bCREATE\s+(OR\s+REPLACE\s+)?HYBRID\s+TABLE\b", re.IGNORECASE)
# Values that suit every statement's named parameters; a new parameter name must be added
# here, so a statement the kit cannot run fails loudly instead of being skipped.
SAMPLE_ID = 9_000_000_001
SAMPLE: dict[str, Any] = {
    "id": SAMPLE_ID,
    "email": "Sample@Verify.Example",
    "email_key": "sample@verify.example",
    "name": "Sample",
    "now": "2026-01-01T00:00:00",
    "version": 1,
    "versions": None,
    "offset": 0,
    "page_size": 20,
    "after": 0,
    "batch_size": 100,
    "keys": json.dumps([{"id": SAMPLE_ID, "key": "sample@verify.example"}]),
}
# Writes before reads before changes before deletes, so each statement finds the sample row.
ORDER = {"MERGE": 1, "INSERT": 1, "SELECT": 2, "WITH": 2, "UPDATE": 3}
DELETES = 4
WRITES = ("MERGE", "INSERT", "UPDATE", "DELETE")
# Session A holds its transaction this long before committing: B must still be waiting by then.
HOLD_SECONDS = 3.0
B_LOCK_TIMEOUT = 120
TWO_SESSION_EMAIL = "Two.Sessions@Verify.Example"


class Verdict(StrEnum):
    """What one step showed."""

    PASS = "PASS"  # noqa: S105 (a verdict, not a password)
    FAIL = "FAIL"
    NOT_APPLICABLE = "NOT APPLICABLE"


@dataclass(frozen=True)
class Row:
    """One line of the verdict table."""

    step: str
    verdict: Verdict
    detail: str


def failure(exc: BaseException) -> str:
    """Describe an error for the operator: type, Snowflake codes and the message's first line."""
    first = next(iter(str(exc).strip().splitlines()), "")
    # The connector's message repeats the codes that describe() already gives.
    first = re.sub(r"^\d{6}( \(\w{5}\))?: ", "", first)
    return f"{describe(exc)}: {first[:160]}" if first else describe(exc)


def verb(query: Query) -> str:
    """Return a statement's first keyword (CREATE, SELECT, MERGE, ...)."""
    words = _code(query).split()
    return words[0].upper() if words else ""


def rank(query: Query) -> int:
    """Place a statement: anything that deletes (a DELETE, a MERGE ... THEN DELETE) comes last."""
    if re.search(r"\bDELETE\b", _code(query), re.IGNORECASE):
        return DELETES
    return ORDER.get(verb(query), 0)


def _code(query: Query) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", query.sql, flags=re.DOTALL)


def ddl(kind: str, directory: Path = SQL_DIR) -> list[Query]:
    """Return the DDL for a table kind ("standard" or "hybrid"): sequences first, then tables."""
    found = [queries.parse(path) for path in sorted(directory.glob("*.sql"))]
    creates = [q for q in found if verb(q) == "CREATE"]
    tables = [q for q in creates if re.search(r"\bTABLE\b", q.sql, re.IGNORECASE)]
    chosen = [q for q in tables if bool(HYBRID.search(q.sql)) == (kind == "hybrid")]
    others = [q for q in creates if q not in tables]
    return [*others, *chosen] if chosen else []


def dml(catalogue: Mapping[str, Query]) -> list[Query]:
    """Return every statement that is not DDL, in an order where each finds the sample row."""
    statements = [q for q in catalogue.values() if verb(q) != "CREATE"]
    return sorted(statements, key=lambda q: (rank(q), q.name))


def values(query: Query, known: Mapping[str, Any]) -> list[Any]:
    """Bind a statement's parameters from `known`, or raise QueryError naming what is missing."""
    missing = sorted(set(query.params) - set(known))
    if missing:
        raise queries.QueryError(f"{query.path.name}: no sample value for {', '.join(missing)}")
    return query.bind({name: known[name] for name in set(query.params)})


def execute(conn: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Run one statement on a connection and return its rows as dicts, as queries.run does."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params or [])
        columns = [column[0].lower() for column in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()


def run(conn: Any, query: Query, known: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a catalogue statement with its parameters bound on the server, as queries.run does."""
    return execute(conn, query.sql, values(query, known))


def apply_ddl(conn: Any, statements: list[Query], label: str) -> Row:
    """Run the DDL of one table kind."""
    try:
        for query in statements:
            run(conn, query, {})
    except Exception as exc:
        return Row(f"{label}: DDL", Verdict.FAIL, failure(exc))
    return Row(f"{label}: DDL", Verdict.PASS, ", ".join(q.path.name for q in statements))


def every_statement(conn: Any, catalogue: Mapping[str, Query], label: str) -> list[Row]:
    """Run each DML file once with the sample values; one row per file."""
    rows = []
    for query in dml(catalogue):
        step = f"{label}: sql/{query.path.name}"
        try:
            found = run(conn, query, SAMPLE)
        except Exception as exc:
            rows.append(Row(step, Verdict.FAIL, failure(exc)))
            continue
        rows.append(Row(step, Verdict.PASS, summary(query, found)))
    return rows


def summary(query: Query, found: list[dict[str, Any]]) -> str:
    """Say what a statement returned: a write's counts, or how many rows a read gave."""
    if verb(query) in WRITES and len(found) == 1:
        return ", ".join(f"{column}: {value}" for column, value in found[0].items())
    return f"{len(found)} row{'' if len(found) == 1 else 's'}"


@dataclass
class Outcome:
    """What a statement run in the background did: its rows or its error, and how long it took."""

    rows: list[dict[str, Any]] | None = None
    error: Exception | None = None
    seconds: float = 0.0


def in_background(
    statement: Callable[[], list[dict[str, Any]]],
) -> tuple[threading.Thread, Outcome]:
    """Start a statement on a thread of its own; return the thread and its outcome, filled later."""
    outcome = Outcome()

    def target() -> None:
        started = time.monotonic()
        try:
            outcome.rows = statement()
        except Exception as exc:
            outcome.error = exc
        outcome.seconds = time.monotonic() - started

    thread = threading.Thread(target=target, name="session-b", daemon=True)
    thread.start()
    return thread, outcome


def two_sessions(connect: Callable[[], Any], catalogue: Mapping[str, Query], label: str) -> Row:
    """Session A begins and runs the create MERGE; B runs it too and waits; A commits; B adds 0."""
    step = f"{label}: two-session create"
    insert = catalogue["insert_user"]
    a, b = connect(), connect()
    try:
        # B must outwait A's transaction: the service's own lock and statement timeouts are
        # seconds, chosen to answer a request in time, not to show a wait.
        execute(b, f"ALTER SESSION SET LOCK_TIMEOUT = {B_LOCK_TIMEOUT}")
        execute(b, f"ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = {B_LOCK_TIMEOUT + 30}")
        first, second = (int(run(a, catalogue["next_user_id"], {})[0]["id"]) for _ in range(2))
        execute(a, "BEGIN")
        inserted_a = _count(run(a, insert, _create(first, TWO_SESSION_EMAIL)))
        thread, b_did = in_background(
            lambda: run(b, insert, _create(second, TWO_SESSION_EMAIL.lower()))
        )
        thread.join(HOLD_SECONDS)
        waited = thread.is_alive()
        execute(a, "COMMIT")
        thread.join(B_LOCK_TIMEOUT + 30)
        total = _matching(a, catalogue, TWO_SESSION_EMAIL)
    except Exception as exc:
        return Row(step, Verdict.FAIL, failure(exc))
    finally:
        a.close()
        b.close()
    # Only a standard table must make B wait: a hybrid table may refuse B by its UNIQUE key.
    return judge(step, inserted_a, b_did, total, waited=waited, must_wait=label == "standard")


def judge(
    step: str, inserted_a: int, b_did: Outcome, total: int, *, waited: bool, must_wait: bool
) -> Row:
    """Decide the two-session step: A inserted 1, B none (or was refused), 1 row in the end."""
    wait = f"B waited {b_did.seconds:.1f} s" if waited else "B did not wait"
    if inserted_a != 1:
        return Row(step, Verdict.FAIL, f"A inserted {inserted_a}, expected 1")
    waited_enough = waited or not must_wait
    if b_did.error is not None:
        refused = re.search(r"duplicate|unique", str(b_did.error), re.IGNORECASE)
        ok = bool(refused) and waited_enough and total == 1
        detail = f"{wait}; B refused: {failure(b_did.error)}; {total} row(s) with the address"
        return Row(step, Verdict.PASS if ok else Verdict.FAIL, detail)
    inserted_b = _count(b_did.rows or [])
    ok = waited_enough and inserted_b == 0 and total == 1
    detail = f"{wait}; after A's commit B inserted {inserted_b}; {total} row(s) with the address"
    return Row(step, Verdict.PASS if ok else Verdict.FAIL, detail)


def _create(user_id: int, email: str) -> dict[str, Any]:
    return {**SAMPLE, "id": user_id, "email": email, "name": "Two Sessions"}


def _count(rows: list[dict[str, Any]]) -> int:
    """Read the count from a DML result row (number of rows inserted/updated/deleted)."""
    return int(next(iter(rows[0].values()))) if rows else 0


def _matching(conn: Any, catalogue: Mapping[str, Query], email: str) -> int:
    """Count the users the list statement finds for an address (its own case-insensitive rule)."""
    rows = run(conn, catalogue["list_users"], {**SAMPLE, "email": email})
    return int(rows[0]["total"]) if rows else 0
