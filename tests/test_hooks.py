"""Request IDs, timing headers and the access log."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid

import pytest


def test_a_sane_caller_request_id_is_echoed(shared_client):
    response = shared_client.get("/health", headers={"X-Request-ID": "abc-123_x.y:z"})

    assert response.headers["X-Request-ID"] == "abc-123_x.y:z"


@pytest.mark.parametrize("given", ["", "has space", "a" * 129, "semi;colon", "é"])
def test_an_insane_request_id_is_replaced_by_a_uuid4(shared_client, given):
    response = shared_client.get("/health", headers={"X-Request-ID": given})

    assert uuid.UUID(response.headers["X-Request-ID"]).version == 4


def test_the_request_id_is_on_error_responses_and_in_the_body(shared_client):
    response = shared_client.get("/api/v1/users/9", headers={"X-Request-ID": "req-9"})

    assert response.headers["X-Request-ID"] == "req-9"
    assert response.get_json()["request_id"] == "req-9"


def test_timing_headers_report_app_and_db_time(client):
    response = client.get("/api/v1/users")

    seconds = float(response.headers["X-Process-Time"])
    match = re.fullmatch(r"app;dur=([\d.]+), db;dur=([\d.]+)", response.headers["Server-Timing"])
    assert match
    app_ms, db_ms = float(match[1]), float(match[2])
    assert 0 < db_ms <= app_ms
    assert abs(app_ms / 1000 - seconds) < 0.001


def test_health_reports_zero_db_time(client):
    assert client.get("/health").headers["Server-Timing"].endswith("db;dur=0.00")


def test_one_access_line_per_request_with_its_figures(client, access_log):
    client.get("/api/v1/users/5", headers={"X-Request-ID": "r-5"})

    assert len(access_log) == 1
    record = access_log[0]
    assert (record.request_id, record.method, record.path, record.status, record.db_statements) == (
        "r-5",
        "GET",
        "/api/v1/users/5",
        404,
        1,
    )
    assert record.duration_ms >= record.db_ms > 0


def test_the_access_line_is_json_on_stdout(settings, capsys, make_app):
    app = make_app(dataclasses.replace(settings, log_level="INFO"))
    capsys.readouterr()
    app.test_client().get("/health", headers={"X-Request-ID": "r-1"})

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    access = [line for line in lines if line["logger"] == "userservice.access"]
    assert len(access) == 1
    assert {
        k: access[0][k]
        for k in ("level", "message", "request_id", "method", "path", "status", "db_statements")
    } == {
        "level": "INFO",
        "message": "request",
        "request_id": "r-1",
        "method": "GET",
        "path": "/health",
        "status": 200,
        "db_statements": 0,
    }
    assert set(access[0]) >= {"timestamp", "duration_ms", "db_ms"}
