"""The verification kit (`make verify-snowflake`), run as a user runs it, on the emulator's server.

The script is pointed at `fakesnow -s` through the SNOWFLAKE_* settings, exactly as at an
account. Lock waits cannot be shown there, so those steps must say NOT APPLICABLE, never PASS.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from snowflake.connector.errors import ProgrammingError
from verify_sessions import Outcome, judge
from verify_sql import Row, Verdict

from bench.servers import ROOT, emulator_server_env
from userservice.db.connector import snowflake_connector
from userservice.settings import Settings

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "scripts" / "verify_snowflake.py"
PASS, FAIL, NA = "PASS", "FAIL", "NOT APPLICABLE"
ON_EMULATOR = "not applicable on the emulator: "
INSERTED = "number of rows inserted: 1, number of rows updated: 0"
UPDATED = "number of rows updated: 1, number of multi-joined rows updated: 0"
EXPECTED_ON_EMULATOR = [
    ("connect", PASS, "Snowflake 10.0.0 (the emulator's server)"),
    (
        "standard: DDL",
        PASS,
        "create_users_id_seq.sql, create_idempotency_keys_table.sql, create_users_table.sql",
    ),
    ("standard: sql/add_users_email_key.sql", PASS, "1 row"),
    ("standard: sql/claim_idempotency_key.sql", PASS, INSERTED),
    ("standard: sql/insert_user.sql", PASS, INSERTED),
    ("standard: sql/find_idempotency_key.sql", PASS, "1 row"),
    ("standard: sql/get_user.sql", PASS, "1 row"),
    ("standard: sql/get_user_for_update.sql", PASS, "1 row"),
    ("standard: sql/list_users.sql", PASS, "1 row"),
    ("standard: sql/next_user_id.sql", PASS, "1 row"),
    ("standard: sql/ping.sql", PASS, "1 row"),
    ("standard: sql/users_sharing_an_email_key.sql", PASS, "0 rows"),
    ("standard: sql/users_without_email_key.sql", PASS, "0 rows"),
    (
        "standard: sql/fill_email_keys.sql",
        PASS,
        "number of rows updated: 0, number of multi-joined rows updated: 0",
    ),
    ("standard: sql/release_idempotency_key.sql", PASS, UPDATED),
    ("standard: sql/store_idempotent_response.sql", PASS, UPDATED),
    ("standard: sql/update_user.sql", PASS, UPDATED),
    ("standard: sql/delete_expired_idempotency_keys.sql", PASS, "number of rows deleted: 0"),
    ("standard: sql/delete_user.sql", PASS, "number of rows updated: 0, number of rows deleted: 1"),
    ("standard: create", PASS, "created and read back, version 1"),
    ("standard: duplicate create refused", PASS, "the same address in capitals: EMAIL_TAKEN"),
    ("standard: update", PASS, "name changed, version 2"),
    (
        "standard: update to a taken address refused",
        PASS,
        "another user's address in lower case: EMAIL_TAKEN",
    ),
    (
        "standard: conditional update",
        PASS,
        'If-Match "v1": PRECONDITION_FAILED; If-Match "v2": applied, version 3',
    ),
    (
        "standard: delete",
        PASS,
        "deleted; read back: USER_NOT_FOUND; deleted again: USER_NOT_FOUND",
    ),
    (
        "standard: 20 racing creates",
        NA,
        ON_EMULATOR + "fakesnow's server runs concurrent MERGEs without Snowflake's table lock",
    ),
    (
        "standard: persisted result and QUERY_TAG",
        NA,
        ON_EMULATOR + "fakesnow keeps no QUERY_HISTORY and ignores QUERY_TAG",
    ),
    (
        "standard: two-session create",
        NA,
        ON_EMULATOR + "fakesnow's server does not make session B wait for A's lock",
    ),
    ("standard: drop scratch schema", PASS, "dropped with CASCADE"),
    ("hybrid: DDL", NA, ON_EMULATOR + "fakesnow's server cannot parse CREATE HYBRID TABLE"),
]


def account_env(port: int | None) -> dict[str, str]:
    """Only what a user would set: the account's settings (none when port is None)."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    if port is None:
        return env
    return emulator_server_env(port, **env)


