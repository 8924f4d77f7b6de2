"""Sessions: the request in every statement's QUERY_TAG, session settings, dead sessions replaced.

The connect function hands out thin wrappers over real emulator connections: they record the
SQL text and the QUERY_TAG each statement is sent with, and raise the connector's own errors
where a test says.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from snowflake.connector.errors import OperationalError, ProgrammingError

from userservice import db
from userservice.db import emulator, queries
from userservice.db.connector import is_busy, is_connection_error, session_options
from userservice.settings import Settings

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll condition until it holds or seconds pass (the pool closes in the background)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def expired() -> ProgrammingError:
    """What the connector raises once Snowflake has expired an idle session."""
    return ProgrammingError(
        msg="Authentication token has expired.  The user must authenticate again.",
        errno=390114,
        sqlstate="08001",
    )


class Connection:
    """An emulator connection that records statements and fails on cue."""

    def __init__(self, inner: Any, snowflake: Snowflake) -> None:
        self.inner = inner
        self.snowflake = snowflake
        self.execute_error: Callable[[str], BaseException | None] = lambda _sql: None
        self.run_before_failing = False
        self.closed = False

    def cursor(self) -> Cursor:
        return Cursor(self.inner.cursor(), self)

    def close(self) -> None:
        self.closed = True
        self.inner.close()

    def is_closed(self) -> bool:
        return self.closed


class Cursor:
    def __init__(self, inner: Any, conn: Connection) -> None:
        self.inner = inner
        self.conn = conn

    def execute(self, command: str, params: Any = None, **options: Any) -> Cursor:
        self.conn.snowflake.statements.append(command)
        tag = (options.get("_statement_params") or {}).get("QUERY_TAG")
        self.conn.snowflake.tags.append(None if tag is None else traceless(json.loads(tag)))
        error = self.conn.execute_error(command)
        if error is not None and not self.conn.run_before_failing:
            raise error
        self.inner.execute(command, params, **options)
        if error is not None:
            raise error  # it ran, but its answer was lost on the way back
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Snowflake:
    """The connect function: one recording Connection over the emulator per call."""

    def __init__(self, data_dir: Path) -> None:
        self.emulator = emulator.Emulator(data_dir, database="USERSERVICE", schema="PUBLIC")
        self.connections: list[Connection] = []
        self.statements: list[str] = []
        self.tags: list[dict[str, Any] | None] = []

    def __call__(self) -> Connection:
        self.connections.append(Connection(self.emulator.connect(), self))
        return self.connections[-1]


@pytest.fixture
def snowflake(tmp_path) -> Iterator[Snowflake]:
    fake = Snowflake(tmp_path / "emulator")
    yield fake
    fake.emulator.close()


@pytest.fixture
def make(account_settings, make_app, snowflake) -> Callable[..., Flask]:
    """Build an app on the recording connections, with the table made and the record cleared."""

    def build(**overrides: Any) -> Flask:
        # min 0: no background filler racing the test to replace a discarded connection.
        settings = dataclasses.replace(account_settings, db_pool_min_connections=0, **overrides)
        app = make_app(settings, connect=snowflake)
        with app.app_context():
            db.create_schema()
        snowflake.statements.clear()
        snowflake.tags.clear()
        return app

    return build


def sql_of(app: Flask, name: str) -> str:
    with app.app_context():
        return queries.get(name).sql


def traceless(tag: dict[str, Any]) -> dict[str, Any]:
    """A QUERY_TAG with its trace id (new per request: none was sent) checked and taken out.

    None only outside the request hooks (a test's own request context).
    """
    trace_id = tag.pop("trace_id")
    assert trace_id is None or re.fullmatch(r"[0-9a-f]{32}", trace_id)
    return tag


def tag(request_id: str, route: str = "GET /api/v1/users/<id:user_id>") -> dict[str, Any]:
    """The QUERY_TAG of a request's statements, less its trace id (tests/test_tracing.py)."""
    return {
        "service": "userservice",
        "env": "development",
        "version": "0.1.0",
        "request_id": request_id,
        "route": route,
    }


def test_every_statement_names_its_request_in_its_query_tag_not_in_its_text(make, snowflake):
    app = make()
    client = app.test_client()

    client.post(
        "/api/v1/users", json={"email": "a@x.io", "name": "A"}, headers={"X-Request-ID": "p"}
    )
    response = client.get("/api/v1/users/1", headers={"X-Request-ID": "req-42.a:b_c"})

    assert response.status_code == 200
    names = ["next_user_id", "insert_user", "get_user"]
    assert snowflake.statements == [sql_of(app, name) for name in names]
    posted = tag("p", "POST /api/v1/users")
    assert snowflake.tags == [posted, posted, tag("req-42.a:b_c")]


def test_one_statement_has_one_text_whatever_the_request(make, snowflake):
    app = make()
    client = app.test_client()

    for request_id in ("r1", "r2", "*/ DROP TABLE users; --"):
        client.get("/api/v1/users/1", headers={"X-Request-ID": request_id})

    assert set(snowflake.statements) == {sql_of(app, "get_user")}
    assert len({json.dumps(t) for t in snowflake.tags}) == 3


@pytest.mark.parametrize(
    "hostile",
    [
        "*/ DROP TABLE users; --",
        "x' OR '1'='1",
        'a", "request_id": "forged',
        "id\twith\ttabs",
        "r" * 129,
        "ünïcode",
    ],
)
def test_a_hostile_request_id_reaches_neither_the_sql_nor_the_tag(make, snowflake, hostile):
    app = make()
    client = app.test_client()

    response = client.get("/api/v1/users/1", headers={"X-Request-ID": hostile})

    request_id = response.headers["X-Request-ID"]
    assert UUID4.fullmatch(request_id)
    assert snowflake.statements == [sql_of(app, "get_user")]
    assert snowflake.tags == [tag(request_id)]


def test_whatever_the_request_id_the_tag_stays_one_json_object(make, snowflake):
    app = make()
    forged = '*/ DROP TABLE users; --\n", "route": "forged'

    with app.test_request_context("/api/v1/users/1"), db.connection() as conn:
        g.request_id = forged
        queries.run(conn, "get_user", id=1)

    assert snowflake.statements == [sql_of(app, "get_user")]
    assert snowflake.tags == [tag(forged)]


def test_statements_outside_a_request_carry_only_the_session_tag(make, snowflake):
    app = make()

    with app.app_context(), db.connection() as conn:
        queries.run(conn, "ping")

    assert (snowflake.statements, snowflake.tags) == ([sql_of(app, "ping")], [None])


def test_the_session_is_opened_with_its_tag_statement_timeout_utc_and_timeouts(
    production_settings,
):
    settings = dataclasses.replace(
        production_settings, environment="staging", snowflake_statement_timeout=12
    )

    options = session_options(settings)

    assert options["session_parameters"] == {
        "QUERY_TAG": '{"service":"userservice","env":"staging","version":"0.1.0"}',
        "STATEMENT_TIMEOUT_IN_SECONDS": 12,
        "STATEMENT_QUEUED_TIMEOUT_IN_SECONDS": 12,
        "LOCK_TIMEOUT": 2,
        "TIMEZONE": "UTC",
        "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
    }
    assert (options["login_timeout"], options["network_timeout"], options["socket_timeout"]) == (
        5.0,
        1.0,
        4.0,
    )
    assert list(itertools.islice(options["backoff_policy"](), 5)) == [1, 1, 1, 1, 1]
    assert options["paramstyle"] == "qmark"


def test_the_default_service_version_is_the_project_version():
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text())["project"]["version"]

    assert Settings().service_version == version


