"""Tests for userservice.lambda_adapter, fed with real AWS event samples from tests/events."""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Iterator, Mapping
from typing import Any
from wsgiref.validate import validator

import pytest
from flask import Flask, Response, redirect, request, url_for
from lambda_events import (
    ALB_HOST,
    CONTEXT,
    DOORS,
    EVENTS_DIR,
    HTTP_HOST,
    REST_HOST,
    URL_HOST,
    alb_event,
    http_event,
    load,
    rest_event,
)
from lambda_events import door_event as any_door_event

from userservice.lambda_adapter import handle

# The app under test.


def make_app(closed: list[str]) -> Flask:
    """Return a tiny Flask app that echoes what it receives."""
    app = Flask(__name__)

    @app.route("/echo", methods=["GET", "POST"])
    @app.route("/echo/<path:rest>", methods=["GET", "POST"])
    def echo(rest: str = "") -> dict[str, Any]:
        environ = request.environ
        return {
            "SCRIPT_NAME": environ["SCRIPT_NAME"],
            "PATH_INFO": environ["PATH_INFO"],
            "QUERY_STRING": environ["QUERY_STRING"],
            "wsgi.url_scheme": environ["wsgi.url_scheme"],
            "SERVER_NAME": environ["SERVER_NAME"],
            "SERVER_PORT": environ["SERVER_PORT"],
            "HTTP_HOST": environ["HTTP_HOST"],
            "path": request.path,
            "args": request.args.to_dict(flat=False),
            "url": url_for("echo", _external=True),
        }

    @app.post("/body")
    def body() -> dict[str, Any]:
        return {
            "hex": request.get_data().hex(),
            "CONTENT_TYPE": request.environ.get("CONTENT_TYPE"),
            "CONTENT_LENGTH": request.environ.get("CONTENT_LENGTH"),
            "HTTP_CONTENT_TYPE": request.environ.get("HTTP_CONTENT_TYPE"),
            "HTTP_CONTENT_LENGTH": request.environ.get("HTTP_CONTENT_LENGTH"),
        }

    @app.get("/lambda")
    def lambda_objects() -> dict[str, Any]:
        return {
            "requestId": request.environ["lambda.event"]["requestContext"]["requestId"],
            "aws_request_id": request.environ["lambda.context"].aws_request_id,
        }

    @app.get("/cookies")
    def cookies() -> Response:
        response = Response("", 204)
        response.set_cookie("a", "1")
        response.set_cookie("b", "2", httponly=True)
        return response

    @app.get("/request-cookies")
    def request_cookies() -> dict[str, str]:
        return dict(request.cookies)

    @app.get("/binary")
    def binary() -> Response:
        return Response(bytes([0, 255, 1, 254]), mimetype="application/octet-stream")

    @app.get("/typed")
    def typed() -> Response:
        response = Response(bytes.fromhex(request.args["hex"]))
        response.headers["Content-Type"] = request.args["type"]
        if "encoding" in request.args:
            response.headers["Content-Encoding"] = request.args["encoding"]
        return response

    @app.get("/moved")
    def moved() -> Response:
        return redirect(url_for("echo"), 303)

    @app.get("/closing")
    def closing() -> Response:
        response = Response("ok", mimetype="text/plain")
        response.call_on_close(lambda: closed.append("closed"))
        return response

    @app.route("/", methods=["GET", "POST"])
    @app.route("/<path:anything>", methods=["GET", "POST"])
    def anything(anything: str = "") -> Response:
        where = f"{request.script_root}{request.path}?{request.query_string.decode()}"
        return Response(f"{request.method} {where}", mimetype="text/plain")

    return app


@pytest.fixture
def closed() -> list[str]:
    """What the app's call_on_close callbacks recorded."""
    return []


@pytest.fixture
def echo_app(closed: list[str]) -> Flask:
    """The tiny app; named apart from conftest's app, which needs the emulator."""
    return make_app(closed)


def call(app: Any, event: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Return handle's answer to event, with the fake Lambda context."""
    return handle(app, event, CONTEXT, **kwargs)


def echo(app: Flask, event: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the echoing route saw, after checking it answered 200."""
    response = call(app, event)
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


TEXT = "text/plain; charset=utf-8"


def rest_text(body: str) -> dict[str, Any]:
    """Return the REST (1.0) answer for a 200 text/plain body."""
    length = str(len(body.encode()))
    return {
        "statusCode": 200,
        "headers": {"Content-Type": TEXT, "Content-Length": length},
        "multiValueHeaders": {"Content-Type": [TEXT], "Content-Length": [length]},
        "body": body,
        "isBase64Encoded": False,
    }


def http_text(body: str) -> dict[str, Any]:
    """Return the HTTP API (2.0) and function URL answer for a 200 text/plain body."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": TEXT, "Content-Length": str(len(body.encode()))},
        "cookies": [],
        "body": body,
        "isBase64Encoded": False,
    }


