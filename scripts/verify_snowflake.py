"""Prove the SQL and the write rules on the Snowflake account in the settings.

    make verify-snowflake        (or: PYTHONPATH=. python scripts/verify_snowflake.py)

For each table kind (standard, hybrid) it creates a scratch schema, runs the kind's DDL, every
statement in sql/ once, the contract's write paths, 20 racing creates of one address and the
two-session proof, then drops the schema. It prints a verdict table and exits 1 if any step
FAILs, 2 if the settings name no account. The emulator's server (`fakesnow -s`, reached with
SNOWFLAKE_ACCOUNT=fakesnow) cannot show lock waits: those steps are NOT APPLICABLE there.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import verify_history
import verify_sessions
import verify_sql
from verify_service import RACERS, race, write_paths
from verify_sql import Row, Verdict, execute, failure

from userservice import create_app, db
from userservice.db import queries
from userservice.db.connector import snowflake_connector
from userservice.settings import Settings, SettingsError

EMULATOR_ACCOUNT = "fakesnow"
KINDS = ("standard", "hybrid")
ON_EMULATOR = "not applicable on the emulator: "
EMULATOR_HYBRID = ON_EMULATOR + "fakesnow's server cannot parse CREATE HYBRID TABLE"
EMULATOR_TWO_SESSIONS = ON_EMULATOR + "fakesnow's server does not make session B wait for A's lock"
PROBE = "CREATE HYBRID TABLE verify_probe (id NUMBER(19, 0) NOT NULL PRIMARY KEY)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every step, print the verdict table, and return the exit status."""
    catalogue, settings = sql_catalogue(argv), account_settings()
    if catalogue is None or settings is None:
        return 2
    emulator = settings.snowflake_account.lower() == EMULATOR_ACCOUNT
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
    prefix = f"USERSERVICE_VERIFY_{stamp}_{secrets.token_hex(3).upper()}"
    try:
        admin = snowflake_connector(settings)()
        version = execute(admin, "SELECT CURRENT_VERSION() AS version")[0]["version"]
    except Exception as exc:
        return report([Row("connect", Verdict.FAIL, failure(exc))])
    where = " (the emulator's server)" if emulator else ""
    rows = [Row("connect", Verdict.PASS, f"Snowflake {version}{where}")]
    try:
        for kind in KINDS:
            schema = f"{prefix}_{kind.upper()}"
            rows += verify_kind(admin, settings, kind, schema, catalogue, emulator=emulator)
    finally:
        admin.close()
    print(f"Account {settings.snowflake_account}, scratch schemas {prefix}_*")
    return report(rows)


def sql_catalogue(argv: Sequence[str] | None) -> dict[str, queries.Query] | None:
    """Load the SQL files (sql/, or --sql-dir); say why and return None when one is malformed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sql-dir", type=Path, default=queries.SQL_DIR, help="default: sql/")
    try:
        return queries.load(parser.parse_args(argv).sql_dir)
    except queries.QueryError as exc:
        print(exc, file=sys.stderr)
        return None


def account_settings() -> Settings | None:
    """Read the settings; say why and return None when they name no usable account."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"Settings: {exc}", file=sys.stderr)
        return None
    if settings.use_emulator:
        print("No Snowflake account in the settings: set SNOWFLAKE_ACCOUNT.", file=sys.stderr)
        return None
    return settings


def verify_kind(
    admin: Any,
    settings: Settings,
    kind: str,
    schema: str,
    catalogue: dict[str, queries.Query],
    *,
    emulator: bool,
) -> list[Row]:
    """Run one table kind's steps inside a scratch schema that is dropped afterwards."""
    statements = verify_sql.ddl(kind, catalogue)
    if not statements:
        verdict = Verdict.NOT_APPLICABLE if kind == "hybrid" else Verdict.FAIL
        return [Row(f"{kind}: DDL", verdict, f"no {kind} table DDL in sql/")]
    if kind == "hybrid" and emulator:
        return [Row(f"{kind}: DDL", Verdict.NOT_APPLICABLE, EMULATOR_HYBRID)]
    try:
        execute(admin, f"CREATE SCHEMA {schema}")
    except Exception as exc:
        return [Row(f"{kind}: scratch schema", Verdict.FAIL, failure(exc))]
    scratch = dataclasses.replace(
        settings,
        snowflake_schema=schema,
        db_pool_min_connections=RACERS,
        db_pool_max_connections=RACERS,
        log_level="WARNING",
        log_format="text",
    )
    rows: list[Row] = []
    try:
        # One at a time, so the rows before an unexpected error are kept.
        for row in steps(scratch, kind, statements, catalogue, emulator=emulator):
            rows.append(row)
    except Exception as exc:
        rows.append(Row(f"{kind}: unexpected error", Verdict.FAIL, failure(exc)))
    finally:
        rows.append(drop(admin, schema, kind))
    return rows


def steps(
    settings: Settings,
    kind: str,
    statements: list[queries.Query],
    catalogue: dict[str, queries.Query],
    *,
    emulator: bool,
) -> Iterator[Row]:
    """Yield the rows of the DDL, every statement, the write paths, the race and two sessions."""
    connect = snowflake_connector(settings)
    conn = connect()
    try:
        if kind == "hybrid" and (missing := hybrid_missing(conn)):
            yield Row(f"{kind}: DDL", Verdict.NOT_APPLICABLE, missing)
            return
        applied = verify_sql.apply_ddl(conn, statements, kind)
        yield applied
        if applied.verdict is Verdict.FAIL:
            return
        yield from verify_sql.every_statement(conn, catalogue, kind)
    finally:
        conn.close()
    app = create_app(settings)
    try:
        yield from write_paths(app, kind)
        yield race(app, kind, emulator=emulator)
        yield verify_history.persisted_result(app, connect, kind, emulator=emulator)
    finally:
        db.get_from(app).close()
    yield two_sessions(connect, catalogue, kind, emulator=emulator)


def drop(admin: Any, schema: str, kind: str) -> Row:
    """Drop a scratch schema and everything in it."""
    try:
        execute(admin, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except Exception as exc:
        return Row(f"{kind}: drop scratch schema", Verdict.FAIL, f"{schema}: {failure(exc)}")
    return Row(f"{kind}: drop scratch schema", Verdict.PASS, "dropped with CASCADE")


def hybrid_missing(conn: Any) -> str:
    """Return why this account cannot create hybrid tables, or "" when it can."""
    try:
        execute(conn, PROBE)
    except Exception as exc:
        return f"not available on this account: {failure(exc)}"
    execute(conn, "DROP TABLE verify_probe")
    return ""


def two_sessions(
    connect: Callable[[], Any], catalogue: dict[str, queries.Query], kind: str, *, emulator: bool
) -> Row:
    """Run the two-session proof, except on the emulator, whose server takes no locks."""
    if emulator:
        return Row(f"{kind}: two-session create", Verdict.NOT_APPLICABLE, EMULATOR_TWO_SESSIONS)
    return verify_sessions.two_sessions(connect, catalogue, kind)


def report(rows: list[Row]) -> int:
    """Print the verdict table as Markdown; return 1 if any step failed, else 0."""
    widths = [max(len(row.step) for row in rows), len(Verdict.NOT_APPLICABLE)]
    print(f"| {'step':<{widths[0]}} | {'verdict':<{widths[1]}} | detail |")
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|--------|")
    for row in rows:
        detail = row.detail.replace("|", "\\|")
        print(f"| {row.step:<{widths[0]}} | {row.verdict:<{widths[1]}} | {detail} |")
    return 1 if any(row.verdict is Verdict.FAIL for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