def test_a_connection_idle_past_max_idle_is_pinged_once_before_use(make, snowflake):
    app = make(db_pool_max_idle=0.3)
    client = app.test_client()
    headers = {"X-Request-ID": "r1"}

    client.get("/api/v1/users/1", headers=headers)
    time.sleep(0.4)
    client.get("/api/v1/users/1", headers=headers)
    client.get("/api/v1/users/1", headers=headers)

    # The pool checks it on a thread of its own, outside the request: the ping is untagged.
    get, ping = sql_of(app, "get_user"), sql_of(app, "ping")
    assert snowflake.statements == [get, ping, get, get]
    assert snowflake.tags == [tag("r1"), None, tag("r1"), tag("r1")]
    assert len(snowflake.connections) == 1


@pytest.mark.parametrize("error", [expired, lambda: OperationalError(msg="reset", errno=250003)])
def test_a_connection_that_fails_its_idle_check_is_replaced_unnoticed(make, snowflake, error):
    app = make(db_pool_max_idle=0.1)
    client = app.test_client()
    client.post("/api/v1/users", json={"email": "ada@example.com", "name": "Ada"})
    (stale,) = snowflake.connections
    stale.execute_error = lambda sql: error() if "SELECT 1 AS ok" in sql else None
    time.sleep(0.2)

    response = client.get("/api/v1/users/1")

    assert (response.status_code, response.get_json()["email"]) == (200, "ada@example.com")
    assert len(snowflake.connections) == 2
    assert eventually(lambda: stale.closed)
    assert db.get_from(app).pool.get_stats()["discarded"] == 1


