"""CloudWatch Embedded Metric Format records."""

from __future__ import annotations

import io
import json

import pytest
from emf import parse_emf

from userservice import metrics


def test_a_record_is_valid_emf_with_the_request_figures():
    stream = io.StringIO()

    metrics.emit(
        metrics.record(
            environment="production",
            route="GET /api/v1/users/<user_id>",
            status=404,
            values={"Latency": 12.5, "DatabaseTime": 8.25, "DatabaseStatements": 1},
            timestamp_ms=1_800_000_000_000,
        ),
        stream,
    )

    entry = parse_emf(stream.getvalue())
    assert stream.getvalue().count("\n") == 1
    assert {k: v for k, v in entry.items() if k != "_aws"} == {
        "Service": "userservice",
        "Environment": "production",
        "Route": "GET /api/v1/users/<user_id>",
        "StatusCode": "404",
        "Requests": 1,
        "Errors4xx": 1,
        "Errors5xx": 0,
        "Latency": 12.5,
        "DatabaseTime": 8.25,
        "DatabaseStatements": 1,
    }
    directive = entry["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [
        ["Service", "Environment", "Route"],
        ["Service", "Environment"],
    ]
    assert [m["Name"] for m in directive["Metrics"]] == [
        "Requests",
        "Errors4xx",
        "Errors5xx",
        "Latency",
        "DatabaseTime",
        "DatabaseStatements",
    ]


@pytest.mark.parametrize(
    ("status", "errors"),
    [
        (200, (0, 0)),
        (422, (1, 0)),
        (500, (0, 1)),
        (502, (0, 1)),
        (503, (0, 1)),
        (504, (0, 1)),
        # Refusals of the client's framing (transfer coding, HTTP version): the client's errors.
        (501, (1, 0)),
        (505, (1, 0)),
    ],
)
def test_errors_are_counted_by_class(status, errors):
    entry = metrics.record(environment="staging", route="r", status=status, values={})

    assert (entry["Errors4xx"], entry["Errors5xx"]) == errors


def test_an_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown metrics: Bogus"):
        metrics.record(environment="staging", route="r", status=200, values={"Bogus": 1})


def test_the_checker_rejects_a_dimension_that_is_not_a_top_level_string():
    entry = metrics.record(environment="staging", route="r", status=200, values={})
    entry["Route"] = 5

    with pytest.raises(AssertionError):
        parse_emf(json.dumps(entry))
