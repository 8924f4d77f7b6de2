"""Idempotency-Key on POST /users: a retry gets the first answer, never a second user.

Every test runs on the real emulator. States a crash or a slow request would leave (an
unanswered claim, an old one, an expired key) are made by writing the idempotency_keys row
directly, so the default lease and expiry are what is tested, not shortened ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import fresh_database
from flask import Flask
from flask.testing import FlaskClient
from lambda_events import CONTEXT, alb_event, http_event, rest_event

from bench.servers import (
    EmulatorServer,
    call,
    emulator_server_env,
    free_port,
    gunicorn,
    read_until_closed,
    server_settings,
)
from userservice import db
from userservice.auth import devkey
from userservice.idempotency import parse_key
from userservice.lambda_adapter import handle
from userservice.logs import JsonFormatter
from userservice.settings import Settings

USERS = "/api/v1/users"
ADA = {"email": "ada@example.com", "name": "Ada"}
# The time budget: a request that takes over a key after its lease is answered within it.
KILL_BOUND = 10.0


@pytest.fixture
def app(module_app: Flask) -> Flask:
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


def post(client: FlaskClient, key: str | None, body: dict[str, str] = ADA, **headers: str) -> Any:
    sent = {"Idempotency-Key": key} if key is not None else {}
    return client.post(USERS, json=body, headers={**sent, **headers})


def execute(app: Flask, sql: str, params: list[Any] | None = None) -> list[Any]:
    """Run one statement on the app's emulator, as an operator (or a crash) would change it."""
    with app.app_context(), db.connection() as conn:
        cursor = conn.cursor()
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def utc_now() -> datetime:
    """Now, as the TIMESTAMP_NTZ columns hold it (UTC, no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def answer(response: Any) -> tuple[int, bytes, str | None, str | None]:
    return (
        response.status_code,
        response.get_data(),
        response.headers.get("Location"),
        response.headers.get("ETag"),
    )


def test_a_retry_gets_the_first_answer_byte_for_byte_and_no_new_user(app, client):
    first = post(client, '"k-1"')
    again = post(client, '"k-1"')

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert answer(again) == answer(first)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert client.get(USERS).get_json() == [first.get_json()]


def create_replay_and_reuse(client: FlaskClient) -> None:
    """Four creates: one without a key, then key k-1 first, replayed, and with another body."""
    post(client, None, {"email": "bob@example.com", "name": "Bob"})
    post(client, "k-1")
    post(client, "k-1")
    post(client, "k-1", {"email": "eve@example.com", "name": "Eve"})


def test_statements_with_a_key_are_4_on_the_first_attempt_and_1_on_a_replay(client, access_log):
    create_replay_and_reuse(client)

    counts = [(r.status, r.db_statements) for r in access_log]
    assert counts == [(201, 2), (201, 4), (201, 1), (422, 1)]


def test_a_replay_is_marked_in_its_access_line_and_its_audit_line(client, access_log, audit_log):
    create_replay_and_reuse(client)

    marks = [
        [(r.status, getattr(r, "idempotent_replay", None)) for r in records]
        for records in (access_log, audit_log)
    ]
    expected = [(201, None), (201, None), (201, True), (422, None)]
    assert marks == [expected, expected]
    # As the JSON line carries it.
    assert json.loads(JsonFormatter().format(access_log[2]))["idempotent_replay"] is True


def test_the_quoted_and_the_bare_form_are_one_key():
    assert parse_key('"abc"') == parse_key("abc") == "abc"
    assert parse_key(r'"a\"b\\c"') == 'a"b\\c'
    assert parse_key("x" * 255) == "x" * 255
    assert parse_key(None) is None


def test_a_key_with_another_body_is_422_and_creates_nothing(client, assert_problem):
    first = post(client, "k-1")
    other = post(client, "k-1", {"email": "eve@example.com", "name": "Eve"})

    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert client.get(USERS).get_json() == [first.get_json()]


def test_the_same_body_in_another_key_order_or_spacing_is_the_same_request(client):
    first = post(client, "k-1")
    raw = '{ "name" : "Ada",  "email": "ada@example.com" }'
    again = client.post(
        USERS, data=raw, content_type="application/json", headers={"Idempotency-Key": "k-1"}
    )

    assert answer(again) == answer(first)


@pytest.mark.parametrize(
    "key",
    [
        "",
        '""',
        "a b",
        '"a b"',
        '"abc',
        'ab"c',
        "a\\b",
        '"abc";x=1',
        "x" * 256,
        '"' + "x" * 256 + '"',
        "caf\u00e9",
        "a\tb",
    ],
)
def test_a_malformed_key_is_400_before_any_database_work(client, access_log, assert_problem, key):
    response = post(client, key)

    assert_problem(response, 400, "IDEMPOTENCY_KEY_MALFORMED")
    assert [r.db_statements for r in access_log] == [0]


@pytest.mark.parametrize("value", ["k1, k2", "k1,k2", '"k1", "k2"', '"k1",k2', "k1,"])
def test_two_keys_in_one_value_are_400_repeated_and_write_nothing(
    app, client, access_log, assert_problem, value
):
    response = post(client, value)

    assert_problem(response, 400, "IDEMPOTENCY_KEY_REPEATED")
    assert [r.db_statements for r in access_log] == [0]
    assert client.get(USERS).get_json() == []


def test_two_key_headers_are_400_repeated(client, assert_problem):
    headers = [("Idempotency-Key", "k1"), ("Idempotency-Key", "k2")]

    response = client.post(USERS, json=ADA, headers=headers)

    assert_problem(response, 400, "IDEMPOTENCY_KEY_REPEATED")
    assert client.get(USERS).get_json() == []


def test_a_comma_inside_a_quoted_key_is_one_key(client):
    first = post(client, '"a,b"')
    again = post(client, '"a,b"')

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"


def repeated_key_events() -> dict[str, dict[str, Any]]:
    """POST events carrying two Idempotency-Keys, as each front door delivers them."""
    body = json.dumps(ADA)
    json_type = {"Content-Type": "application/json"}
    rest = rest_event(method="POST", path=USERS, headers=json_type, body=body)
    # REST (1.0): every value in multiValueHeaders, the last one in headers.
    rest["multiValueHeaders"]["Idempotency-Key"] = ["k1", "k2"]
    rest["headers"]["Idempotency-Key"] = "k2"
    alb = alb_event(
        multi_value=True, method="POST", path=USERS, headers={"content-type": "application/json"}
    )
    alb["body"] = body
    alb["multiValueHeaders"]["idempotency-key"] = ["k1", "k2"]
    # HTTP API and function URLs (2.0) join repeated headers with commas.
    joined = {"content-type": "application/json", "idempotency-key": "k1,k2"}
    return {
        "API Gateway REST (1.0)": rest,
        "ALB, multi-value headers": alb,
        "API Gateway HTTP API (2.0)": http_event(
            method="POST", raw_path=USERS, headers=joined, body=body
        ),
        "function URL": http_event(
            method="POST", raw_path=USERS, headers=joined, body=body, function_url=True
        ),
    }


@pytest.mark.parametrize("door", list(repeated_key_events()))
def test_two_keys_through_each_lambda_front_door_are_400_repeated(app, client, door):
    answer = handle(app, repeated_key_events()[door], CONTEXT)

    assert (answer["statusCode"], json.loads(answer["body"])["code"]) == (
        400,
        "IDEMPOTENCY_KEY_REPEATED",
    )
    assert client.get(USERS).get_json() == []
    assert execute(app, "SELECT COUNT(*) FROM idempotency_keys") == [(0,)]


@pytest.mark.slow
def test_two_key_header_lines_over_gunicorn_are_400_repeated(gunicorn_server):
    port, _ = gunicorn_server
    body = json.dumps({"email": "twice@example.com", "name": "Twice"}).encode()
    head = (
        f"POST {USERS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: k1\r\nIdempotency-Key: k2\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        received, _ = read_until_closed(sock, time.monotonic(), 30)

    status_line, _, rest = received.partition(b"\r\n")
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert (status_line, problem["code"]) == (
        b"HTTP/1.1 400 BAD REQUEST",
        "IDEMPOTENCY_KEY_REPEATED",
    )
    assert call(port, "GET", f"{USERS}?email=twice@example.com")[2] == []


def test_a_key_in_flight_is_409_with_retry_after(app, client, assert_problem):
    post(client, "k-1")
    execute(app, "UPDATE idempotency_keys SET status = NULL, response = NULL")

    response = post(client, "k-1")

    assert_problem(response, 409, "IDEMPOTENCY_KEY_IN_FLIGHT")
    assert response.headers["Retry-After"] == "1"


def test_an_abandoned_claim_that_wrote_its_user_is_taken_over_and_answers_the_first_201(
    app, client
):
    first = post(client, "k-1")
    lease = app.config["SETTINGS"].idempotency_lease_seconds
    abandoned = utc_now() - timedelta(seconds=lease + 1)
    execute(
        app,
        "UPDATE idempotency_keys SET status = NULL, response = NULL, claimed_at = ?",
        [abandoned.isoformat()],
    )

    retry = post(client, "k-1")

    assert (retry.status_code, retry.get_data()) == (201, first.get_data())
    assert retry.headers["Location"] == first.headers["Location"]
    assert client.get(USERS).get_json() == [first.get_json()]
    assert post(client, "k-1").headers["Idempotent-Replayed"] == "true"


def test_a_claim_younger_than_the_lease_is_not_taken_over(app, client, assert_problem):
    post(client, "k-1")
    lease = app.config["SETTINGS"].idempotency_lease_seconds
    live = utc_now() - timedelta(seconds=lease - 2)
    execute(
        app,
        "UPDATE idempotency_keys SET status = NULL, response = NULL, claimed_at = ?",
        [live.isoformat()],
    )

    assert_problem(post(client, "k-1"), 409, "IDEMPOTENCY_KEY_IN_FLIGHT")


def test_an_abandoned_claim_that_wrote_nothing_is_taken_over_and_creates_its_user(app, client):
    first = post(client, "k-1")
    execute(app, "DELETE FROM users")
    execute(
        app,
        "UPDATE idempotency_keys SET status = NULL, response = NULL, claimed_at = ?",
        ["2000-01-01T00:00:00"],
    )

    retry = post(client, "k-1")

    assert (retry.status_code, retry.get_data()) == (201, first.get_data())
    assert client.get(USERS).get_json() == [first.get_json()]


def test_a_create_that_failed_with_a_5xx_stores_nothing_and_the_retry_creates(app, client):
    execute(app, "ALTER TABLE users RENAME TO users_away")
    failed = post(client, "k-1")
    execute(app, "ALTER TABLE users_away RENAME TO users")

    retry = post(client, "k-1")

    assert failed.status_code == 500
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers
    assert client.get(USERS).get_json() == [retry.get_json()]


def test_a_4xx_answer_is_stored_and_replayed(client, make_user):
    make_user(client)
    taken = post(client, "k-1")
    again = post(client, "k-1")

    assert taken.get_json()["code"] == "EMAIL_TAKEN"
    assert answer(again) == answer(taken)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_key_lives_24_hours_by_default(app, client):
    post(client, "k-1")

    [(created, expires)] = execute(app, "SELECT created_at, expires_at FROM idempotency_keys")

    assert app.config["SETTINGS"].idempotency_key_ttl_seconds == 86400
    assert expires - created == timedelta(hours=24)


def test_an_expired_key_is_claimed_again_by_overwriting_its_row(app, client):
    post(client, "k-1")
    execute(app, "UPDATE idempotency_keys SET expires_at = ?", ["2000-01-01T00:00:00"])

    other = post(client, "k-1", {"email": "eve@example.com", "name": "Eve"})

    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other.headers
    assert execute(app, "SELECT COUNT(*), MAX(fingerprint) IS NOT NULL FROM idempotency_keys") == [
        (1, True)
    ]
    assert len(client.get(USERS).get_json()) == 2


def test_the_sweep_command_deletes_only_expired_keys(app, client):
    post(client, "k-1")
    post(client, "k-2", {"email": "eve@example.com", "name": "Eve"})
    execute(
        app,
        "UPDATE idempotency_keys SET expires_at = ? WHERE idem_key = 'k-1'",
        ["2000-01-01T00:00:00"],
    )

    result = app.test_cli_runner().invoke(args=["sweep-idempotency-keys"])

    assert result.exit_code == 0, result.output
    assert result.output == "Deleted 1 expired Idempotency-Key rows.\n"
    assert execute(app, "SELECT idem_key FROM idempotency_keys") == [("k-2",)]


def test_the_keys_of_two_subjects_never_collide(make_app, settings):
    app = make_app(dataclasses.replace(settings, auth_issuer="dev"))
    client = app.test_client()
    scopes = ["users:read", "users:write"]
    ada, eve = (
        {"Authorization": f"Bearer {devkey.mint(app.config['SETTINGS'], scopes, 600, who)}"}
        for who in ("ada", "eve")
    )

    first = post(client, "k-1", **ada)
    theirs = post(client, "k-1", {"email": "eve@example.com", "name": "Eve"}, **eve)

    assert (first.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert answer(post(client, "k-1", **ada)) == answer(first)
    assert answer(post(client, "k-1", {"email": "eve@example.com", "name": "Eve"}, **eve)) == (
        answer(theirs)
    )
    assert execute(app, "SELECT scope FROM idempotency_keys ORDER BY scope") == [
        ("sub:ada",),
        ("sub:eve",),
    ]


def test_the_spec_documents_the_header_the_codes_and_the_replay_header(client):
    spec = client.get("/openapi.json").get_json()
    create = spec["paths"]["/api/v1/users"]["post"]
    parameter = spec["components"]["parameters"]["IDEMPOTENCY_KEY"]

    assert {"$ref": "#/components/parameters/IDEMPOTENCY_KEY"} in create["parameters"]
    assert (parameter["name"], parameter["in"], parameter.get("required", False)) == (
        "Idempotency-Key",
        "header",
        False,
    )
    assert "Idempotent-Replayed" in create["responses"]["201"]["headers"]
    conflict = spec["components"]["responses"]["CONFLICT"]["content"]
    assert "IDEMPOTENCY_KEY_IN_FLIGHT" in conflict["application/problem+json"]["examples"]
    invalid = spec["components"]["responses"]["UNPROCESSABLE_ENTITY"]["content"]
    assert "IDEMPOTENCY_KEY_REUSED" in invalid["application/problem+json"]["examples"]


def test_the_spec_states_the_retention_the_setting_has_by_default(client):
    spec = client.get("/openapi.json").get_json()
    described = spec["components"]["parameters"]["IDEMPOTENCY_KEY"]["description"]
    hours = Settings().idempotency_key_ttl_seconds / 3600

    assert f"IDEMPOTENCY_KEY_TTL_SECONDS ({hours:g} h by default)" in described


def test_the_spec_documents_retry_after_on_the_409_for_a_key_in_flight(client):
    spec = client.get("/openapi.json").get_json()
    create = spec["paths"]["/api/v1/users"]["post"]["responses"]["409"]
    conflict = spec["components"]["responses"]["CONFLICT"]

    assert create == {"$ref": "#/components/responses/CONFLICT"}
    assert conflict["headers"]["Retry-After"] == {
        "description": (
            "Seconds to wait before trying again; sent with IDEMPOTENCY_KEY_IN_FLIGHT (1 s)."
        ),
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    }


def test_every_problem_example_names_a_path_that_answers_with_its_code(app, client):
    spec = client.get("/openapi.json").get_json()
    routes = app.url_map.bind("localhost")
    examples = [
        (code, example["value"]["instance"])
        for response in spec["components"]["responses"].values()
        for code, example in response["content"]["application/problem+json"]["examples"].items()
    ]

    assert len(examples) > 10
    for code, instance in examples:
        matched = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if routes.test(instance, m)]
        if code == "NOT_FOUND":
            assert matched == [], instance
        else:
            assert matched, (code, instance)
            assert instance.startswith("/api/v1/users"), (code, instance)
        if code.startswith("IDEMPOTENCY_KEY_"):  # only POST /api/v1/users reads the header
            assert instance == USERS


def raw_post(port: int, key: str, body: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST a create with a key over a new connection; return status, headers and raw body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        conn.request("POST", USERS, json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def settle(port: int, key: str, body: dict[str, str], seconds: float) -> tuple[int, bytes]:
    """Retry a create with its key while it is in flight, as a client told Retry-After would."""
    deadline = time.monotonic() + seconds
    while True:
        status, headers, raw = raw_post(port, key, body)
        in_flight = status == 409 and json.loads(raw)["code"] == "IDEMPOTENCY_KEY_IN_FLIGHT"
        if not in_flight or time.monotonic() > deadline:
            return status, raw
        time.sleep(int(headers["Retry-After"]))


def server_env(port: int) -> dict[str, str]:
    """The environment that points the service at the emulator server, all else default."""
    return emulator_server_env(
        port,
        ENVIRONMENT="development",
        SNOWFLAKE_SECRET_ARN="",
        AUTH_ISSUER="",
        LOG_LEVEL="WARNING",
    )


def unanswered(app: Flask) -> int:
    return int(execute(app, "SELECT COUNT(*) FROM idempotency_keys WHERE status IS NULL")[0][0])


def lost_create(port: int, body: dict[str, str]) -> None:
    """Send the create whose worker dies: its client gets no answer."""
    with pytest.raises(ConnectionError):
        raw_post(port, "k", body)


@pytest.mark.slow
def test_a_retry_after_the_worker_was_killed_mid_create_gets_the_one_user(
    make_app, emulator_server, tmp_path
):
    """Kill the worker by PID once its claim is written, with the database paused under it."""
    admin = make_app(server_settings(emulator_server.port))
    with admin.app_context():
        db.create_schema()
    port = free_port()
    body = {"email": "ada@example.com", "name": "Ada"}
    with gunicorn(server_env(emulator_server.port), tmp_path / "gunicorn.log", port=port) as master:
        assert call(port, "GET", "/health/ready")[0] == 200
        thread = threading.Thread(target=lost_create, args=(port, body))
        thread.start()
        while not unanswered(admin):
            time.sleep(0.002)
        emulator_server.pause()  # the create's next statement waits; nothing more is answered
        for worker_pid in master.workers():  # the one serving the create among them
            os.kill(worker_pid, signal.SIGKILL)
        emulator_server.resume()
        thread.join(timeout=30)
        assert unanswered(admin) == 1  # the dead worker's claim is left in flight

        started = time.monotonic()
        status, _, raw = raw_post(port, "k", body)
        assert (status, json.loads(raw)["code"]) == (409, "IDEMPOTENCY_KEY_IN_FLIGHT")
        lease = Settings().idempotency_lease_seconds
        status, raw = settle(port, "k", body, lease + KILL_BOUND)
        waited = time.monotonic() - started

        assert status == 201
        assert waited < lease + KILL_BOUND
        assert call(port, "GET", f"{USERS}?email=ada@example.com")[2] == [json.loads(raw)]
        assert raw_post(port, "k", body)[::2] == (201, raw)


class StallingProxy:
    """A TCP relay to an emulator server that SIGSTOPs the server at a chosen statement.

    Once armed with `at=n`, the n-th statement the service sends from then on (a connector
    query request) stops the server before the relay hands that statement over: it waits,
    unread, in the stopped server's socket, as at a Snowflake that froze between two of a
    request's statements, and runs when the server resumes.
    """

    MARKER = b"/queries/v1/query-request"

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.seen = 0
        self.stop_at: int | None = None
        self.paused = False
        threading.Thread(target=self.accept, daemon=True).start()

    def arm(self, at: int) -> None:
        with self.lock:
            self.seen, self.stop_at, self.paused = 0, at, False

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.server.port))
            threading.Thread(target=self.pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, False), daemon=True).start()

    def pump(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        tail = b""
        try:
            while data := source.recv(65536):
                if outbound:
                    window = tail + data
                    self.count(window.count(self.MARKER) - tail.count(self.MARKER))
                    tail = window[-len(self.MARKER) :]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def count(self, statements: int) -> None:
        with self.lock:
            for _ in range(statements):
                self.seen += 1
                if self.seen == self.stop_at and not self.paused:
                    self.server.pause()
                    self.paused = True

    def close(self) -> None:
        self.listener.close()


# (the statement the server stops at, the stalled request's answer, the statements it ran)
STALLS = {
    "at the claim": (2, 503, 2),
    "at the insert": (3, 503, 3),  # the release after it would outrun the budget: skipped
    "at the store": (4, 201, 4),  # the user is written: its answer stands
}


@pytest.mark.slow
@pytest.mark.parametrize("stall", list(STALLS))
def test_a_keyed_create_on_a_stalled_server_answers_in_the_budget_and_its_retry_creates_once(
    make_app, emulator_server, access_log, stall
):
    """On the default settings, the keyed create's 4 statements share the 10 s budget."""
    stop_at, status, statements = STALLS[stall]
    admin = make_app(server_settings(emulator_server.port))
    with admin.app_context():
        db.create_schema()
    proxy = StallingProxy(emulator_server)
    app = make_app(server_settings(proxy.port))
    client = app.test_client()
    assert client.get(USERS).status_code == 200  # the pool is up, its session logged in
    with app.app_context(), db.connection(), db.connection():
        pass  # two sessions wait in the pool, as after two concurrent requests
    body = {"email": "stall@example.com", "name": "Stall"}

    proxy.arm(at=stop_at)  # find is the 1st statement, then claim, insert, store
    started = time.monotonic()
    response = post(client, "stall-1", body)
    elapsed = time.monotonic() - started
    emulator_server.resume()

    assert proxy.paused
    assert response.status_code == status
    if status == 503:
        assert response.get_json()["code"] == "DATABASE_UNAVAILABLE"
    assert elapsed < KILL_BOUND, f"answered after {elapsed:.1f} s"
    stalled = response.headers["X-Request-ID"]
    assert [r.db_statements for r in access_log if r.request_id == stalled] == [statements]
    # Once the emulator_server is back the retry is answered: in flight until the lease passes, then
    # a create with the claim's user id (the stalled insert may have written it), never two.
    deadline = time.monotonic() + Settings().idempotency_lease_seconds + KILL_BOUND
    while (retried := post(client, "stall-1", body)).status_code == 409:
        assert retried.get_json()["code"] == "IDEMPOTENCY_KEY_IN_FLIGHT"
        assert time.monotonic() < deadline, "the key stayed claimed"
        time.sleep(int(retried.headers["Retry-After"]))
    replay = post(client, "stall-1", body)

    assert retried.status_code == 201
    assert client.get(f"{USERS}?email=stall@example.com").get_json() == [retried.get_json()]
    assert (replay.status_code, replay.get_data()) == (201, retried.get_data())
    assert replay.headers["Idempotent-Replayed"] == "true"
    if status == 201:
        assert retried.get_data() == response.get_data()
    proxy.close()
