"""Read QUERY_HISTORY after one GET made twice: the persisted result, and the request's tag."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from verify_sql import Row, Verdict, execute, failure

EMULATOR_HISTORY = (
    "not applicable on the emulator: fakesnow keeps no QUERY_HISTORY and ignores QUERY_TAG"
)
# QUERY_HISTORY shows a statement some seconds after it ran.
HISTORY_WAIT = 30.0
HISTORY = """SELECT query_id, query_text, query_tag, bytes_scanned, warehouse_size,
    execution_status FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER(RESULT_LIMIT => 1000))
    WHERE query_tag ILIKE ? ORDER BY start_time"""


def persisted_result(app: Flask, connect: Callable[[], Any], label: str, *, emulator: bool) -> Row:
    """GET one user twice; report whether Snowflake reused the first result for the second."""
    step = f"{label}: persisted result and QUERY_TAG"
    if emulator:
        return Row(step, Verdict.NOT_APPLICABLE, EMULATOR_HISTORY)
    marker = f"verify-{secrets.token_hex(4)}"
    try:
        client = app.test_client()
        created = client.post(
            "/api/v1/users", json={"email": f"{marker}@verify.example", "name": "H"}
        )
        path = created.headers["Location"]
        for n in (1, 2):
            client.get(path, headers={"X-Request-ID": f"{marker}-{n}"})
        admin = connect()
        try:
            rows = _history(admin, marker)
        finally:
            admin.close()
    except Exception as exc:
        return Row(step, Verdict.FAIL, failure(exc))
    return _judge(step, rows, marker, hybrid=label == "hybrid")


def _history(admin: Any, marker: str) -> list[dict[str, Any]]:
    """Wait until QUERY_HISTORY shows both GETs' statements; return them in order."""
    deadline = time.monotonic() + HISTORY_WAIT
    while True:
        rows = execute(admin, HISTORY, [f'%"request_id":"{marker}-%'])
        if len(rows) >= 2 or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def _judge(step: str, rows: list[dict[str, Any]], marker: str, *, hybrid: bool) -> Row:
    """PASS when each GET's tag names its request and their texts match; say if it was reused."""
    if len(rows) != 2:
        return Row(step, Verdict.FAIL, f"QUERY_HISTORY shows {len(rows)} statements, not 2")
    tags = [json.loads(row["query_tag"]).get("request_id") for row in rows]
    if tags != [f"{marker}-1", f"{marker}-2"] or rows[0]["query_text"] != rows[1]["query_text"]:
        return Row(
            step,
            Verdict.FAIL,
            f"tags name {tags}; texts equal: {rows[0]['query_text'] == rows[1]['query_text']}",
        )
    second = rows[1]
    # A reused result scans nothing and needs no warehouse; the profile says QUERY RESULT REUSE.
    reused = not second["bytes_scanned"] and second["warehouse_size"] is None
    expected = "never for a hybrid table" if hybrid else "expected on a standard table"
    return Row(
        step,
        Verdict.PASS,
        f"tag holds the request id; second GET reused the persisted result: "
        f"{'yes' if reused else 'no'} ({expected}); query {second['query_id']}",
    )
