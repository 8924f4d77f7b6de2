"""Statements per endpoint, on every path, measured on the emulator: `python -m bench.capacity`.

Each view calls exactly one function of userservice.users, so each call here runs in its own
app context with a fresh `db.RequestFigures` on `g.figures`, as a request gets one, and
reads its `statements`: the counter behind the access line's `db_statements`. The SQL is the
real SQL, on the embedded emulator, on a standard and on a hybrid users table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from flask import Flask, g

from userservice import create_app, db, users
from userservice.errors import ServiceError
from userservice.settings import Settings

Call = tuple[str, Callable[[], Any]]
KINDS = ("standard", "hybrid")


def calls(user_id: int, other_id: int) -> list[Call]:
    """Every endpoint's paths: success first, then each refusal the contract names."""
    update, delete = users.update_user, users.delete_user
    return [
        ("GET /users/{id}", lambda: users.get_user(user_id)),
        ("GET /users/{id}, unknown id", lambda: users.get_user(999_999)),
        ("GET /users", lambda: users.list_users(email=None, page=1, page_size=20)),
        ("GET /users?email=", lambda: users.list_users(email="B@X.IO", page=1, page_size=20)),
        ("POST /users", lambda: users.create_user(email="c@x.io", name="C")),
        ("POST /users, address taken", lambda: users.create_user(email="A@X.IO", name="A")),
        ("PUT /users/{id}", lambda: update(user_id, email="a@x.io", name="A2", if_match=None)),
        ("PATCH /users/{id}", lambda: update(user_id, name="A3", if_match=None)),
        (
            "PATCH /users/{id}, If-Match current",
            lambda: update(user_id, name="A4", if_match='"v3"'),
        ),
        ("PATCH /users/{id}, If-Match stale", lambda: update(user_id, name="A5", if_match='"v1"')),
        (
            "PATCH /users/{id}, address taken",
            lambda: update(user_id, email="B@x.io", if_match=None),
        ),
        ("PATCH /users/{id}, unknown id", lambda: update(999_999, name="Z", if_match=None)),
        (
            "DELETE /users/{id}, If-Match stale",
            lambda: delete(other_id, if_match='"v9"'),
        ),
        ("DELETE /users/{id}", lambda: delete(other_id, if_match=None)),
        ("DELETE /users/{id}, unknown id", lambda: delete(other_id, if_match=None)),
    ]


def measure(app: Flask) -> list[tuple[str, str, int]]:
    """Make every call in a fresh app context; return (call, outcome, statements)."""
    with app.app_context():
        user_id = users.create_user(email="a@x.io", name="A")["id"]
        other_id = users.create_user(email="b@x.io", name="B")["id"]
    rows = []
    for label, call in calls(user_id, other_id):
        with app.app_context():
            g.figures = db.RequestFigures()
            try:
                call()
                outcome = "success"
            except ServiceError as exc:
                outcome = f"{exc.status} {exc.code}"
            rows.append((label, outcome, g.figures.statements))
    return rows


def hybrid(app: Flask) -> Flask:
    """Replace the app's users table (made at start) with an empty hybrid one."""
    with app.app_context(), db.connection() as conn:
        conn.cursor().execute("DROP TABLE users")
    with app.app_context():
        db.create_schema(hybrid=True)
    return app


def main() -> None:
    """Print the statements per endpoint on both table kinds as a Markdown table."""
    with tempfile.TemporaryDirectory(prefix="userservice-capacity-") as tmp:
        apps = [
            create_app(Settings(emulator_data_dir=f"{tmp}/{kind}", log_level="WARNING"))
            for kind in KINDS
        ]
        standard, hybrid_ = measure(apps[0]), measure(hybrid(apps[1]))
        for app in apps:
            db.get_from(app).close()
    print("| request | standard: outcome | statements | hybrid: outcome | statements |")
    print("|---|---|---|---|---|")
    for (label, outcome, count), (_, h_outcome, h_count) in zip(standard, hybrid_, strict=True):
        print(f"| {label} | {outcome} | {count} | {h_outcome} | {h_count} |")


if __name__ == "__main__":
    main()
