"""lambda_handler: the same API through Lambda's front doors as through the test client."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from emf import parse_emf
from lambda_events import CONTEXT, http_event, rest_event

from userservice import db

JSON = {"Content-Type": "application/json"}
KEY_HEADERS = ("Content-Type", "ETag", "Location", "X-Pagination", "Allow", "Retry-After")

# (method, path, query, body, headers): each scenario of the contract once.
SCENARIO: list[tuple[str, str, dict[str, str], Any, dict[str, str]]] = [
    ("POST", "/api/v1/users", {}, {"email": "ada@example.com", "name": "Ada"}, JSON),
    ("POST", "/api/v1/users", {}, {"email": "bob@example.com", "name": "Bob"}, JSON),
    ("POST", "/api/v1/users", {}, {"email": "ADA@example.com", "name": "Ada 2"}, JSON),
    ("GET", "/api/v1/users/1", {}, None, {}),
    ("GET", "/api/v1/users/1", {}, None, {"If-None-Match": '"v1"'}),
    ("GET", "/api/v1/users", {"page": "2", "page_size": "1"}, None, {}),
    ("GET", "/api/v1/users", {"email": "BOB@example.com"}, None, {}),
    ("PUT", "/api/v1/users/1", {}, {"email": "ada@x.io", "name": "Ada L"}, JSON),
    ("PATCH", "/api/v1/users/2", {}, {"name": "Robert"}, {**JSON, "If-Match": '"v1"'}),
    ("PATCH", "/api/v1/users/2", {}, {"name": "Bobby"}, {**JSON, "If-Match": '"v1"'}),
    ("POST", "/api/v1/users", {}, {"email": "not-an-email", "name": ""}, JSON),
    ("GET", "/api/v1/users/99", {}, None, {}),
    ("DELETE", "/api/v1/users", {}, None, {}),
    ("DELETE", "/api/v1/users/2", {}, None, {}),
    ("GET", "/api/v1/users/2", {}, None, {}),
]
EXPECTED_STATUSES = [201, 201, 409, 200, 304, 200, 200, 200, 200, 412, 422, 404, 405, 204, 404]

Outcome = tuple[int, Any, dict[str, str]]


@pytest.fixture
def lambda_app(tmp_path, monkeypatch) -> Iterator[Callable[[str], Any]]:
    """Import lambda_handler afresh on an emulator database of its own, per call."""
    modules = []

    def load(name: str) -> Any:
        monkeypatch.setenv("ENVIRONMENT", "development")
        monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "")
        monkeypatch.setenv("EMULATOR_DATA_DIR", str(tmp_path / name))
        monkeypatch.setenv("LOG_LEVEL", "WARNING")
        sys.modules.pop("lambda_handler", None)
        modules.append(importlib.import_module("lambda_handler"))
        return modules[-1]

    yield load
    for module in modules:
        db.get_from(module.app).close()


def through_client(module: Any, method, path, query, body, headers) -> Outcome:
    response = module.app.test_client().open(
        path, method=method, query_string=query, json=body, headers=headers
    )
    return response.status_code, response.get_json(silent=True), dict(response.headers)


def through_rest(module: Any, method, path, query, body, headers) -> Outcome:
    event = rest_event(
        method=method,
        path=path,
        query={k: [v] for k, v in query.items()},
        headers=headers,
        body=json.dumps(body) if body is not None else None,
    )
    answer = module.handler(event, CONTEXT)
    joined = {k: ", ".join(v) for k, v in answer["multiValueHeaders"].items()}
    return answer["statusCode"], _json(answer["body"]), joined


def through_http(module: Any, method, path, query, body, headers) -> Outcome:
    event = http_event(
        method=method,
        raw_path=path,
        raw_query=urlencode(query),
        headers={k.lower(): v for k, v in headers.items()},
        body=json.dumps(body) if body is not None else None,
    )
    answer = module.handler(event, CONTEXT)
    return answer["statusCode"], _json(answer["body"]), answer["headers"]


def _json(body: str) -> Any:
    return json.loads(body) if body else None


def normalised(outcome: Outcome, stage: str = "") -> tuple[int, Any, dict[str, str]]:
    """Replace what must differ between runs (times, request IDs) and drop the stage."""
    status, body, headers = outcome

    def scrub(value: Any) -> Any:
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, dict):
            value = {k: scrub(v) for k, v in value.items() if k != "request_id"}
            for key in ("created_at", "updated_at"):
                if key in value:
                    assert datetime.fromisoformat(value[key]).utcoffset().total_seconds() == 0
                    value[key] = "<time>"
        return value

    kept = {k: headers[k] for k in KEY_HEADERS if k in headers}
    if "Location" in kept:
        assert kept["Location"].startswith(stage)
        kept["Location"] = kept["Location"].removeprefix(stage)
    return status, scrub(body), kept


def test_the_scenario_gives_the_same_answers_through_every_path(lambda_app):
    paths = {
        "client": (through_client, ""),
        "rest": (through_rest, "/testStage"),
        "http": (through_http, ""),
    }
    results = {}
    for name, (call, stage) in paths.items():
        module = lambda_app(name)
        results[name] = [normalised(call(module, *step), stage) for step in SCENARIO]

    assert [status for status, _, _ in results["client"]] == EXPECTED_STATUSES
    assert results["rest"] == results["client"]
    assert results["http"] == results["client"]


def test_rest_location_keeps_the_stage(lambda_app):
    module = lambda_app("rest")

    status, _, headers = through_rest(module, *SCENARIO[0])

    assert (status, headers["Location"]) == (201, "/testStage/api/v1/users/1")


def test_without_a_caller_id_the_api_gateway_request_id_is_the_request_id(lambda_app):
    module = lambda_app("rest")
    event = rest_event(path="/health")

    answer = module.handler(event, CONTEXT)

    assert answer["headers"]["X-Request-ID"] == event["requestContext"]["requestId"]


def test_a_sane_caller_id_wins_over_the_api_gateway_one(lambda_app):
    module = lambda_app("http")

    answer = module.handler(
        http_event(raw_path="/health", headers={"x-request-id": "c-1"}), CONTEXT
    )

    assert answer["headers"]["X-Request-ID"] == "c-1"


def test_the_access_line_carries_lambdas_aws_request_id(lambda_app, access_log):
    module = lambda_app("http")

    module.handler(http_event(raw_path="/health"), CONTEXT)

    assert [r.aws_request_id for r in access_log] == [CONTEXT.aws_request_id]


def test_the_access_line_flags_the_cold_start_once(lambda_app, access_log):
    module = lambda_app("http")

    for _ in range(3):
        module.handler(http_event(raw_path="/health"), CONTEXT)

    assert [r.cold_start for r in access_log] == [True, False, False]


def test_lambda_writes_emf_metrics_by_default(lambda_app, capsys):
    module = lambda_app("http")
    capsys.readouterr()

    module.handler(http_event(raw_path="/health"), CONTEXT)

    (entry,) = [
        parse_emf(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"')
    ]
    assert (entry["Route"], entry["ColdStart"], entry["Requests"]) == ("GET /health", 1, 1)


def test_the_lambda_pool_holds_one_connection(lambda_app):
    module = lambda_app("http")

    module.handler(http_event(raw_path="/api/v1/users"), CONTEXT)

    stats = db.get_from(module.app).pool.get_stats()
    assert (stats["max_size"], stats["open"]) == (1, 1)


def test_swagger_ui_under_a_stage_points_at_the_staged_spec(lambda_app):
    module = lambda_app("rest")

    answer = module.handler(rest_event(path="/docs"), CONTEXT)

    assert answer["statusCode"] == 200
    assert 'url: "/testStage/openapi.json"' in answer["body"]
    assert 'src="static/swagger-ui/swagger-ui-bundle.js"' in answer["body"]
