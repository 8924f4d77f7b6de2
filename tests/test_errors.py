"""Every error from every layer is a problem document with nothing internal in it."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from snowflake.connector.errors import OperationalError

from userservice import db


def test_unknown_route_is_404_problem(shared_client, assert_problem):
    assert_problem(shared_client.get("/api/v1/nope"), 404, "NOT_FOUND")


def test_wrong_method_is_405_with_allow(shared_client, assert_problem):
    response = shared_client.delete("/api/v1/users")

    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, POST"


def test_body_over_the_limit_is_413(settings, make_app, assert_problem):
    app = make_app(dataclasses.replace(settings, max_content_length=100))
    client = app.test_client()

    response = client.post("/api/v1/users", json={"email": "a@x.io", "name": "n" * 200})

    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(shared_client, content_type, assert_problem):
    response = shared_client.post(
        "/api/v1/users", data='{"email": "a@x.io", "name": "A"}', content_type=content_type
    )

    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("body", [b"{bad", b'{"email": "a@x.io",', b"\xff\xfe", b"[" * 10000])
def test_malformed_json_is_400(shared_client, body, assert_problem):
    response = shared_client.post("/api/v1/users", data=body, content_type="application/json")

    assert_problem(response, 400, "MALFORMED_JSON")


def test_validation_error_is_422_with_errors(shared_client, assert_problem):
    body = assert_problem(
        shared_client.post("/api/v1/users", json={"name": "A"}), 422, "VALIDATION_ERROR"
    )

    assert body["errors"] == {"email": ["Missing data for required field."]}


def test_an_unexpected_exception_is_500_without_internals(app, assert_problem):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret-password at db.internal:443 SELECT * FROM users")

    response = app.test_client().get("/boom")

    body = assert_problem(response, 500, "INTERNAL_ERROR")
    text = response.get_data(as_text=True)
    for leak in ("secret-password", "db.internal", "Traceback", "SELECT"):
        assert leak not in text
    assert body["detail"] == "An unexpected error occurred; quote the request_id."


def test_a_database_that_cannot_connect_is_503_with_retry_after(
    account_settings, make_app, assert_problem
):
    def connect():
        raise OperationalError(msg="could not reach db.internal.example:443 password=x")

    # The request waits the pool's timeout for a connection that never comes: 0.2 s, not 3.
    app = make_app(dataclasses.replace(account_settings, db_pool_timeout=0.2), connect=connect)

    response = app.test_client().get("/api/v1/users/1")

    body = assert_problem(response, 503, "DATABASE_UNAVAILABLE")
    assert response.headers["Retry-After"] == "5"
    assert "db.internal" not in response.get_data(as_text=True)
    assert body["detail"] == "The database is unavailable; retry."


def test_a_pool_that_stays_busy_past_its_timeout_is_503(settings, make_app, assert_problem):
    app = make_app(dataclasses.replace(settings, db_pool_max_connections=1, db_pool_timeout=0.2))
    held, release = threading.Event(), threading.Event()

    def hold():
        with app.app_context(), db.connection():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        response = app.test_client().get("/api/v1/users")
    finally:
        release.set()
        holder.join()

    assert_problem(response, 503, "DATABASE_UNAVAILABLE")
    assert db.get_from(app).pool.get_stats()["timeouts"] == 1
    assert app.test_client().get("/api/v1/users").status_code == 200
