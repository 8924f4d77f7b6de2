"""The service under gunicorn, with the project's gunicorn.conf.py, over real HTTP."""

from __future__ import annotations

import json

import pytest

from bench.servers import call, emulator_env, free_port, gunicorn

pytestmark = pytest.mark.slow


def test_create_read_delete_over_http_and_data_survives_a_restart(tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with gunicorn(emulator_env(tmp_path, LOG_LEVEL="INFO"), log, port=port) as server:
        status, headers, created = call(
            port, "POST", "/api/v1/users", {"email": "ada@example.com", "name": "Ada"}
        )
        assert status == 201
        assert headers["Location"] == f"/api/v1/users/{created['id']}"
        assert call(port, "GET", headers["Location"])[2] == created
    first_line = json.loads(server.output().splitlines()[0])
    assert first_line["message"] == (
        "using the embedded Snowflake emulator (fakesnow): one worker, 1000 connections; "
        f"data in {tmp_path}"
    )

    with gunicorn(emulator_env(tmp_path, LOG_LEVEL="INFO"), log, port=port):
        status, _, read = call(port, "GET", f"/api/v1/users/{created['id']}")
        assert (status, read) == (200, created)
        assert call(port, "DELETE", f"/api/v1/users/{created['id']}")[0] == 204
        assert call(port, "GET", f"/api/v1/users/{created['id']}")[0] == 404


def test_a_worker_closes_its_connection_pool_when_it_exits(tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn(emulator_env(tmp_path, LOG_LEVEL="INFO"), log) as server:
        assert call(server.port, "GET", "/api/v1/users")[0] == 200
        (worker,) = server.workers()
    lines = server.output().splitlines()
    messages = [json.loads(line)["message"] for line in lines if line.startswith("{")]
    assert f"closed the connection pool of process {worker}" in messages
