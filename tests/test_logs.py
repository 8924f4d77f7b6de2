"""Logs: one JSON schema (or readable text), the request on every line, no values leaked."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from datetime import UTC, date, datetime
from http import HTTPStatus

import pytest
from emf import parse_emf

from userservice import db, logs


def lines_of_text(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def lines_of(capsys) -> list[dict]:
    return lines_of_text(capsys.readouterr().out)


def test_every_line_logged_in_a_request_carries_its_request_id(make_app, settings, capsys):
    app = make_app(dataclasses.replace(settings, log_level="INFO"))
    with app.app_context(), db.connection() as conn:  # a statement will now fail: a 500
        cursor = conn.cursor()
        cursor.execute("DROP TABLE users")
        cursor.close()
    capsys.readouterr()

    response = app.test_client().get(
        "/api/v1/users?email=s3cret-value@example.com", headers={"X-Request-ID": "req-77"}
    )

    assert response.status_code == 500
    lines = lines_of(capsys)
    error = next(line for line in lines if line["level"] == "ERROR")
    assert (error["logger"], error["request_id"]) == ("userservice.problems", "req-77")
    assert error["message"].startswith("unhandled ")
    assert "Traceback" in error["exception"]
    assert all(line["request_id"] == "req-77" for line in lines)
    assert "s3cret-value" not in json.dumps(error)


def test_the_access_line_names_the_route_template_and_the_pool_wait(client, access_log):
    client.get("/api/v1/users/42")

    (record,) = access_log
    assert record.route == "GET /api/v1/users/<id:user_id>"
    assert record.pool_wait_ms >= 0
    assert not hasattr(record, "cold_start")


def test_an_unmatched_route_is_one_route_not_its_path(client, access_log):
    client.get("/no/such/thing")

    assert access_log[0].route == "GET UNMATCHED"


def test_text_format_is_one_readable_line_with_the_fields(make_app, settings, capsys):
    app = make_app(dataclasses.replace(settings, log_level="INFO", log_format="text"))
    capsys.readouterr()

    app.test_client().get("/health", headers={"X-Request-ID": "t-1"})

    (line,) = [x for x in capsys.readouterr().out.splitlines() if "userservice.access" in x]
    assert " INFO    userservice.access [t-1] request method=GET route=GET /health " in line
    assert " status=200 " in line


def test_emf_lines_are_emitted_per_request_when_enabled(make_app, settings, capsys):
    app = make_app(dataclasses.replace(settings, log_level="WARNING", metrics_emf=True))
    client = app.test_client()
    capsys.readouterr()

    client.get("/api/v1/users")
    client.get("/api/v1/users/999")

    entries = [parse_emf(line) for line in capsys.readouterr().out.splitlines()]
    assert [
        (e["Route"], e["StatusCode"], e["Errors4xx"], e["DatabaseStatements"]) for e in entries
    ] == [
        ("GET /api/v1/users", "200", 0, 1),
        (entries[1]["Route"], "404", 1, 1),
    ]
    assert entries[1]["Route"] == "GET /api/v1/users/<id:user_id>"
    assert (entries[0]["PoolInUse"], entries[0]["PoolWaiting"], entries[0]["PoolTimeouts"]) == (
        0,
        0,
        0,
    )
    assert entries[0]["ColdStart"] == 1
    assert entries[1]["ColdStart"] == 0


def test_no_emf_lines_by_default(client, capsys):
    capsys.readouterr()

    client.get("/api/v1/users")

    assert "_aws" not in capsys.readouterr().out


def test_an_exception_that_ends_a_thread_is_one_json_line(make_app, settings, capsys):
    make_app(settings)  # configures the service's logging
    capsys.readouterr()

    def cancel_timer() -> None:
        raise TimeoutError("read timed out (read timeout=4)")

    thread = threading.Thread(target=cancel_timer, name="connector-cancel")
    thread.start()
    thread.join()

    out = capsys.readouterr()
    (line,) = lines_of_text(out.out)
    assert (line["level"], line["logger"]) == ("ERROR", "userservice.threads")
    assert line["message"] == "a thread ended with TimeoutError"
    assert "Traceback" in line["exception"]
    assert out.err == ""


@dataclasses.dataclass
class _Shape:
    side: int


@pytest.mark.parametrize(
    "value",
    [
        'caf\u00e9 \U0001f600 "quoted" \\ \n\t\x00',
        "\ud800",  # a lone surrogate: orjson refuses it, the standard encoder escapes it
        2**70,  # past 64 bits: orjson refuses it too
        -(2**63),
        0.1 + 0.2,
        1e-07,
        True,
        None,
        [1, "a", None],
        (1, 2),
        {1: "int key", None: "none key", 2.5: "float key"},
        {"nested": {"deeper": [{"a": 1}]}},
        datetime(2026, 12, 4, 19, 5, 48, 818978, tzinfo=UTC),  # str(), as the default says
        date(2026, 12, 4),
        _Shape(3),  # str() too: a dataclass is not taken apart into fields
        {3, 1, 2},
        HTTPStatus.NOT_FOUND,
        uuid.UUID(int=7),
    ],
    ids=repr,
)
def test_a_line_holds_what_the_standard_encoder_would_write(value):
    line = logs.json_line(0.0, "INFO", "userservice.x", "m", {"value": value})

    assert json.loads(line)["value"] == json.loads(json.dumps(value, default=str))
    assert "\n" not in line  # one line, whatever the value holds


@pytest.mark.parametrize("created", [0.0, 1.5, 1_700_000_000.999999, 1_764_874_548.818978, 2.0**31])
def test_a_line_s_time_is_the_record_s_to_the_microsecond_in_one_width(created):
    written = logs.timestamp(created)

    read = datetime.fromisoformat(written)
    assert read.tzinfo == UTC
    assert abs(read.timestamp() - created) < 1e-6
    assert read <= datetime.fromtimestamp(created, UTC)  # cut, never rounded past the record
    assert len(written) == len("2026-12-04T19:05:48.818978+00:00")
