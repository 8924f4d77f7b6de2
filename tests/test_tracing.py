"""Trace context and OpenTelemetry spans: one trace from the caller to each statement.

The OpenTelemetry SDK, with an in-memory exporter, is installed as the process's tracer
provider here, as a team would install theirs: the service's code is the same with or without
it. What the service does with no SDK at all is checked in a fresh interpreter.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import fresh_database
from flask import g
from lambda_events import CONTEXT, rest_event
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bench.servers import ROOT
from userservice import db
from userservice.auth import devkey
from userservice.deadline import handle_in_time
from userservice.lambda_adapter import handle

USERS = "/api/v1/users"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
TRACERESPONSE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@pytest.fixture
def app(module_app):
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


@pytest.fixture(scope="session")
def memory() -> InMemorySpanExporter:
    """The SDK as the global tracer provider (one per process), exporting to memory."""
    exporter = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(sdk)
    return exporter


@pytest.fixture
def exporter(memory: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test."""
    memory.clear()
    yield memory
    memory.clear()


def by_start(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return sorted(spans, key=lambda span: span.start_time or 0)


def hex_ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    """The span's trace id, its id and its parent's id, as W3C writes them."""
    own = span.get_span_context()
    parent = f"{span.parent.span_id:016x}" if span.parent else None
    return f"{own.trace_id:032x}", f"{own.span_id:016x}", parent


def test_a_traceparent_makes_one_trace_from_the_caller_to_each_statement(client, exporter):
    response = client.post(
        USERS,
        json={"email": "ada@example.com", "name": "Ada"},
        headers={"traceparent": TRACEPARENT},
    )

    server, *statements = by_start(exporter.get_finished_spans())
    trace_id, server_id, parent = hex_ids(server)
    assert (trace_id, parent) == (TRACE_ID, CALLER_SPAN)
    assert response.headers["traceresponse"] == f"00-{TRACE_ID}-{server_id}-01"
    assert (server.name, server.kind, server.status.status_code) == (
        "POST /api/v1/users",
        SpanKind.SERVER,
        StatusCode.UNSET,
    )
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/api/v1/users",
        "http.response.status_code": 201,
    }
    assert [(s.name, s.kind, hex_ids(s)[::2]) for s in statements] == [
        ("next_user_id", SpanKind.CLIENT, (TRACE_ID, server_id)),
        ("insert_user", SpanKind.CLIENT, (TRACE_ID, server_id)),
    ]
    insert = dict(statements[1].attributes or {})
    query_id = insert.pop("db.snowflake.query_id")
    assert re.fullmatch(r"[0-9a-f-]{36}", str(query_id))
    assert insert == {
        "db.system": "snowflake",
        "userservice.sql_file": "insert_user.sql",
        "db.response.returned_rows": 1,
    }
    assert all(s.end_time and s.start_time and s.end_time > s.start_time for s in statements)


def test_no_email_or_token_reaches_any_span_attribute(make_app, settings, exporter):
    app = make_app(dataclasses.replace(settings, auth_issuer="dev"))
    token = devkey.mint(app.config["SETTINGS"], ["users:read", "users:write"], 600, "ada-sub")
    headers = {"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT}
    client = app.test_client()

    client.post(USERS, json={"email": "Secret.Ada@Example.com", "name": "Ada"}, headers=headers)
    client.get(USERS, query_string={"email": "secret.ada@example.com"}, headers=headers)

    spans = exporter.get_finished_spans()
    values = json.dumps([dict(s.attributes or {}) for s in spans] + [s.name for s in spans])
    assert "secret" not in values.lower()
    assert token[:20] not in values  # nor any of the token
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert [(s.attributes or {}).get("enduser.id") for s in servers] == ["ada-sub", "ada-sub"]


@pytest.mark.parametrize(
    "header",
    [
        "zz",
        f"00-{'0' * 32}-{CALLER_SPAN}-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"ff-{TRACE_ID}-{CALLER_SPAN}-01",
        f"00-{TRACE_ID.upper()}-{CALLER_SPAN}-01",
        f"00-{TRACE_ID}-{CALLER_SPAN}-01-extra",
        f"00-{TRACE_ID}-{CALLER_SPAN}",
        "\u00e9" * 60,
    ],
)
def test_a_malformed_traceparent_starts_a_new_trace_and_is_never_refused(client, exporter, header):
    response = client.get(f"{USERS}/7", headers={"traceparent": header, "tracestate": "=,=;"})

    assert response.status_code == 404
    [server, _get] = by_start(exporter.get_finished_spans())
    trace_id, server_id, parent = hex_ids(server)
    flags = f"{server.get_span_context().trace_flags:02x}"
    assert (trace_id != TRACE_ID, parent, int(flags, 16) & 1) == (True, None, 1)
    assert response.headers["traceresponse"] == f"00-{trace_id}-{server_id}-{flags}"


def test_a_failed_statement_is_an_error_span_that_names_no_message(app, client, exporter):
    with app.app_context(), db.connection() as conn:
        conn.cursor().execute("DROP TABLE users")

    response = client.get(f"{USERS}/7", headers={"traceparent": TRACEPARENT})

    assert response.status_code == 500
    server, get = by_start(exporter.get_finished_spans())
    assert (server.status.status_code, get.status.status_code) == (StatusCode.ERROR,) * 2
    assert get.status.description == "ProgrammingError 002003 (42S02)"
    assert (get.attributes or {})["error.type"] == "ProgrammingError"
    assert list(get.events) == []


def test_every_log_line_of_a_request_carries_its_trace_and_span(make_app, settings, capsys):
    app = make_app(dataclasses.replace(settings, log_level="INFO"))
    capsys.readouterr()

    response = app.test_client().post(
        USERS,
        json={"email": "ada@example.com", "name": "Ada"},
        headers={"traceparent": TRACEPARENT},
    )

    answered = TRACERESPONSE.fullmatch(response.headers["traceresponse"])
    assert answered is not None
    span_id = answered.group(2)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["logger"] for line in lines} == {"userservice.audit", "userservice.access"}
    assert {(line["trace_id"], line["span_id"]) for line in lines} == {(TRACE_ID, span_id)}


