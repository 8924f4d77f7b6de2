"""Emit one CloudWatch Embedded Metric Format (EMF) record per request on stdout.

CloudWatch Logs turns each such line into metrics with no agent and no API call: on Lambda
the runtime ships stdout to CloudWatch Logs; under gunicorn, the CloudWatch agent or any log
shipper that keeps the JSON line does the same.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from flask import current_app

from . import db

NAMESPACE = "userservice"
# Metric name -> CloudWatch unit. Counts are per request, so CloudWatch's Sum is the total.
METRICS = {
    "Requests": "Count",
    "Latency": "Milliseconds",
    "Errors4xx": "Count",
    "Errors5xx": "Count",
    "DatabaseTime": "Milliseconds",
    "DatabaseStatements": "Count",
    "PoolWait": "Milliseconds",
    "PoolInUse": "Count",
    "PoolWaiting": "Count",
    "PoolTimeouts": "Count",
    "ColdStart": "Count",
}
# 5xx answers that refuse the client's framing, not server faults: a transfer coding (501) or
# an HTTP version (505) the service does not speak. Counted with Errors4xx, as the client's
# errors, so that Errors5xx (the server-errors alarm) counts only the server's own faults.
CLIENT_REFUSALS = frozenset({501, 505})
# Per route and per service; the environment sets the metric namespace apart.
DIMENSIONS = [["Service", "Environment", "Route"], ["Service", "Environment"]]


def record(
    *,
    environment: str,
    route: str,
    status: int,
    values: Mapping[str, float],
    properties: Mapping[str, str] | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """Build the EMF record of one request from its metric values (names from METRICS).

    `properties` (the caller's `sub` and `client_id`) ride along as searchable log fields,
    not dimensions: one metric stream per caller would cost a fortune.
    """
    unknown = set(values) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics: {', '.join(sorted(unknown))}")
    figures = {
        "Requests": 1,
        "Errors4xx": int(400 <= status < 500 or status in CLIENT_REFUSALS),
        "Errors5xx": int(status >= 500 and status not in CLIENT_REFUSALS),
        **values,
    }
    return {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": DIMENSIONS,
                    "Metrics": [{"Name": name, "Unit": METRICS[name]} for name in figures],
                }
            ],
        },
        "Service": NAMESPACE,
        "Environment": environment,
        "Route": route,
        "StatusCode": str(status),
        **(properties or {}),
        **figures,
    }


def emit(entry: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Write one EMF record as a single JSON line."""
    out = stream or sys.stdout
    out.write(json.dumps(entry, separators=(",", ":")) + "\n")
    out.flush()


def emit_request(
    route: str,
    status: int,
    figures: Mapping[str, Any],
    pool_timeouts: int,
    cold_start: bool,
    caller: Mapping[str, str],
) -> None:
    """Emit the EMF record of the current request from its access-line figures and the pool's."""
    pool = db.get().stats() or {}
    values = {
        "Latency": figures["duration_ms"],
        "DatabaseTime": figures["db_ms"],
        "DatabaseStatements": figures["db_statements"],
        "PoolWait": figures["pool_wait_ms"],
        "PoolTimeouts": pool_timeouts,
        "ColdStart": int(cold_start),
        **({"PoolInUse": pool["in_use"], "PoolWaiting": pool["waiting"]} if pool else {}),
    }
    settings = current_app.config["SETTINGS"]
    emit(
        record(
            environment=settings.environment,
            route=route,
            status=status,
            values=values,
            properties=caller,
        )
    )
