"""Database faults, for real: the emulator's server is stopped, paused, killed and restarted.

The service is pointed at `fakesnow -s` through SNOWFLAKE_HOST/PORT/PROTOCOL, exactly as at a
Snowflake endpoint, with short timeouts, so every failure must come back as a 503 problem
document within BOUND seconds, and the service must recover once the server is back.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from servers import EmulatorServer, call, emulator_env, free_port, gunicorn, workers

from userservice import db
from userservice.settings import Settings

# Set by the 1 s timeouts below: a refused connect fails in about 1 s, a silent server hits
# the socket timeout, and a query cut off mid-flight fails after the connector's retries;
# the slowest 503 measured here under load was 2.2 s.
BOUND = 6.0

# The connector cancels a timed-out query from a timer thread of its own, which then fails
# against the dead server; that thread's error is the connector's, not the service's.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def server_settings(port: int) -> Settings:
    """Settings that point the service at an emulator server on 127.0.0.1:port."""
    return Settings(
        snowflake_account="fakesnow",
        snowflake_user="fake",
        snowflake_password="snow",
        snowflake_host="127.0.0.1",
        snowflake_port=port,
        snowflake_protocol="http",
        snowflake_login_timeout=1,
        snowflake_network_timeout=1,
        snowflake_socket_timeout=1,
        db_pool_timeout=1,
        db_ready_timeout=1,
        log_level="CRITICAL",
    )


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """An emulator server on a free port, not yet started; killed after the test."""
    emulator = EmulatorServer(free_port())
    yield emulator
    emulator.kill()


def create_schema(app: Any) -> None:
    with app.app_context():
        db.create_schema()


def timed(client: Any, method: str, path: str, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.open(path, method=method, **kwargs)
    return response, time.monotonic() - started


def assert_unavailable(response: Any, elapsed: float) -> None:
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "DATABASE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "5"
    assert elapsed < BOUND


def wait_until_ok(client: Any, seconds: float = 15) -> float:
    """Poll the list endpoint until it answers 200; return how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if client.get("/api/v1/users").status_code == 200:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"no recovery within {seconds} s")


def test_database_down_at_start_the_service_starts_and_answers_503(server, make_app):
    app = make_app(server_settings(server.port))
    client = app.test_client()

    assert client.get("/health").status_code == 200
    assert_unavailable(*timed(client, "GET", "/health/ready"))
    assert_unavailable(*timed(client, "GET", "/api/v1/users/1"))
    assert_unavailable(
        *timed(client, "POST", "/api/v1/users", json={"email": "a@x.io", "name": "A"})
    )
    assert db.get_from(app).pool.get_stats()["in_use"] == 0


def test_database_paused_answers_503_within_the_bound_then_recovers(server, make_app):
    server.start()
    app = make_app(server_settings(server.port))
    create_schema(app)
    client = app.test_client()
    assert client.get("/api/v1/users").status_code == 200

    server.pause()
    try:
        assert_unavailable(*timed(client, "GET", "/api/v1/users"))
        assert_unavailable(*timed(client, "GET", "/health/ready"))
    finally:
        server.resume()

    assert wait_until_ok(client) < 5
    stats = db.get_from(app).pool.get_stats()
    assert (stats["in_use"], stats["waiting"]) == (0, 0)


def test_database_killed_under_load_gives_only_2xx_or_503_then_recovers(server, make_app):
    server.start()
    app = make_app(server_settings(server.port))
    create_schema(app)
    outcomes: list[tuple[int, str, float]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        client = app.test_client()
        for n in range(10_000):
            if stop.is_set():
                return
            if n % 2:
                response, elapsed = timed(client, "GET", "/api/v1/users")
            else:
                body = {"email": f"w{worker}-{n}@example.com", "name": "Load"}
                response, elapsed = timed(client, "POST", "/api/v1/users", json=body)
            outcomes.append((response.status_code, response.content_type, elapsed))

    threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    server.kill()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    statuses = {status for status, _, _ in outcomes}
    assert statuses <= {200, 201, 503}
    assert {200, 201, 503} <= statuses
    assert all(ct == "application/problem+json" for status, ct, _ in outcomes if status == 503)
    assert max(elapsed for _, _, elapsed in outcomes) < BOUND

    server.start()
    client = app.test_client()
    create_schema(app)  # the restarted server starts empty
    assert wait_until_ok(client) < 5
    stats = db.get_from(app).pool.get_stats()
    assert (stats["in_use"], stats["waiting"]) == (0, 0)
    assert stats["open"] <= stats["max_size"]


def test_sessions_a_restarted_server_does_not_know_answer_503_once_and_are_replaced(
    server, make_app
):
    server.start()
    app = make_app(server_settings(server.port))
    create_schema(app)
    with app.app_context(), db.connection(), db.connection():
        pass  # two sessions now wait, idle, in the pool
    server.kill()
    server.start()  # a new, empty server: it answers the old sessions with 401
    client = app.test_client()

    stale = [client.get("/api/v1/users") for _ in range(2)]

    assert [(r.status_code, r.get_json()["code"]) for r in stale] == [
        (503, "DATABASE_UNAVAILABLE"),
        (503, "DATABASE_UNAVAILABLE"),
    ]
    assert db.get_from(app).pool.get_stats()["discarded"] == 2
    create_schema(app)  # on a fresh session
    assert client.get("/api/v1/users").status_code == 200


def test_a_worker_killed_mid_burst_loses_no_acknowledged_create(tmp_path):
    port = free_port()
    env = emulator_env(tmp_path, GUNICORN_THREADS="4")
    acknowledged: list[dict[str, Any]] = []
    stop = threading.Event()

    def burst(worker: int) -> None:
        for n in range(2_000):
            if stop.is_set():
                return
            try:
                status, _, body = call(
                    port,
                    "POST",
                    "/api/v1/users",
                    {"email": f"b{worker}-{n}@example.com", "name": "B"},
                )
            except OSError:
                continue  # the worker died mid-request: the outcome is unknown, not promised
            if status == 201:
                acknowledged.append(body)

    with gunicorn(port, env) as master:
        assert call(port, "GET", "/health")[0] == 200
        threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        (worker_pid,) = workers(master.pid)
        os.kill(worker_pid, signal.SIGKILL)
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(timeout=60)

        assert workers(master.pid) != [worker_pid]
        assert len(acknowledged) > 0
        for user in acknowledged:
            status, _, read = call(port, "GET", f"/api/v1/users/{user['id']}")
            assert (status, read) == (200, user)
