"""The administrator's commands through Flask's CLI runner, on the emulator."""

from __future__ import annotations

import pytest
from conftest import fresh_database, use_hybrid_table
from snowflake.connector.errors import IntegrityError

from userservice import db, users
from userservice.db import connector

USERS = "/api/v1/users"
# The users table as the service created it before email_key existed.
EARLIER_SHAPE = """CREATE TABLE users (
    id NUMBER(19, 0) NOT NULL PRIMARY KEY, email VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL, created_at TIMESTAMP_NTZ(6) NOT NULL,
    updated_at TIMESTAMP_NTZ(6) NOT NULL, version NUMBER(19, 0) NOT NULL)"""


@pytest.fixture
def app(module_app):
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


def execute(app, sql, params=None):
    """Run raw SQL on one of the app's connections; return the rows."""
    with app.app_context(), db.connection() as conn:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.fixture
def earlier(app):
    """The app on a users table of the earlier shape, holding addresses old and new."""
    execute(app, "DROP TABLE users")
    execute(app, EARLIER_SHAPE)
    emails = ["ada@example.com", "ΟΔΟΣ@example.gr", "οδος@example.gr", "x@bücher.de"]
    emails += ["x@xn--bcher-kva.de", "bob@☃.com"] + [f"u{i}@example.com" for i in range(7)]
    for i, email in enumerate(emails, start=1):
        execute(
            app,
            "INSERT INTO users VALUES (?, ?, 'N', '2026-01-01', '2026-01-01', 1)",
            [i, email],
        )
    return app


def test_migrate_fills_the_key_in_batches_and_reports_what_collides(earlier):
    result = earlier.test_cli_runner().invoke(args=["migrate", "--batch-size", "3"])

    assert result.exit_code == 1
    assert "filled 12 users" in result.output
    assert "no key (IDNA refuses the domain): user 6 <bob@☃.com>" in result.output
    assert "shared key οδοσ@example.gr: user 2 <ΟΔΟΣ@example.gr>" in result.output
    assert "shared key οδοσ@example.gr: user 3 <οδος@example.gr>" in result.output
    assert "shared key x@xn--bcher-kva.de: user 4 <x@bücher.de>" in result.output
    assert "1 addresses have no key and 4 share one" in result.output
    rows = execute(earlier, "SELECT id, email_key FROM users ORDER BY id")
    assert rows[0] == (1, "ada@example.com")
    assert rows[5] == (6, None)
    assert rows[12] == (13, "u6@example.com")


def test_migrate_is_safe_to_run_twice_and_the_service_then_uses_the_key(earlier):
    runner = earlier.test_cli_runner()
    runner.invoke(args=["migrate"])
    before = execute(earlier, "SELECT * FROM users ORDER BY id")

    again = runner.invoke(args=["migrate"])

    assert "filled 0 users" in again.output
    assert execute(earlier, "SELECT * FROM users ORDER BY id") == before
    client = earlier.test_client()
    taken = client.post(USERS, json={"email": "ADA@EXAMPLE.COM", "name": "A"})
    assert (taken.status_code, taken.get_json()["code"]) == (409, "EMAIL_TAKEN")
    assert client.patch(f"{USERS}/2", json={"name": "Keeps a shared key"}).status_code == 200
    assert (
        client.put(f"{USERS}/2", json={"email": "οδος@example.gr", "name": "N"}).status_code == 200
    )
    assert [u["id"] for u in client.get(USERS, query_string={"email": "ΟΔΟΣ@example.gr"}).json] == [
        2,
        3,
    ]


def test_migrate_on_a_table_with_no_collisions_exits_0(app, make_user):
    make_user(app.test_client())

    result = app.test_cli_runner().invoke(args=["migrate"])

    assert (result.exit_code, result.output) == (0, "email_key: filled 0 users.\n")


def test_init_db_hybrid_makes_a_table_that_refuses_a_second_holder_of_a_key(app):
    execute(app, "DROP TABLE users")

    result = app.test_cli_runner().invoke(args=["init-db", "--hybrid"])

    assert result.exit_code == 0
    assert "hybrid" in result.output
    insert = "INSERT INTO users VALUES (?, ?, 'a@x.io', 'A', '2026-01-01', '2026-01-01', 1)"
    execute(app, insert, [1, "a@x.io"])
    with pytest.raises(IntegrityError) as refused:
        execute(app, insert, [2, "A@x.io"])
    assert (refused.value.errno, refused.value.raw_msg) == (
        connector.DUPLICATE_KEY,
        connector.DUPLICATE_KEY_MESSAGE,
    )
    assert execute(app, "SELECT id FROM users") == [(1,)]


def test_a_key_the_hybrid_table_refuses_answers_409_email_taken(app):
    use_hybrid_table(app)
    insert = "INSERT INTO users VALUES (?, 'a', 'k', 'A', '2026-01-01', '2026-01-01', 1)"
    execute(app, insert, [1])

    with app.test_request_context(), pytest.raises(users.EmailTaken), users._refused_key():
        execute(app, insert, [2])


def test_once_the_reported_users_are_fixed_migrate_exits_0(earlier):
    runner = earlier.test_cli_runner()
    runner.invoke(args=["migrate"])
    client = earlier.test_client()
    for user_id, email in [(3, "odos@example.gr"), (5, "x@example.de"), (6, "bob@example.com")]:
        response = client.put(f"{USERS}/{user_id}", json={"email": email, "name": "N"})
        assert response.status_code == 200, response.get_json()

    result = runner.invoke(args=["migrate"])

    assert (result.exit_code, result.output) == (0, "email_key: filled 0 users.\n")
