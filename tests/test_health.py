"""Liveness and readiness probes."""

from __future__ import annotations

import dataclasses

from conftest import captured
from snowflake.connector.errors import OperationalError


def test_liveness_touches_no_database(account_settings, make_app):
    def connect():
        raise AssertionError("liveness must not connect")

    response = make_app(account_settings, connect=connect).test_client().get("/health")

    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readiness_answers_only_its_status_and_logs_the_pool(client):
    with captured("userservice.health") as records:
        response = client.get("/health/ready")

    assert (response.status_code, response.get_json()) == (200, {"status": "ready"})
    (record,) = records
    assert record.pool == {
        "min_size": 1,
        "max_size": 8,
        "open": 1,
        "idle": 1,
        "in_use": 0,
        "waiting": 0,
        "connecting": 0,
        "checking": 0,
        "created": 1,
        "discarded": 0,
        "timeouts": 0,
        "checkouts": record.pool["checkouts"],
        "connect_failures": 0,
        "abandoned": 0,
    }


def test_readiness_is_503_when_the_database_is_unreachable(account_settings, make_app):
    def connect():
        raise OperationalError(msg="unreachable")

    # The probe waits its timeout for a connection that never comes: 0.2 s, not 2.
    app = make_app(dataclasses.replace(account_settings, db_ready_timeout=0.2), connect=connect)

    response = app.test_client().get("/health/ready")

    assert response.status_code == 503
    assert response.get_json()["code"] == "DATABASE_UNAVAILABLE"
    assert app.test_client().get("/health").status_code == 200
