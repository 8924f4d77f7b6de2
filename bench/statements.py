"""Figure d: statements per request for every endpoint, read from the access-log records."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bench import nulldb
from bench.null_wsgi import settings
from bench.report import Goal, Section
from userservice import create_app

BODY = {"email": "ada@example.com", "name": "Ada Lovelace"}
IF_MATCH = {"If-Match": '"v1"'}


@dataclass(frozen=True)
class Call:
    """One request to make, and the most statements it may take."""

    label: str
    method: str
    path: str
    most: int
    json: dict[str, str] | None = None
    headers: dict[str, str] | None = None


CALLS = (
    Call("GET /users/{id}", "GET", "/api/v1/users/7", 1),
    Call(
        "GET /users/{id} (If-None-Match, 304)",
        "GET",
        "/api/v1/users/7",
        1,
        headers={"If-None-Match": '"v1"'},
    ),
    Call("GET /users (list)", "GET", "/api/v1/users?page=2&page_size=20", 1),
    Call("GET /users?email= (list)", "GET", "/api/v1/users?email=ada@example.com", 1),
    Call("POST /users", "POST", "/api/v1/users", 2, json=BODY),
    Call("PUT /users/{id}", "PUT", "/api/v1/users/7", 2, json=BODY),
    Call("PUT /users/{id} (If-Match)", "PUT", "/api/v1/users/7", 2, json=BODY, headers=IF_MATCH),
    Call("PATCH /users/{id}", "PATCH", "/api/v1/users/7", 2, json={"name": "Ada King"}),
    Call("DELETE /users/{id}", "DELETE", "/api/v1/users/7", 1),
    Call("DELETE /users/{id} (If-Match)", "DELETE", "/api/v1/users/7", 1, headers=IF_MATCH),
)


class _Records(logging.Handler):
    """Keep the access-log records."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def measure() -> list[tuple[Call, int, int]]:
    """Make every call on the null connection; return (call, status, db_statements)."""
    app = create_app(settings("INFO"), connect=nulldb.connect())
    access = logging.getLogger("userservice.access")
    handler = _Records()
    access.addHandler(handler)
    access.propagate = False  # keep the JSON lines off the bench's output
    client = app.test_client()
    results = []
    for call in CALLS:
        response = client.open(call.path, method=call.method, json=call.json, headers=call.headers)
        record = handler.records[-1]
        results.append((call, response.status_code, int(record.db_statements)))
    access.removeHandler(handler)
    return results


def section() -> Section:
    """Figure d as a report section."""
    result = Section(
        "d. Statements per request",
        "Every endpoint through Flask's test client on the null connection, counting "
        "`db_statements` in the access-log record (a handler on the `userservice.access` logger). "
        "The null connection always finds the user and always reports 1 row changed, so these "
        "are the success paths.",
        ("request", "status", "statements", "goal"),
    )
    for call, status, statements in measure():
        result.rows.append((call.label, str(status), str(statements), f"<= {call.most}"))
        result.goals.append(
            Goal(f"{call.label}: <= {call.most}", str(statements), statements <= call.most)
        )
    result.commands.append(".venv/bin/python -m bench.statements")
    return result


if __name__ == "__main__":
    for call, status, statements in measure():
        print(f"{call.label}: {status}, {statements} statement(s) (goal <= {call.most})")
