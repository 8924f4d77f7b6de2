"""The QUERY_TAG goes over the wire with each statement, as the real connector sends it.

A recording proxy on 127.0.0.1 sits between the connector and the emulator's server
(`fakesnow -s`) and keeps the body of every query request: the statement's text and the
parameters the connector sent with it. This is the test that fails if the connector's private
`_statement_params` (userservice.db.querytag.execute) ever stops reaching Snowflake.
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import g

from bench.servers import EmulatorServer, server_settings
from userservice import Settings, db
from userservice.db import queries, querytag
from userservice.proxies import unproxied

pytestmark = pytest.mark.slow
QUERY_PATH = "/queries/v1/query-request"


class Proxy(ThreadingHTTPServer):
    """Forward every request to the emulator's server; keep the query requests' bodies."""

    def __init__(self, upstream: int) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream = upstream
        self.queries: list[dict[str, Any]] = []


class ProxyHandler(BaseHTTPRequestHandler):
    server: Proxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith(QUERY_PATH):
            raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
            self.server.queries.append(json.loads(raw))
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=30)
        skip = {"host", "content-length", "connection"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        upstream.request("POST", self.path, body, headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's output quiet."""


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    server = EmulatorServer()
    server.start()
    recording = Proxy(server.port)
    thread = threading.Thread(target=recording.serve_forever, daemon=True)
    thread.start()
    yield recording
    recording.shutdown()
    recording.server_close()
    server.kill()


def test_each_statement_of_a_request_carries_its_query_tag_on_the_wire(make_app, proxy):
    app = make_app(server_settings(proxy.server_address[1]))
    with app.app_context():
        db.create_schema()
        sql = queries.get("get_user").sql
    proxy.queries.clear()

    response = app.test_client().get("/api/v1/users/7", headers={"X-Request-ID": "wire-1"})

    assert response.status_code == 404
    [sent] = [q for q in proxy.queries if q["sqlText"] == sql]
    tag = json.loads(sent["parameters"]["QUERY_TAG"])
    assert (tag["request_id"], tag["route"]) == ("wire-1", "GET /api/v1/users/<id:user_id>")
    assert "wire-1" not in sent["sqlText"]


def test_a_tag_orjson_cannot_write_is_the_standard_encoders(make_app, tmp_path):
    # A setting read from an environment holding bytes that are not UTF-8 (surrogateescape).
    settings = Settings(emulator_data_dir=str(tmp_path / "emulator"), service_version="1.0-\udcff")
    app = make_app(settings)
    with app.test_request_context("/api/v1/users/1"):
        state = unproxied(g)
        state.request_id = "r-1"
        tag = querytag.query_tag(app, state)

    fields = {
        "service": "userservice",
        "env": settings.environment,
        "version": "1.0-\udcff",
        "request_id": "r-1",
        "trace_id": None,
        "route": "GET /api/v1/users/<id:user_id>",
    }
    assert tag == json.dumps(fields, separators=(",", ":"))
