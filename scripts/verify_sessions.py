"""Prove on two sessions that a create MERGE which waited for another's lock inserts nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from verify_sql import SAMPLE, Row, Verdict, execute, failure, run

from userservice.db.connector import is_duplicate_key
from userservice.db.queries import Query, affected
from userservice.emails import email_key

# Session A holds its transaction this long before committing: B must still be waiting by then.
HOLD_SECONDS = 3.0
B_LOCK_TIMEOUT = 120
TWO_SESSION_EMAIL = "Two.Sessions@Verify.Example"


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
        inserted_a = affected(run(a, insert, _create(first, TWO_SESSION_EMAIL)))
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
        ok = is_duplicate_key(b_did.error) and waited_enough and total == 1
        detail = f"{wait}; B refused: {failure(b_did.error)}; {total} row(s) with the address"
        return Row(step, Verdict.PASS if ok else Verdict.FAIL, detail)
    inserted_b = affected(b_did.rows or [])
    ok = waited_enough and inserted_b == 0 and total == 1
    detail = f"{wait}; after A's commit B inserted {inserted_b}; {total} row(s) with the address"
    return Row(step, Verdict.PASS if ok else Verdict.FAIL, detail)


def _create(user_id: int, email: str) -> dict[str, Any]:
    return {**SAMPLE, "id": user_id, "email": email, "email_key": email_key(email)}


def _matching(conn: Any, catalogue: Mapping[str, Query], email: str) -> int:
    """Count the users holding an address's email_key, as the list statement finds them."""
    rows = run(conn, catalogue["list_users"], {**SAMPLE, "email_key": email_key(email)})
    return int(rows[0]["total"]) if rows else 0
