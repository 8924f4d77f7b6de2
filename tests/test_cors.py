"""Security headers on every response, and CORS from the allow-list."""

from __future__ import annotations

import dataclasses

import pytest

from userservice import cors, idempotency, tracing
from userservice.settings import Settings, SettingsError

ORIGIN = "https://app.example.com"


def cors_client(make_app, settings, **changes):
    return make_app(dataclasses.replace(settings, **changes)).test_client()


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/users/9", "/health", "/nope"])
def test_every_api_response_says_nosniff_and_no_store(shared_client, path):
    response = shared_client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_docs_assets_may_be_cached(shared_client):
    response = shared_client.get("/static/redoc/redoc.standalone.js")

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in response.headers.get("Cache-Control", "")
    response.close()


def test_without_an_allow_list_no_cors_headers_are_sent(shared_client):
    response = shared_client.get("/api/v1/users", headers={"Origin": ORIGIN})

    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["Vary"] == "Origin"


def test_an_allowed_origin_may_read_the_response_and_its_headers(make_app, settings):
    client = cors_client(make_app, settings, cors_origins=f"{ORIGIN}, https://b.example.com")

    response = client.get("/api/v1/users", headers={"Origin": ORIGIN})

    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Expose-Headers"].split(", ") == [
        "ETag",
        "Location",
        "X-Pagination",
        "X-Request-ID",
        "X-Process-Time",
        "Server-Timing",
        "Retry-After",
        "WWW-Authenticate",
        "Idempotent-Replayed",
        "traceresponse",
    ]
    assert "Access-Control-Allow-Credentials" not in response.headers


def names(header: str) -> set[str]:
    return {name.strip().lower() for name in header.split(",")}


def test_a_preflight_allows_the_idempotency_key_and_the_trace_context(make_app, settings):
    client = cors_client(make_app, settings, cors_origins=ORIGIN)
    asked = "content-type, idempotency-key, traceparent, tracestate"

    response = client.options(
        "/api/v1/users",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
    )

    assert response.status_code == 204
    assert names(asked) <= names(response.headers["Access-Control-Allow-Headers"])
    assert idempotency.HEADER.lower() in names(response.headers["Access-Control-Allow-Headers"])


def test_a_browser_may_read_the_replay_marker_and_the_traceresponse(make_app, settings):
    client = cors_client(make_app, settings, cors_origins=ORIGIN)
    sent = {"Origin": ORIGIN, "Idempotency-Key": "cors-1"}
    body = {"email": "cors@example.com", "name": "Cors"}

    first = client.post("/api/v1/users", json=body, headers=sent)
    replay = client.post("/api/v1/users", json=body, headers=sent)

    assert (first.status_code, replay.status_code) == (201, 201)
    exposed = names(replay.headers["Access-Control-Expose-Headers"])
    # The names the service really sets, read from the modules that set them.
    assert replay.headers[idempotency.REPLAYED] == "true"
    assert tracing.RESPONSE_HEADER in replay.headers
    assert {idempotency.REPLAYED.lower(), tracing.RESPONSE_HEADER.lower()} <= exposed


def test_another_origin_gets_no_cors_headers(make_app, settings):
    client = cors_client(make_app, settings, cors_origins=ORIGIN)

    response = client.get("/api/v1/users", headers={"Origin": "https://evil.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_preflight_from_an_allowed_origin_is_answered_204(make_app, settings):
    client = cors_client(make_app, settings, cors_origins=ORIGIN, cors_allow_credentials=True)

    response = client.options(
        "/api/v1/users/1",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "content-type, if-match",
        },
    )

    assert (response.status_code, response.data, response.content_type) == (204, b"", None)
    assert {
        k: response.headers[k]
        for k in (
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Methods",
            "Access-Control-Allow-Headers",
            "Access-Control-Allow-Credentials",
            "Access-Control-Max-Age",
        )
    } == {
        "Access-Control-Allow-Origin": ORIGIN,
        "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
        "Access-Control-Allow-Headers": (
            "Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID, "
            "Idempotency-Key, traceparent, tracestate"
        ),
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Max-Age": "600",
    }


def test_a_preflight_from_another_origin_gets_no_permission(make_app, settings):
    client = cors_client(make_app, settings, cors_origins=ORIGIN)

    response = client.options(
        "/api/v1/users",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 204
    assert not any(name.startswith("Access-Control-Allow") for name, _ in response.headers)


def test_a_wildcard_without_credentials_allows_any_origin(make_app, settings):
    client = cors_client(make_app, settings, cors_origins="*")

    response = client.get("/health", headers={"Origin": "https://anywhere.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CORS_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"},
            "CORS_ORIGINS must list origins, not *, with CORS_ALLOW_CREDENTIALS",
        ),
        (
            {"CORS_ORIGINS": "app.example.com"},
            "CORS_ORIGINS: 'app.example.com' is not scheme://host[:port]",
        ),
        (
            {"CORS_ALLOW_CREDENTIALS": "maybe"},
            "CORS_ALLOW_CREDENTIALS must be true or false, got 'maybe'",
        ),
    ],
)
def test_unsafe_or_malformed_cors_settings_stop_the_start(environ, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ, env_file=None)

    assert str(caught.value) == message


def test_production_runs_without_debug(make_app, production_settings):
    app = make_app(production_settings)

    @app.get("/boom")
    def boom():
        raise RuntimeError("internal detail")

    response = app.test_client().get("/boom")

    assert (app.debug, response.status_code) == (False, 500)
    assert "internal detail" not in response.get_data(as_text=True)
    assert app.test_client().get("/docs").status_code == 404


def test_every_header_the_service_reads_or_sets_for_clients_is_allowed_or_exposed():
    """A browser must be able to send a create's key and trace context, and read their answers."""
    allowed = {h.lower() for h in cors.ALLOW_HEADERS.split(", ")}
    exposed = {h.lower() for h in cors.EXPOSE_HEADERS.split(", ")}

    assert {idempotency.HEADER.lower(), "traceparent", "tracestate"} <= allowed
    assert {idempotency.REPLAYED.lower(), tracing.RESPONSE_HEADER.lower()} <= exposed
