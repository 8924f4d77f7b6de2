"""A Lambda invocation the deadline answers: one access line, one metrics record, one trace."""

from __future__ import annotations

import dataclasses
import json
import threading
from types import SimpleNamespace

from lambda_events import CONTEXT, rest_event

from userservice import db
from userservice.deadline import handle_in_time

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
REQUEST_ID = "deadline-0001"


def test_a_request_the_deadline_answers_has_one_access_line_and_its_trace(
    make_app, settings, access_log, capsys
):
    app = make_app(dataclasses.replace(settings, db_pool_max_connections=1, metrics_emf=True))
    short = SimpleNamespace(**{**vars(CONTEXT), "get_remaining_time_in_millis": lambda: 1000})
    event = rest_event(
        path="/api/v1/users/7", headers={"traceparent": TRACEPARENT, "X-Request-ID": REQUEST_ID}
    )
    capsys.readouterr()

    with app.app_context(), db.connection():  # the pool's one connection: the request waits
        answer = handle_in_time(app, event, short)
    [late] = [t for t in threading.enumerate() if t.name == "invocation"]
    late.join(30)  # the abandoned request gets its pool timeout's 503

    headers = answer["headers"]
    assert (answer["statusCode"], headers["X-Request-ID"]) == (503, REQUEST_ID)
    trace_id, span_id = headers["traceresponse"].split("-")[1:3]
    assert trace_id == TRACE_ID
    assert [(r.getMessage(), r.levelname, r.request_id) for r in access_log] == [
        ("request", "INFO", REQUEST_ID),
        ("abandoned after deadline", "WARNING", REQUEST_ID),
    ]
    assert (access_log[0].status, access_log[0].trace_id, access_log[0].span_id) == (
        503,
        TRACE_ID,
        span_id,
    )
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert [(r["StatusCode"], r["ColdStart"]) for r in records] == [("503", 1)]
