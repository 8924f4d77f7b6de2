"""The query module: load-time checks, server-side binding, rows as dicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import fresh_database
from flask import Flask

from userservice import db
from userservice.db import queries
from userservice.db.queries import SQL_DIR, QueryError


@pytest.fixture
def app(module_app: Flask) -> Flask:
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_sql_file_in_the_repo_loads_with_a_header():
    catalogue = queries.load(SQL_DIR)

    assert set(catalogue) == {p.stem for p in SQL_DIR.glob("*.sql")}
    assert all(q.doc for q in catalogue.values())


def table_lines(name: str) -> list[str]:
    """The lines inside a CREATE statement's parentheses, each without its trailing comma."""
    lines = (SQL_DIR / f"{name}.sql").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("CREATE "))
    assert (lines[start][-1], lines[-1]) == ("(", ")"), name
    return [line.strip().removesuffix(",") for line in lines[start + 1 : -1]]


@pytest.mark.parametrize(
    ("table", "constraint"),
    [
        ("users", "CONSTRAINT users_email_key UNIQUE (email_key)"),
        ("idempotency_keys", "PRIMARY KEY (scope, idem_key)"),
    ],
)
def test_a_hybrid_table_has_the_standard_tables_columns_and_one_constraint_more(table, constraint):
    # Why each table is written twice: the two statements differ, and the DML files serve both.
    standard = table_lines(f"create_{table}_table")

    assert table_lines(f"create_{table}_hybrid_table") == [*standard, constraint]
    assert len(standard) >= 7


def test_named_parameters_become_qmarks_in_order_with_repeats(tmp_path):
    path = write(
        tmp_path, "q.sql", "-- Doc.\nSELECT :a, :b::varchar, v:field, ':x' -- :y\nWHERE :a\n"
    )

    query = queries.parse(path)

    assert query.sql == "-- Doc.\nSELECT ?, ?::varchar, v:field, ':x' -- :y\nWHERE ?"
    assert query.params == ("a", "b", "a")
    assert query.bind({"a": 1, "b": 2}) == [1, 2, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1", "q.sql: starts with no '--' comment saying what it does"),
        ("-- Doc.\n", "q.sql: holds no statement"),
        ("-- Doc.\nSELECT 1; SELECT 2", "q.sql: holds more than one statement"),
        ("-- Doc.\nSELECT 'open", "q.sql: unclosed quote or comment at offset 15"),
    ],
)
def test_a_malformed_file_fails_the_load_naming_the_file(tmp_path, text, message):
    write(tmp_path, "q.sql", text)

    with pytest.raises(QueryError) as caught:
        queries.load(tmp_path)

    assert str(caught.value) == message


def test_one_trailing_semicolon_is_allowed(tmp_path):
    query = queries.parse(write(tmp_path, "q.sql", "-- Doc.\nSELECT :a;\n"))

    assert query.sql == "-- Doc.\nSELECT ?"


def test_an_empty_directory_fails_the_load(tmp_path):
    with pytest.raises(QueryError, match=r"holds no \.sql files"):
        queries.load(tmp_path)


def test_a_call_whose_parameters_disagree_with_the_file_names_both(tmp_path):
    query = queries.parse(write(tmp_path, "get_thing.sql", "-- Doc.\nSELECT :id, :email"))

    with pytest.raises(QueryError) as caught:
        query.bind({"id": 1, "mail": "x"})

    assert str(caught.value) == "get_thing.sql takes email, id; the call gave id, mail"


def test_a_bad_file_stops_the_start_naming_the_file(tmp_path):
    write(tmp_path, "ok.sql", "-- Doc.\nSELECT 1")
    write(tmp_path, "broken.sql", "SELECT 1")
    app = Flask(__name__)

    with pytest.raises(QueryError, match=r"^broken.sql: starts with no '--' comment"):
        queries.init_app(app, tmp_path)

    assert queries.EXTENSION_KEY not in app.extensions


def test_values_are_bound_on_the_server_not_written_into_the_sql(app):
    executed: list[tuple[str, object]] = []
    with app.app_context(), db.connection() as conn:
        cursor_factory = conn.cursor

        class Spy:
            def cursor(self):
                cur = cursor_factory()
                original = cur.execute

                def execute(command, params=None):
                    executed.append((command, params))
                    return original(command, params)

                cur.execute = execute
                return cur

        rows = queries.run(Spy(), "get_user", id=424242)
        expected_sql = queries.get("get_user").sql

    assert rows == []
    assert executed == [(expected_sql, [424242])]
    assert "424242" not in executed[0][0]


def test_rows_come_back_as_dicts_with_lower_case_keys(app):
    with app.app_context(), db.connection() as conn:
        rows = queries.run(conn, "ping")

    assert rows == [{"ok": 1}]


def test_an_unknown_query_name_is_an_error(app):
    with app.app_context(), db.connection() as conn, pytest.raises(QueryError, match="nope"):
        queries.run(conn, "nope")
