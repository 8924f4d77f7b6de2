"""Fixtures: an app on a fresh emulator database per test, its client, and its access log."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.servers import EmulatorServer, call, emulator_env, gunicorn
from userservice import create_app, db, logs
from userservice.problems import quoted_path
from userservice.settings import Settings

# When this test session began: a schemathesis summary older than that is a previous run's.
SESSION_STARTED = time.time()
USER_A = {"email": "a@x.io", "name": "A"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Development settings on an emulator database in this test's own folder."""
    return Settings(emulator_data_dir=str(tmp_path / "emulator"), log_level="WARNING")


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """Build apps with create_app, and close their pools (and emulators) after the test."""
    apps: list[Flask] = []

    def build(*args: Any, **kwargs: Any) -> Flask:
        apps.append(create_app(*args, **kwargs))
        return apps[-1]

    yield build
    for built in apps:
        db.get_from(built).close()


@pytest.fixture
def app(make_app: Callable[..., Flask], settings: Settings) -> Flask:
    """The app on a fresh emulator database."""
    return make_app(settings)


@pytest.fixture(scope="module")
def module_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app on development settings for a module whose tests only send it requests.

    Building an app costs about 0.13 s of CPU, putting its database back about 0.05 s. A
    module opts in by overriding `app` with `fresh_database(module_app)`; a test that adds
    routes or hooks, or changes the app's extensions, still takes an app of its own.
    """
    folder = tmp_path_factory.mktemp("module") / "emulator"
    app = keep_as_created(create_app(Settings(emulator_data_dir=str(folder), log_level="WARNING")))
    yield app
    db.get_from(app).close()


def _as_created(app: Flask) -> tuple[Path, Path]:
    folder = Path(app.config["SETTINGS"].emulator_data_dir)
    return folder, folder.with_name(f"{folder.name}-as-created")


def keep_as_created(app: Flask) -> Flask:
    """Copy a new app's emulator files, for fresh_database to put back before each test."""
    db.get_from(app).restart_pool()  # closes the emulator's files, so they can be copied
    folder, copy = _as_created(app)
    shutil.copytree(folder, copy)
    return app


def fresh_database(app: Flask) -> Flask:
    """Give a kept app a fresh database: its files as create_app left them, a new pool.

    The logs go to this test's stdout, as create_app would send them.
    """
    settings = app.config["SETTINGS"]
    logs.configure(settings.log_level, settings.log_format)
    db.get_from(app).restart_pool()
    folder, copy = _as_created(app)
    shutil.rmtree(folder)
    shutil.copytree(copy, folder)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture(scope="session")
def shared_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    """A client of one app for the whole session, for tests that store nothing.

    Building an app on a fresh emulator database costs about 0.1 s of CPU; tests that only
    read, or whose writes are refused, need no database of their own. Its database stays
    empty, so each of them asserts exactly what it would on a fresh one.
    """
    folder = tmp_path_factory.mktemp("shared") / "emulator"
    app = create_app(Settings(emulator_data_dir=str(folder), log_level="WARNING"))
    yield app.test_client()
    db.get_from(app).close()


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Any]]:
    """gunicorn as `make run` starts it, on a fresh emulator, holding one user (id 1).

    Yields the port and the user; one server per test module, whose tests check its state.
    """
    folder = tmp_path_factory.mktemp("gunicorn")
    with gunicorn(emulator_env(folder / "emulator"), folder / "gunicorn.log") as running:
        status, _, user = call(running.port, "POST", "/api/v1/users", USER_A)
        assert (status, user["id"]) == (201, 1)
        yield running.port, user


def _emulator_server() -> Iterator[EmulatorServer]:
    """An emulator server (`fakesnow -s`, in memory) on a free port; killed after its scope."""
    server = EmulatorServer()
    server.start()
    yield server
    server.kill()


# One server per test, for a test that pauses or kills it; or one per module, for tests that
# only connect to it.
emulator_server = pytest.fixture(_emulator_server, name="emulator_server")
module_emulator_server = pytest.fixture(
    _emulator_server, scope="module", name="module_emulator_server"
)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured(name: str) -> Iterator[list[logging.LogRecord]]:
    """Collect the INFO-and-above records of one logger (the service's do not propagate)."""
    handler = _Records()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@pytest.fixture
def access_log() -> Iterator[list[logging.LogRecord]]:
    """The access-log records written during the test."""
    with captured("userservice.access") as records:
        yield records


@pytest.fixture
def audit_log() -> Iterator[list[logging.LogRecord]]:
    """The audit records (one per write) written during the test."""
    with captured("userservice.audit") as records:
        yield records


def use_hybrid_table(app: Flask) -> None:
    """Replace the app's tables (made at start) with empty hybrid ones, via init-db."""
    with app.app_context(), db.connection() as conn:
        for table in ("users", "idempotency_keys"):
            conn.cursor().execute(f"DROP TABLE {table}")
    result = app.test_cli_runner().invoke(args=["init-db", "--hybrid"])
    assert result.exit_code == 0, result.output


PROBLEM_KEYS = ["type", "title", "status", "detail", "instance", "code", "request_id"]
# assert_problem's challenge when the test says nothing of WWW-Authenticate.
UNCHECKED = object()


def _make_user(client: FlaskClient, email: str = "ada@example.com", name: str = "Ada") -> Any:
    response = client.post("/api/v1/users", json={"email": email, "name": name})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _assert_problem(
    response: Any, status: int, code: str, challenge: str | object | None = UNCHECKED
) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert list(body)[:7] == PROBLEM_KEYS
    instance = quoted_path(response.request.path)  # a path past any route's length is cut
    assert (body["status"], body["code"], body["instance"]) == (status, code, instance)
    assert body["request_id"] == response.headers["X-Request-ID"]
    if challenge is not UNCHECKED:
        assert response.headers.get("WWW-Authenticate") == challenge
    return body


@pytest.fixture(scope="session")
def make_user() -> Callable[..., Any]:
    """Create a user through the API: make_user(client, email=..., name=...) returns its JSON."""
    return _make_user


@pytest.fixture(scope="session")
def assert_problem() -> Callable[..., Any]:
    """Check a problem-details answer: assert_problem(response, status, code[, challenge])."""
    return _assert_problem


@pytest.fixture(scope="session")
def production_settings() -> Settings:
    """Production settings as a deployment sets them: an issuer, an account, a token login."""
    return Settings(
        environment="production",
        auth_issuer="https://issuer.example.com/",
        auth_audience="userservice",
        snowflake_account="org-acct",
        snowflake_user="svc",
        snowflake_warehouse="wh",
        snowflake_pat="pat",  # a login method is required; no test connects with it
    )


@pytest.fixture
def account_settings(settings: Settings) -> Settings:
    """Settings that name a Snowflake account, for tests that hand the app a connect function."""
    return dataclasses.replace(settings, snowflake_account="test-account")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show what schemathesis covered (pytest prints nothing of a passing test's output)."""
    summary = Path(__file__).resolve().parents[1] / "build" / "schemathesis-summary.txt"
    if summary.exists() and summary.stat().st_mtime >= SESSION_STARTED:
        terminalreporter.section("schemathesis")
        terminalreporter.write(summary.read_text())