def test_the_query_tag_names_the_trace(make_app, settings):
    app = make_app(settings)  # an app of its own: the test adds a hook to it
    client = app.test_client()
    tags: list[str] = []

    @app.after_request
    def keep(response: Any) -> Any:
        tags.append(g.get("query_tag"))
        return response

    client.get(f"{USERS}/7", headers={"traceparent": TRACEPARENT})

    assert json.loads(tags[0])["trace_id"] == TRACE_ID


def test_on_lambda_the_access_line_carries_the_x_ray_trace_root(app, access_log, monkeypatch):
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f;Sampled=1"
    )

    answer = handle(app, rest_event(path=f"{USERS}/7"), CONTEXT)

    assert answer["statusCode"] == 404
    [line] = access_log
    assert line.xray_trace_id == "1-5759e988-bd862e3fe1be46a994272793"


NO_SDK = """
import json, sys, tempfile
from userservice import create_app
from userservice.settings import Settings
app = create_app(Settings(emulator_data_dir=tempfile.mkdtemp(), log_level="WARNING"))
client = app.test_client()
given = client.get("/health", headers={"traceparent": sys.argv[1]}).headers["traceresponse"]
fresh = client.get("/health").headers["traceresponse"]
print(json.dumps([given, fresh, sorted(m for m in sys.modules if m.startswith("opentelemetry"))]))
"""


def test_with_no_sdk_the_trace_still_continues_and_nothing_is_exported():
    run = subprocess.run(
        [sys.executable, "-c", NO_SDK, TRACEPARENT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    given, fresh, modules = json.loads(run.stdout.splitlines()[-1])

    continued = TRACERESPONSE.fullmatch(given)
    new = TRACERESPONSE.fullmatch(fresh)
    assert continued is not None
    assert new is not None
    assert continued.groups()[::2] == (TRACE_ID, "01")
    assert continued.group(2) != CALLER_SPAN
    assert (new.group(1) != TRACE_ID, new.group(3)) == (True, "00")
    assert not [m for m in modules if m.startswith("opentelemetry.sdk")]


def test_on_lambda_the_server_span_is_a_child_of_the_invocation_span(app, exporter):
    outer_tracer = trace.get_tracer("adot-layer")
    with outer_tracer.start_as_current_span("invocation") as outer:
        answer = handle_in_time(app, rest_event(path=f"{USERS}/7"), CONTEXT)
    invocation = outer.get_span_context()

    assert answer["statusCode"] == 404
    spans = by_start(exporter.get_finished_spans())
    assert [s.name for s in spans] == ["invocation", "GET /api/v1/users/<id:user_id>", "get_user"]
    _, server, statement = spans
    trace_id, server_id, parent = hex_ids(server)
    assert (trace_id, parent) == (f"{invocation.trace_id:032x}", f"{invocation.span_id:016x}")
    assert hex_ids(statement)[::2] == (trace_id, server_id)


def test_a_traceparent_wins_over_the_invocation_span(app, exporter):
    with trace.get_tracer("adot-layer").start_as_current_span("invocation"):
        handle_in_time(
            app, rest_event(path=f"{USERS}/7", headers={"traceparent": TRACEPARENT}), CONTEXT
        )

    server = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert hex_ids(server)[::2] == (TRACE_ID, CALLER_SPAN)
