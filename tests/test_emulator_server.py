"""The emulator's server (bench/fakesnow_server.py) runs MERGEs one at a time, as Snowflake does.

The service's claims rely on it: of two MERGEs that claim one key, the second sees the row
the first inserted. `fakesnow -s` alone runs them side by side, and both insert.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bench.servers import EmulatorServer, server_settings
from userservice import db

USERS = "/api/v1/users"
CLIENTS = 8


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    emulator = EmulatorServer()
    emulator.start()
    yield emulator
    emulator.kill()


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_concurrent_claims_of_one_key_leave_one_row_and_one_user(make_app, server, round_):
    server.create_schema()
    app = make_app(server_settings(server.port))
    # Four sessions log in before the clients start together.
    with app.app_context(), db.connection(), db.connection(), db.connection(), db.connection():
        pass
    start = threading.Barrier(CLIENTS)
    answers: list[tuple[int, bytes]] = []

    def create() -> None:
        client = app.test_client()
        start.wait()
        response = client.post(
            USERS,
            json={"email": "claim@example.com", "name": "Claim"},
            headers={"Idempotency-Key": "one-key"},
        )
        answers.append((response.status_code, response.get_data()))

    threads = [threading.Thread(target=create) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    with app.app_context(), db.connection() as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = 'one-key'")
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT COUNT(*) FROM users WHERE email = 'claim@example.com'")
        assert cursor.fetchone() == (1,)
    created = {body for status, body in answers if status == 201}
    assert len(answers) == CLIENTS
    assert len(created) == 1  # the one create, and replays of it
    assert {status for status, _ in answers} <= {201, 409}