def alb_text(body: str, *, multi_value: bool) -> dict[str, Any]:
    """Return the ALB answer for a 200 text/plain body."""
    length = str(len(body.encode()))
    if multi_value:
        headers: dict[str, Any] = {
            "multiValueHeaders": {"Content-Type": [TEXT], "Content-Length": [length]}
        }
    else:
        headers = {"headers": {"Content-Type": TEXT, "Content-Length": length}}
    return {
        "statusCode": 200,
        "statusDescription": "200 OK",
        **headers,
        "body": body,
        "isBase64Encoded": False,
    }


# Every sample, in the response format of its front door.

REPEATED = "parameter1=value1&parameter1=value2&parameter2=value"
SAMPLE_RESPONSES: dict[str, dict[str, Any]] = {
    "apigw-rest-v1": rest_text("POST /testStage/hello/world?name=me"),
    "apigw-rest-v1-multivalue": rest_text(f"GET /my/path?{REPEATED}"),
    "apigw-http-v2": http_text(f"POST /my/path?{REPEATED}"),
    "apigw-http-v2-get": http_text("GET /?"),
    "function-url": http_text(f"POST /my/path?{REPEATED}"),
    "alb-single-value": alb_text("GET /?key=hello", multi_value=False),
    "alb-multi-value": alb_text(f"GET /todos?{REPEATED}", multi_value=True),
}


def test_every_sample_has_an_expected_response() -> None:
    assert sorted(path.stem for path in EVENTS_DIR.glob("*.json")) == sorted(SAMPLE_RESPONSES)


@pytest.mark.parametrize("name", sorted(SAMPLE_RESPONSES))
def test_sample_gets_the_response_format_of_its_front_door(echo_app: Flask, name: str) -> None:
    assert call(echo_app, load(name)) == SAMPLE_RESPONSES[name]


def test_unknown_event_is_refused(echo_app: Flask) -> None:
    with pytest.raises(ValueError, match="not an HTTP event"):
        call(echo_app, {"Records": []})


@pytest.mark.parametrize("name", sorted(SAMPLE_RESPONSES))
def test_sample_passes_the_pep_3333_validator(echo_app: Flask, name: str) -> None:
    assert call(validator(echo_app), load(name)) == SAMPLE_RESPONSES[name]


# One builder for tests that run on every front door.


def door_event(
    door: str,
    *,
    method: str = "GET",
    path: str = "/echo",
    content_type: str | None = None,
    body: str | None = None,
    base64: bool = False,
) -> dict[str, Any]:
    """Return an event of the given front door for a request with no query string."""
    return any_door_event(
        door,
        method=method,
        path=path,
        headers={"Content-Type": content_type},
        body=body,
        base64=base64,
    )


# Query strings.


def test_rest_multi_value_query_keeps_repeated_keys(echo_app: Flask) -> None:
    seen = echo(echo_app, rest_event(query={"a": ["1", "2"], "b": ["x y", "&="]}))
    assert (seen["QUERY_STRING"], seen["args"]) == (
        "a=1&a=2&b=x+y&b=%26%3D",
        {"a": ["1", "2"], "b": ["x y", "&="]},
    )


def test_http_api_raw_query_string_is_kept_verbatim(echo_app: Flask) -> None:
    seen = echo(echo_app, http_event(raw_query="a=1&b=x%20y&a=2"))
    assert (seen["QUERY_STRING"], seen["args"]) == (
        "a=1&b=x%20y&a=2",
        {"a": ["1", "2"], "b": ["x y"]},
    )


def test_alb_multi_value_query_keeps_repeated_keys(echo_app: Flask) -> None:
    seen = echo(echo_app, alb_event(multi_value=True, query={"a": ["1", "x%26y"], "b": ["2"]}))
    assert (seen["QUERY_STRING"], seen["args"]) == (
        "a=1&a=x%26y&b=2",
        {"a": ["1", "x&y"], "b": ["2"]},
    )


