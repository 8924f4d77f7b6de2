"""Name the request in each statement's QUERY_TAG, not in its text: one text per SQL file.

The session's own tag (set at connect, connector.py) names only the service; inside a request,
each statement carries one that names the request too, at no extra round trip.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context, request

from .. import jsontext
from ..proxies import unproxied


def execute(cursor: Any, sql: str, values: list[Any], tag: str | None) -> None:
    """Run a statement whose QUERY_TAG names the request (query_tag), when there is one.

    The connector sets a parameter for one statement, with no extra round trip, only through
    SnowflakeCursor.execute's `_statement_params` (private by its underscore; Snowpark tags
    its statements through it). ALTER SESSION SET QUERY_TAG would cost a round trip per
    request, and the tag set at connect cannot name a request. This is its one use.
    """
    if tag is None:
        cursor.execute(sql, values)
    else:
        cursor.execute(sql, values, _statement_params={"QUERY_TAG": tag})


def query_tag(app: Flask, state: Any) -> str | None:
    """Return the request's QUERY_TAG (JSON), built once per request; None outside a request.

    `app` and `state` are the current app and its context's `g` (proxies.py).
    """
    tag: str | None = state.get("query_tag")
    if tag is None and has_request_context():
        settings = app.config["SETTINGS"]
        served = unproxied(request)
        rule = served.url_rule.rule if served.url_rule else "UNMATCHED"
        fields = {
            "service": "userservice",
            "env": settings.environment,
            "version": settings.service_version,
            "request_id": state.get("request_id"),
            "trace_id": getattr(state.get("trace"), "trace_id", None),  # tracing.RequestTrace
            "route": f"{served.method} {rule}",
        }
        state.query_tag = tag = jsontext.dumps(fields)
    return tag
