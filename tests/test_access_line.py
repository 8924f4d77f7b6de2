"""The access line written without a LogRecord is the line the JSON handler writes for one."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from contextlib import contextmanager

import pytest

from userservice import access, logs

FIELDS = {
    "request_id": "r-1",
    "method": "GET",
    "route": "GET /api/v1/users/<id:user_id>",
    "path": '/api/v1/users/"\\\u00e9\U0001f600',
    "status": 200,
    "sub": "ada",
    "duration_ms": 0.25,
    "db_ms": 0.05,
    "db_statements": 1,
    "pool_wait_ms": 0.0,
    "idempotent_replay": True,
    "trace_id": "a" * 32,
    "span_id": "b" * 16,
}


@contextmanager
def service_handler_alone():
    """Take pytest's own capture handlers off the service's logger for a while."""
    logger = logging.getLogger("userservice")
    kept = logger.handlers[:]
    logger.handlers[:] = [h for h in kept if type(h) is logging.StreamHandler]
    try:
        yield logger.handlers[0]
    finally:
        logger.handlers[:] = kept if logger.handlers[:1] == kept[:1] else logger.handlers


@pytest.fixture
def configured():
    """The service's logs at INFO, as JSON; configured as at start afterwards."""
    logs.configure("INFO", "json")
    yield
    logs.configure("WARNING", "json")


def test_the_direct_line_is_the_records_line_byte_for_byte_after_the_time(configured):
    buffer = io.StringIO()
    with service_handler_alone() as handler:
        handler.setStream(buffer)
        access._write_line(handler, dict(FIELDS))
        access._log_line(dict(FIELDS))
    direct, logged = buffer.getvalue().splitlines()

    assert direct.split(",", 1)[1] == logged.split(",", 1)[1]
    pairs = json.loads(direct, object_pairs_hook=list)
    assert [key for key, _ in pairs] == [
        "timestamp",
        "level",
        "logger",
        "message",
        *FIELDS,
    ]
    assert dict(pairs[1:]) == {
        "level": "INFO",
        "logger": "userservice.access",
        "message": "request",
        **FIELDS,
    }


def test_only_the_configured_json_handler_alone_is_written_to_directly(configured):
    with service_handler_alone() as handler:
        check_who_is_written_to(handler)


def check_who_is_written_to(handler):
    logger = access.access_log
    assert logs.sole_json_handler(logger, logging.INFO) is handler

    other = logging.Handler()
    logger.addHandler(other)  # as the tests' capture, or an operator's own handler
    assert logs.sole_json_handler(logger, logging.INFO) is None
    logger.removeHandler(other)

    refuse = logging.Filter("nothing")
    logger.addFilter(refuse)
    assert logs.sole_json_handler(logger, logging.INFO) is None
    logger.removeFilter(refuse)

    logger.disabled = True
    assert logs.sole_json_handler(logger, logging.INFO) is None
    logger.disabled = False

    handler.addFilter(refuse)
    assert logs.sole_json_handler(logger, logging.INFO) is None
    handler.removeFilter(refuse)

    handler.setLevel(logging.WARNING)
    assert logs.sole_json_handler(logger, logging.INFO) is None
    handler.setLevel(logging.NOTSET)

    assert logs.sole_json_handler(logger, logging.INFO) is handler
    logs.configure("INFO", "text")
    assert logs.sole_json_handler(logger, logging.INFO) is None


def test_a_request_writes_one_direct_line_with_every_field(settings, make_app, capsys):
    app = make_app(dataclasses.replace(settings, log_level="INFO"))
    capsys.readouterr()
    with service_handler_alone() as handler:
        assert logs.sole_json_handler(access.access_log, logging.INFO) is handler
        app.test_client().get("/api/v1/users/7", headers={"X-Request-ID": "r-7"})

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [x for x in lines if x["logger"] == "userservice.access"]
    assert list(line) == [
        "timestamp",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "route",
        "path",
        "status",
        "duration_ms",
        "db_ms",
        "db_statements",
        "pool_wait_ms",
        "trace_id",
        "span_id",
    ]
    assert (line["request_id"], line["route"], line["status"], line["db_statements"]) == (
        "r-7",
        "GET /api/v1/users/<id:user_id>",
        404,
        1,
    )
