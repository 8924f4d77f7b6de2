"""Run the SQL in sql/ on one session: each table kind's DDL, then every statement once."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from userservice.db import queries
from userservice.db.connector import describe
from userservice.db.queries import Query
from userservice.emails import email_key

HYBRID = re.compile(r"\bCREATE\s+(OR\s+REPLACE\s+)?HYBRID\s+TABLE\b", re.IGNORECASE)
# Values that suit every statement's named parameters; a new parameter name must be added
# here, so a statement the kit cannot run fails loudly instead of being skipped.
SAMPLE_ID = 9_000_000_001
SAMPLE_EMAIL = "Sample@Verify.Example"
SAMPLE: dict[str, Any] = {
    "id": SAMPLE_ID,
    "email": SAMPLE_EMAIL,
    "email_key": email_key(SAMPLE_EMAIL),
    "name": "Sample",
    "now": "2026-01-01T00:00:00",
    "version": 1,
    "versions": None,
    "offset": 0,
    "page_size": 20,
    "after": 0,
    "batch_size": 100,
    "keys": json.dumps([{"id": SAMPLE_ID, "key": email_key(SAMPLE_EMAIL)}]),
    "scope": "sub:verify",
    "idem_key": "verify-key",
    "fingerprint": "0" * 64,
    "claim": "00000000-0000-4000-8000-000000000000",
    "user_id": SAMPLE_ID,
    "expires_at": "2026-01-02T00:00:00",
    "held_by": None,
    "stale_before": "2025-12-31T23:59:45",
    "released_at": "1970-01-01T00:00:00",
    "status": 201,
    "response": json.dumps({"body": "{}", "content_type": "application/json"}),
}
# Writes before reads before changes before deletes, so each statement finds the sample row.
ORDER = {"MERGE": 1, "INSERT": 1, "SELECT": 2, "WITH": 2, "UPDATE": 3}
DELETES = 4
WRITES = ("MERGE", "INSERT", "UPDATE", "DELETE")


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


def ddl(kind: str, catalogue: Mapping[str, Query]) -> list[Query]:
    """Return the DDL for a table kind ("standard" or "hybrid"): sequences first, then tables."""
    creates = [q for q in catalogue.values() if verb(q) == "CREATE"]
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