@pytest.mark.parametrize("multi_value", [True, False], ids=["multi-value", "single-value"])
def test_alb_query_values_are_decoded_exactly_once(echo_app: Flask, multi_value: bool) -> None:
    event = alb_event(multi_value=multi_value, query={"a": ["a%20b"], "b": ["%2520"]})
    seen = echo(echo_app, event)
    assert (seen["QUERY_STRING"], seen["args"]) == (
        "a=a%20b&b=%2520",
        {"a": ["a b"], "b": ["%20"]},
    )


# Paths and the stage prefix.


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(
    ("raw", "path_info", "path"),
    [
        ("/echo/a%20b", "/echo/a b", "/echo/a b"),
        ("/echo/%2520", "/echo/%20", "/echo/%20"),
        ("/echo/caf%C3%A9", "/echo/caf\xc3\xa9", "/echo/café"),
    ],
)
def test_path_is_percent_decoded_exactly_once(
    echo_app: Flask, door: str, raw: str, path_info: str, path: str
) -> None:
    seen = echo(echo_app, door_event(door, path=raw))
    assert (seen["PATH_INFO"], seen["path"]) == (path_info, path)


def test_rest_named_stage_is_the_script_name(echo_app: Flask) -> None:
    seen = echo(echo_app, rest_event(path="/echo"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"], seen["url"]) == (
        "/testStage",
        "/echo",
        f"https://{REST_HOST}/testStage/echo",
    )


def test_rest_script_name_comes_from_request_context_path(echo_app: Flask) -> None:
    event = rest_event(headers={"Host": "api.example.com"}, context_path="/users-api/echo")
    seen = echo(echo_app, event)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"], seen["url"]) == (
        "/users-api",
        "/echo",
        "https://api.example.com/users-api/echo",
    )


def test_rest_custom_domain_without_base_path_has_no_script_name(echo_app: Flask) -> None:
    seen = echo(echo_app, rest_event(headers={"Host": "api.example.com"}, context_path="/echo"))
    assert (seen["SCRIPT_NAME"], seen["url"]) == ("", "https://api.example.com/echo")