def verify(cwd: Path, port: int | None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the kit from a folder with no .env, as `make verify-snowflake` runs it."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=account_env(port),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def verdicts(stdout: str) -> list[tuple[str, str, str]]:
    """Read the verdict table's rows (after its header and rule) from the kit's output."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")][1:]
    rows = []
    for line in lines:
        step, verdict, detail = (cell.strip() for cell in line[2:-2].split(" | ", 2))
        rows.append((step, verdict, detail))
    return rows


def scratch_schemas(port: int) -> list[str]:
    """List the kit's scratch schemas that still exist on the server."""
    settings = Settings.from_env(environ=account_env(port), env_file=None)
    conn = snowflake_connector(settings)()
    try:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT schema_name FROM information_schema.schemata"
            " WHERE schema_name LIKE 'USERSERVICE_VERIFY%'"
        )
        return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


def test_on_the_emulator_every_step_passes_or_says_not_applicable(module_emulator_server, tmp_path):
    result = verify(tmp_path, module_emulator_server.port)

    assert verdicts(result.stdout) == EXPECTED_ON_EMULATOR, result.stdout + result.stderr
    assert result.returncode == 0
    assert scratch_schemas(module_emulator_server.port) == []


def test_a_statement_that_fails_is_a_fail_row_and_exit_status_1(module_emulator_server, tmp_path):
    sql = tmp_path / "sql"
    shutil.copytree(ROOT / "sql", sql)
    text = (sql / "get_user.sql").read_text()
    broken = re.sub(r"\bSELECT\b", "SELECT nickname,", text, count=1)
    assert broken != text
    (sql / "get_user.sql").write_text(broken)

    result = verify(tmp_path, module_emulator_server.port, "--sql-dir", str(sql))

    rows = {step: (verdict, detail) for step, verdict, detail in verdicts(result.stdout)}
    verdict, detail = rows.pop("standard: sql/get_user.sql")
    assert verdict == FAIL
    assert detail.startswith("ProgrammingError 002043 (02000): Binder Error: "), detail
    assert "NICKNAME" in detail
    assert [verdict for verdict, _ in rows.values()].count(FAIL) == 0
    assert result.returncode == 1
    assert scratch_schemas(module_emulator_server.port) == []


def test_with_no_account_in_the_settings_it_says_so_and_exits_2(tmp_path):
    result = verify(tmp_path, None)

    assert result.returncode == 2
    assert result.stderr.strip() == "No Snowflake account in the settings: set SNOWFLAKE_ACCOUNT."
    assert result.stdout == ""


# The two-session proof needs Snowflake's locks, so it never runs on the emulator: its verdict
# is checked here on the outcomes a real account can give.
STEP = "standard: two-session create"


def test_two_sessions_pass_when_b_waited_and_then_inserted_nothing():
    b_did = Outcome(rows=[{"number of rows inserted": 0}], seconds=3.2)

    row = judge(STEP, 1, b_did, 1, waited=True, must_wait=True)

    detail = "B waited 3.2 s; after A's commit B inserted 0; 1 row(s) with the address"
    assert row == Row(STEP, Verdict.PASS, detail)


def test_two_sessions_fail_when_b_inserted_a_duplicate():
    b_did = Outcome(rows=[{"number of rows inserted": 1}], seconds=0.1)

    row = judge(STEP, 1, b_did, 2, waited=False, must_wait=True)

    detail = "B did not wait; after A's commit B inserted 1; 2 row(s) with the address"
    assert row == Row(STEP, Verdict.FAIL, detail)


def test_two_sessions_fail_on_a_standard_table_when_b_did_not_wait():
    b_did = Outcome(rows=[{"number of rows inserted": 0}], seconds=0.1)

    row = judge(STEP, 1, b_did, 1, waited=False, must_wait=True)

    assert row.verdict == Verdict.FAIL


def test_two_sessions_pass_on_a_hybrid_table_when_its_unique_key_refused_b():
    error = ProgrammingError(msg="Duplicate key value violates unique constraint", errno=200001)
    b_did = Outcome(error=error, seconds=0.2)

    row = judge("hybrid: two-session create", 1, b_did, 1, waited=False, must_wait=False)

    assert row.verdict == Verdict.PASS
    assert row.detail.startswith(
        "B did not wait; B refused: ProgrammingError 200001: Duplicate key"
    )
    assert row.detail.endswith("; 1 row(s) with the address")


def test_two_sessions_fail_when_b_failed_for_another_reason():
    error = ProgrammingError(msg="Object 'USERS' does not exist", errno=2003)
    b_did = Outcome(error=error, seconds=0.2)

    row = judge("hybrid: two-session create", 1, b_did, 1, waited=True, must_wait=False)

    assert row.verdict == Verdict.FAIL


def test_two_sessions_fail_when_a_did_not_insert():
    row = judge(
        STEP, 0, Outcome(rows=[{"number of rows inserted": 0}]), 0, waited=True, must_wait=True
    )

    assert row == Row(STEP, Verdict.FAIL, "A inserted 0, expected 1")
