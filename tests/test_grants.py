"""The administrator's grants script: exactly the privileges the service's SQL needs."""

from __future__ import annotations

import re

from userservice.db import queries
from userservice.db.queries import SQL_DIR

GRANTS = SQL_DIR / "admin" / "grants.sql"
# Run by an owner role (init-db, migrate), never by the service's.
ADMIN = {
    "create_users_id_seq",
    "create_users_table",
    "create_users_hybrid_table",
    "add_users_email_key",
    "users_without_email_key",
    "fill_email_keys",
    "users_sharing_an_email_key",
    "create_idempotency_keys_table",
    "create_idempotency_keys_hybrid_table",
    "delete_expired_idempotency_keys",
}
TABLES = {"USERS": "TABLE USERSERVICE.PUBLIC.USERS"}
TABLES["IDEMPOTENCY_KEYS"] = "TABLE USERSERVICE.PUBLIC.IDEMPOTENCY_KEYS"
# What each statement the service runs needs on the users table; a MERGE needs SELECT and
# what its clauses do.
NEEDS = {
    "SELECT": {"SELECT"},
    "WITH": {"SELECT"},
    "MERGE": {"SELECT"},
    "UPDATE": {"SELECT", "UPDATE"},  # its NOT EXISTS reads the table
    "DELETE": {"DELETE"},
}


def statements() -> list[str]:
    text = re.sub(r"--[^\n]*", "", GRANTS.read_text(encoding="utf-8"))
    return [" ".join(s.split()) for s in text.split(";") if s.strip()]


def grants_to_the_service() -> dict[str, set[str]]:
    """Object -> privileges granted on it to the service's role."""
    granted: dict[str, set[str]] = {}
    for statement in statements():
        found = re.fullmatch(r"GRANT (.+) ON (\w+ [\w.]+) TO ROLE USERSERVICE_ROLE", statement)
        if found:
            granted[found[2]] = {p.strip() for p in found[1].split(",")}
    return granted


def test_the_service_never_loads_the_admin_script():
    assert "grants" not in queries.load(SQL_DIR)
    assert not (SQL_DIR / "grants.sql").exists()


def test_the_role_gets_usage_on_its_warehouse_database_schema_and_sequence_and_dml_on_users():
    assert grants_to_the_service() == {
        "WAREHOUSE USERSERVICE_WH": {"USAGE"},
        "DATABASE USERSERVICE": {"USAGE"},
        "SCHEMA USERSERVICE.PUBLIC": {"USAGE"},
        "TABLE USERSERVICE.PUBLIC.USERS": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        "TABLE USERSERVICE.PUBLIC.IDEMPOTENCY_KEYS": {"SELECT", "INSERT", "UPDATE"},
        "SEQUENCE USERSERVICE.PUBLIC.USERS_ID_SEQ": {"USAGE"},
    }


def test_the_table_privileges_are_exactly_what_the_sql_files_need():
    catalogue = queries.load(SQL_DIR)
    needed: dict[str, set[str]] = {table: set() for table in TABLES.values()}
    for name, query in catalogue.items():
        if name not in ADMIN:
            sql = re.sub(r"--[^\n]*", "", query.sql).upper()
            verb = sql.split()[0]
            privileges = set(NEEDS[verb])
            if verb == "MERGE":
                privileges |= set(re.findall(r"\bTHEN\s+(INSERT|UPDATE|DELETE)\b", sql))
            # users_id_seq is a word of its own: no \bUSERS\b there.
            for table in set(re.findall(r"\b(USERS|IDEMPOTENCY_KEYS)\b", sql)):
                needed[TABLES[table]] |= privileges

    granted = grants_to_the_service()
    assert {table: granted[table] for table in TABLES.values()} == needed
    assert any("NEXTVAL" in q.sql.upper() for q in catalogue.values())


def test_nothing_broad_is_granted_and_no_statement_uses_accountadmin():
    text = " ".join(statements()).upper()

    for broad in ("ALL PRIVILEGES", " ALL ", "OWNERSHIP", "FUTURE", "ACCOUNTADMIN", "MANAGE"):
        assert broad not in text, broad
    grants = [s for s in statements() if s.startswith("GRANT ")]
    assert all(
        "TO ROLE USERSERVICE_ROLE" in s or s.startswith("GRANT ROLE USERSERVICE_ROLE TO ")
        for s in grants
    )