def test_a_connection_closed_while_idle_is_replaced_unnoticed(make, snowflake):
    app = make()
    client = app.test_client()
    client.post("/api/v1/users", json={"email": "ada@example.com", "name": "Ada"})
    (dead,) = snowflake.connections
    dead.close()  # as the connector does after a fatal error on another thread
    snowflake.statements.clear()
    snowflake.tags.clear()

    response = client.get("/api/v1/users/1", headers={"X-Request-ID": "r2"})

    assert (response.status_code, response.get_json()["email"]) == (200, "ada@example.com")
    assert (snowflake.statements, snowflake.tags) == ([sql_of(app, "get_user")], [tag("r2")])
    assert len(snowflake.connections) == 2
    assert db.get_from(app).pool.get_stats()["discarded"] == 1


@pytest.mark.parametrize("ran", [False, True], ids=["before-it-ran", "after-it-ran"])
def test_a_write_that_fails_in_execute_is_503_and_never_retried(make, snowflake, ran):
    app = make()
    client = app.test_client()
    (conn,) = snowflake.connections
    conn.execute_error = lambda sql: (
        OperationalError(msg="lost", errno=250003) if "MERGE" in sql else None
    )
    conn.run_before_failing = ran

    response = client.post("/api/v1/users", json={"email": "ada@example.com", "name": "Ada"})

    assert response.status_code == 503
    assert response.get_json()["code"] == "DATABASE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "5"
    assert sum("MERGE" in sql for sql in snowflake.statements) == 1
    assert eventually(lambda: conn.closed)
    listed = client.get("/api/v1/users").get_json()
    assert [user["email"] for user in listed] == (["ada@example.com"] if ran else [])


def test_an_expired_session_during_a_read_is_503_and_the_next_request_gets_a_new_one(
    make, snowflake
):
    app = make()
    client = app.test_client()
    (conn,) = snowflake.connections
    conn.execute_error = lambda sql: expired() if "FROM users" in sql else None

    first = client.get("/api/v1/users/1")
    second = client.get("/api/v1/users/1")

    assert (first.status_code, second.status_code) == (503, 404)
    assert eventually(lambda: conn.closed)
    assert len(snowflake.connections) == 2


def lock_queue_full() -> ProgrammingError:
    """What Snowflake answers when more than 20 statements already wait for a table's lock."""
    return ProgrammingError(
        msg="Statement has locked table USERS and this lock has not yet been released. Your"
        " statement was aborted because the number of waiters for this lock exceeds the 20"
        " statements limit.",
        errno=625,
        sqlstate="57014",
    )


def statement_timed_out() -> ProgrammingError:
    """What Snowflake answers when a statement runs past STATEMENT_TIMEOUT_IN_SECONDS."""
    return ProgrammingError(
        msg="Statement reached its statement or warehouse timeout of 3 second(s) and was canceled.",
        errno=630,
        sqlstate="57014",
    )


@pytest.mark.parametrize(
    ("error", "busy", "gone"),
    [
        (lock_queue_full, True, False),
        (statement_timed_out, True, False),
        (expired, False, True),
        (lambda: OperationalError(msg="reset", errno=250003), False, True),
        (lambda: ProgrammingError(msg="syntax error", errno=1003, sqlstate="42000"), False, False),
    ],
)
def test_snowflake_errors_are_told_apart_by_their_numbers(error, busy, gone):
    exc = error()

    assert (is_busy(exc), is_connection_error(exc)) == (busy, gone)


@pytest.mark.parametrize("error", [lock_queue_full, statement_timed_out])
def test_a_write_turned_away_for_contention_is_503_busy_and_the_session_is_kept(
    make, snowflake, error
):
    app = make()
    client = app.test_client()
    (conn,) = snowflake.connections
    conn.execute_error = lambda sql: error() if "MERGE" in sql else None

    response = client.post("/api/v1/users", json={"email": "ada@example.com", "name": "Ada"})

    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "DATABASE_BUSY"
    assert response.get_json()["detail"] == "The database is busy; retry."
    assert response.headers["Retry-After"] == "5"
    conn.execute_error = lambda _sql: None
    assert (
        client.post("/api/v1/users", json={"email": "ada@example.com", "name": "Ada"}).status_code
        == 201
    )
    assert snowflake.connections == [conn]
    assert not conn.closed
    assert db.get_from(app).pool.get_stats()["discarded"] == 0