def test_rest_path_keeps_a_first_segment_named_like_the_stage(echo_app: Flask) -> None:
    seen = echo(echo_app, rest_event(path="/echo", stage="echo"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/echo", "/echo")


def test_http_api_named_stage_is_the_script_name(echo_app: Flask) -> None:
    seen = echo(echo_app, http_event(raw_path="/prod/echo", stage="prod"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"], seen["url"]) == (
        "/prod",
        "/echo",
        f"https://{HTTP_HOST}/prod/echo",
    )


@pytest.mark.parametrize("door", ["http", "function-url", "alb-multi-value", "alb-single-value"])
def test_no_script_name_without_a_named_stage(echo_app: Flask, door: str) -> None:
    seen = echo(echo_app, door_event(door, path="/echo"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/echo")


def test_relative_location_keeps_the_stage(echo_app: Flask) -> None:
    response = call(echo_app, rest_event(path="/moved"))
    assert (response["statusCode"], response["headers"]["Location"]) == (303, "/testStage/echo")


# Scheme, host and port.

# What the app sees of where it was reached, in this order in each case below.
WHERE = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "url")


@pytest.mark.parametrize(
    ("event", "where"),
    [
        pytest.param(
            rest_event(
                headers={
                    "Host": "api.example.com:8080",
                    "X-Forwarded-Proto": "http",
                    "X-Forwarded-Port": "8080",
                }
            ),
            (
                "http",
                "api.example.com:8080",
                "api.example.com",
                "8080",
                "http://api.example.com:8080/echo",
            ),
            id="forwarded headers give scheme, host and port",
        ),
        pytest.param(
            http_event(function_url=True),
            ("https", URL_HOST, URL_HOST, "443", f"https://{URL_HOST}/echo"),
            id="a function URL without forwarded headers is https on its domain",
        ),
        pytest.param(
            http_event(headers={"host": None, "x-forwarded-proto": None, "x-forwarded-port": None}),
            ("https", HTTP_HOST, HTTP_HOST, "443", f"https://{HTTP_HOST}/echo"),
            id="an HTTP API request without Host uses the request context's domain",
        ),
        pytest.param(
            alb_event(multi_value=True),
            (
                "http",
                ALB_HOST,
                ALB_HOST,
                "80",
                f"http://{ALB_HOST.lower()}/echo",  # Werkzeug lower-cases the host
            ),
            id="an ALB's forwarded headers give http on port 80",
        ),
    ],
)
def test_scheme_host_and_port_come_from_the_event(
    echo_app: Flask, event: dict[str, Any], where: tuple[str, ...]
) -> None:
    seen = echo(echo_app, event)
    assert {k: seen[k] for k in WHERE} == dict(zip(WHERE, where, strict=True))


def test_forwarded_port_alone_keeps_the_default_scheme(echo_app: Flask) -> None:
    seen = echo(
        echo_app, http_event(headers={"x-forwarded-proto": None, "x-forwarded-port": "8443"})
    )
    assert (seen["wsgi.url_scheme"], seen["SERVER_PORT"]) == ("https", "8443")


# Cookies.

SET_COOKIES = ["a=1; Path=/", "b=2; HttpOnly; Path=/"]


# What each door answers for a response that sets two cookies: every one where the door can
# carry several, only the last on an ALB without multi-value headers.
HTTP_API_COOKIES = {
    "statusCode": 204,
    "headers": {"Content-Type": "text/html; charset=utf-8"},
    "cookies": SET_COOKIES,
    "body": "",
    "isBase64Encoded": False,
}
COOKIE_ANSWERS: dict[str, dict[str, Any]] = {
    "rest": {
        "statusCode": 204,
        "headers": {"Content-Type": "text/html; charset=utf-8"},
        "multiValueHeaders": {
            "Content-Type": ["text/html; charset=utf-8"],
            "Set-Cookie": SET_COOKIES,
        },
        "body": "",
        "isBase64Encoded": False,
    },
    "http": HTTP_API_COOKIES,
    "function-url": HTTP_API_COOKIES,
    "alb-multi-value": {
        "statusCode": 204,
        "statusDescription": "204 NO CONTENT",
        "multiValueHeaders": {
            "Content-Type": ["text/html; charset=utf-8"],
            "Set-Cookie": SET_COOKIES,
        },
        "body": "",
        "isBase64Encoded": False,
    },
    "alb-single-value": {
        "statusCode": 204,
        "statusDescription": "204 NO CONTENT",
        "headers": {"Content-Type": "text/html; charset=utf-8", "Set-Cookie": SET_COOKIES[-1]},
        "body": "",
        "isBase64Encoded": False,
    },
}


@pytest.mark.parametrize("door", DOORS)
def test_every_set_cookie_is_returned_as_far_as_the_door_can_carry_them(
    echo_app: Flask, door: str
) -> None:
    assert call(echo_app, any_door_event(door, path="/cookies")) == COOKIE_ANSWERS[door]


def test_http_api_request_cookies_become_the_cookie_header(echo_app: Flask) -> None:
    response = call(echo_app, http_event(raw_path="/request-cookies", cookies=["a=1", "b=2"]))
    assert json.loads(response["body"]) == {"a": "1", "b": "2"}


# Bodies and status codes.


@pytest.mark.parametrize("door", DOORS)
def test_base64_request_body_is_decoded(echo_app: Flask, door: str) -> None:
    body = b64encode(b"\x00\xff{}").decode()
    event = door_event(
        door,
        method="POST",
        path="/body",
        content_type="application/octet-stream",
        body=body,
        base64=True,
    )
    assert echo(echo_app, event) == {
        "hex": "00ff7b7d",
        "CONTENT_TYPE": "application/octet-stream",
        "CONTENT_LENGTH": "4",
        "HTTP_CONTENT_TYPE": None,
        "HTTP_CONTENT_LENGTH": None,
    }


@pytest.mark.parametrize("door", DOORS)
def test_text_request_body_arrives_as_utf_8(echo_app: Flask, door: str) -> None:
    event = door_event(door, method="POST", path="/body", content_type="text/plain", body="é")
    assert echo(echo_app, event)["hex"] == "c3a9"


def test_binary_response_is_base64_encoded_for_rest(echo_app: Flask) -> None:
    assert call(echo_app, rest_event(path="/binary")) == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/octet-stream", "Content-Length": "4"},
        "multiValueHeaders": {
            "Content-Type": ["application/octet-stream"],
            "Content-Length": ["4"],
        },
        "body": "AP8B/g==",
        "isBase64Encoded": True,
    }


def test_binary_response_is_base64_encoded_for_http_api(echo_app: Flask) -> None:
    assert call(echo_app, http_event(raw_path="/binary")) == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/octet-stream", "Content-Length": "4"},
        "cookies": [],
        "body": "AP8B/g==",
        "isBase64Encoded": True,
    }


@pytest.mark.parametrize("door", DOORS)
def test_status_code_is_an_int(echo_app: Flask, door: str) -> None:
    response = call(echo_app, door_event(door, path="/binary"))
    assert (response["statusCode"], response["body"]) == (200, "AP8B/g==")


@pytest.mark.parametrize(
    ("content_type", "raw", "expected"),
    [
        ("text/html; charset=utf-8", "héllo".encode(), ("héllo", False)),
        ("application/json", b"{}", ("{}", False)),
        ("application/problem+json", b"{}", ("{}", False)),
        ("application/vnd.api+json", b"{}", ("{}", False)),
        ("application/xml", b"<a/>", ("<a/>", False)),
        ("image/svg+xml", b"<svg/>", ("<svg/>", False)),
        ("application/javascript", b"1", ("1", False)),
        ("application/octet-stream", b"abc", ("YWJj", True)),
        ("image/png", b"\x89PNG", ("iVBORw==", True)),
        ("text/plain; charset=latin-1", b"caf\xe9", ("Y2Fm6Q==", True)),
    ],
)
def test_text_types_go_back_as_text_and_the_rest_as_base64(
    echo_app: Flask, content_type: str, raw: bytes, expected: tuple[str, bool]
) -> None:
    query = {"type": [content_type], "hex": [raw.hex()]}
    response = call(echo_app, rest_event(path="/typed", query=query))
    assert (response["body"], response["isBase64Encoded"]) == expected


def test_compressed_text_goes_back_as_base64(echo_app: Flask) -> None:
    query = {"type": ["application/json"], "hex": ["7b7d"], "encoding": ["gzip"]}
    response = call(echo_app, rest_event(path="/typed", query=query))
    assert (response["body"], response["isBase64Encoded"]) == ("e30=", True)


def test_binary_types_force_base64_on_a_text_type(echo_app: Flask) -> None:
    query = {"type": ["application/json"], "hex": ["7b7d"]}
    event = rest_event(path="/typed", query=query)
    response = call(echo_app, event, binary_types={"application/json"})
    assert (response["body"], response["isBase64Encoded"]) == ("e30=", True)


# PEP 3333: the response iterable is closed, the write() callable is honoured.


def test_response_is_closed_so_call_on_close_runs(echo_app: Flask, closed: list[str]) -> None:
    call(echo_app, rest_event(path="/closing"))
    assert closed == ["closed"]


class ClosingBody:
    """A response iterable that records its close() and can fail halfway."""

    def __init__(self, log: list[str], *, fail: bool = False) -> None:
        self.log = log
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        yield b"b"
        if self.fail:
            raise RuntimeError("broken body")
        yield b"c"

    def close(self) -> None:
        self.log.append("closed")


def raw_app(log: list[str], *, fail: bool = False) -> Any:
    """Return a bare WSGI app that uses write() and then returns a ClosingBody."""

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> ClosingBody:
        log.append("called")
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        return ClosingBody(log, fail=fail)

    return wsgi_app


def test_write_and_iterable_are_joined_in_order_and_closed() -> None:
    log: list[str] = []
    assert handle(raw_app(log), http_event(), CONTEXT) == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "cookies": [],
        "body": "abc",
        "isBase64Encoded": False,
    }
    assert log == ["called", "closed"]


def test_iterable_is_closed_when_it_fails() -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="broken body"):
        handle(raw_app(log, fail=True), http_event(), CONTEXT)
    assert log == ["called", "closed"]


# The Lambda event and context reach the app.


@pytest.mark.parametrize(
    ("door", "request_id"),
    [
        ("rest", "deef4878-7910-11e6-8f14-25afc3e9ae33"),
        ("http", "LV7fzho-PHcEJPw="),
        ("function-url", "id"),
    ],
)
def test_request_ids_are_readable_from_the_environ(
    echo_app: Flask, door: str, request_id: str
) -> None:
    assert echo(echo_app, door_event(door, path="/lambda")) == {
        "requestId": request_id,
        "aws_request_id": CONTEXT.aws_request_id,
    }


@pytest.mark.parametrize("door", DOORS)
def test_event_and_context_are_in_the_environ(door: str) -> None:
    seen: list[dict[str, Any]] = []

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        start_response("204 No Content", [])
        return []

    event = door_event(door)
    handle(wsgi_app, event, CONTEXT)
    assert seen[0]["lambda.event"] is event
    assert seen[0]["lambda.context"] is CONTEXT
