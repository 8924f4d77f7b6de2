"""Serve a WSGI app to AWS Lambda's HTTP front doors through aws-wsgi, closing its gaps.

Why the shape is what it is. aws-wsgi 0.2.7 (archived in 2024) offers one public function,
`awsgi.response(app, event, context)`, which does two jobs. Its first job, building the WSGI
environ from an API Gateway REST event, is kept: the method, every header as HTTP_*,
CONTENT_TYPE and CONTENT_LENGTH, the body (base64-decoded when the event says so),
REMOTE_ADDR from X-Forwarded-For and the wsgi.* keys all come from aws-wsgi. Its second job,
turning the app's answer into Lambda's, cannot be kept: it folds headers into a dict (one
Set-Cookie survives), fails on a binary body whose type is not listed, returns statusCode as a
string, knows no HTTP API or function URL answer, and never calls the response's close().
Its environ builder is not public on its own (`__all__` is `response`), so this module calls
`awsgi.response` and works around the half it cannot use:

- `_awsgi_event` hands aws-wsgi every event in the REST shape it reads: it raises KeyError on
  HTTP API 2.0 events, function URLs and ALB events with multi-value headers;
- `_environ_fixes` sets over aws-wsgi's environ what it gets wrong or leaves out: the query
  string with repeated keys, encoded once; PATH_INFO percent-decoded; the stage as
  SCRIPT_NAME; host, scheme and port when X-Forwarded-* are missing;
- `_capturing` runs the app under aws-wsgi, keeps its status, every header and the whole body,
  closes the response, and gives aws-wsgi an empty body, so what aws-wsgi returns carries
  nothing and is dropped;
- `_response` builds the answer for the event's front door from what was captured.

Each of these gaps is a test in tests/test_lambda_adapter.py, on real event shapes.
"""

from __future__ import annotations

import re
from base64 import b64encode
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_to_bytes, urlencode
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import awsgi

__all__ = ("handle",)

_Door = Literal["rest", "http", "alb"]

_TEXT_TYPES = re.compile(r"text/.+|application/(?:.+\+)?(?:json|xml|javascript)|image/svg\+xml")


@dataclass
class _Captured:
    """The response exactly as the app gave it: status line, header list and body."""

    status: str = "500 Internal Server Error"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def handle(
    app: WSGIApplication,
    event: Mapping[str, Any],
    context: Any,
    *,
    binary_types: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """Run one Lambda HTTP event through app; answer in the format of the event's front door.

    Text bodies (text/*, JSON, XML, JavaScript) go back as UTF-8; any other body, and any
    media type listed in ``binary_types`` (lower case, no parameters), goes back base64.
    """
    door = _front_door(event)
    headers = _request_headers(event)
    captured = _Captured()
    middleware = _capturing(app, _environ_fixes(event, context, door, headers), captured)
    awsgi.response(
        middleware, _awsgi_event(event, door, headers), context, base64_content_types=binary_types
    )
    return _response(door, captured, event, binary_types)


def _front_door(event: Mapping[str, Any]) -> _Door:
    """Tell which front door sent the event: API Gateway REST, HTTP API/function URL or ALB."""
    context = event.get("requestContext") or {}
    if "elb" in context:
        return "alb"
    if event.get("version") == "2.0" or "http" in context:
        return "http"
    if "httpMethod" in event:
        return "rest"
    raise ValueError("not an HTTP event from API Gateway, an ALB or a Lambda function URL")


def _request_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Return the request headers with one value per name; a 2.0 event's cookies as Cookie."""
    if multi := event.get("multiValueHeaders"):
        headers = {
            name: ("; " if name.lower() == "cookie" else ", ").join(values)
            for name, values in multi.items()
        }
    else:
        headers = dict(event.get("headers") or {})
    if cookies := event.get("cookies"):
        headers["Cookie"] = "; ".join(cookies)
    return headers


def _awsgi_event(event: Mapping[str, Any], door: _Door, headers: dict[str, str]) -> dict[str, Any]:
    """Return the event in the REST 1.0 shape awsgi reads; it raises KeyError on the others."""
    method = event["requestContext"]["http"]["method"] if door == "http" else event["httpMethod"]
    return {
        "httpMethod": method,
        "path": _raw_path(event, door),
        "queryStringParameters": None,  # the exact query string is set by _environ_fixes
        "headers": headers,
        "body": event.get("body"),
        "isBase64Encoded": event.get("isBase64Encoded", False),
    }


def _environ_fixes(
    event: Mapping[str, Any], context: Any, door: _Door, headers: Mapping[str, str]
) -> dict[str, Any]:
    """Return the environ entries that awsgi gets wrong or leaves out."""
    fields = {name.lower(): value for name, value in headers.items()}
    domain = (event.get("requestContext") or {}).get("domainName")
    host = fields.get("host") or domain or "localhost"  # PEP 3333: SERVER_NAME is never empty
    scheme = _last(fields.get("x-forwarded-proto")) or "https"
    port = _last(fields.get("x-forwarded-port")) or ("443" if scheme == "https" else "80")
    script_name, path_info = _split_stage(event, door, host)
    return {
        "SCRIPT_NAME": _wsgi_path(script_name),
        "PATH_INFO": _wsgi_path(path_info),
        "QUERY_STRING": _query_string(event, door),
        "HTTP_HOST": host,
        "SERVER_NAME": re.sub(r":\d+$", "", host),
        "SERVER_PORT": port,
        "wsgi.url_scheme": scheme,
        "lambda.event": event,
        "lambda.context": context,
    }


def _last(value: str | None) -> str:
    """Return the last item of a comma-separated header value: the nearest proxy's."""
    return (value or "").rsplit(",", 1)[-1].strip()


def _raw_path(event: Mapping[str, Any], door: _Door) -> str:
    """Return the request path as the event carries it, still percent-encoded."""
    return str(event["rawPath"] if door == "http" else event["path"])


def _split_stage(event: Mapping[str, Any], door: _Door, host: str) -> tuple[str, str]:
    """Split the raw path into the stage prefix (SCRIPT_NAME) and the rest (PATH_INFO)."""
    path = _raw_path(event, door)
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if door == "alb" or stage in (None, "$default"):
        return "", path
    full = context.get("path") or ""
    if full.endswith(path) and full != path:  # REST: requestContext.path keeps what path drops
        return full[: -len(path)], path
    prefix = f"/{stage}"
    if event.get("version") and (path == prefix or path.startswith(f"{prefix}/")):
        return prefix, path[len(prefix) :]  # HTTP API: the stage leads the path
    if door == "rest" and not full and ".execute-api." in host:
        return prefix, path
    return "", path


def _wsgi_path(raw: str) -> str:
    """Percent-decode a path once, as the latin-1 string PEP 3333 asks for."""
    return unquote_to_bytes(raw).decode("latin-1")


def _query_string(event: Mapping[str, Any], door: _Door) -> str:
    """Return the query string with every repeated key, encoded exactly once."""
    if door == "http":
        return str(event.get("rawQueryString") or "")
    params = event.get("multiValueQueryStringParameters") or {
        name: [value] for name, value in (event.get("queryStringParameters") or {}).items()
    }
    if door == "alb":  # an ALB passes the values on as the client encoded them
        return "&".join(f"{name}={value}" for name, values in params.items() for value in values)
    return urlencode(params, doseq=True)


def _capturing(
    app: WSGIApplication, fixes: Mapping[str, Any], captured: _Captured
) -> WSGIApplication:
    """Wrap app so that it sees the fixed environ and its whole response lands in captured."""

    def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ.update(fixes)
        # PEP 3333 has these two without the HTTP_ prefix; awsgi sets both forms.
        environ.pop("HTTP_CONTENT_TYPE", None)
        environ.pop("HTTP_CONTENT_LENGTH", None)
        chunks: list[bytes] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> Callable[[bytes], object]:
            # Nothing is sent before the app returns, so a call with exc_info just replaces.
            captured.status, captured.headers = status, list(headers)
            return chunks.append

        result = app(environ, capture)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        captured.body = b"".join(chunks)
        start_response(captured.status, captured.headers)
        return ()  # the body is encoded in _body; aws-wsgi's decoding fails on bytes

    return middleware


def _response(
    door: _Door, captured: _Captured, event: Mapping[str, Any], binary_types: Collection[str]
) -> dict[str, Any]:
    """Build the answer in the format the event's front door expects."""
    headers = _grouped(captured.headers)
    response: dict[str, Any] = {"statusCode": int(captured.status.split(None, 1)[0])}
    if door == "rest":  # API Gateway merges the maps; a header sent once is in both
        response["headers"] = {name: vals[0] for name, vals in headers.items() if len(vals) == 1}
        response["multiValueHeaders"] = headers
    elif door == "http":
        cookies = {name: vals for name, vals in headers.items() if name.lower() == "set-cookie"}
        response["headers"] = _joined({k: v for k, v in headers.items() if k not in cookies})
        response["cookies"] = [value for vals in cookies.values() for value in vals]
    else:
        response["statusDescription"] = captured.status
        if "multiValueHeaders" in event:  # the target group has multi-value headers on
            response["multiValueHeaders"] = headers
        else:
            response["headers"] = _joined(headers)
    return response | _body(captured, binary_types)


def _grouped(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Return every value of each header name, in order."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return grouped


def _joined(headers: Mapping[str, list[str]]) -> dict[str, str]:
    """Return one comma-joined value per name; Set-Cookie cannot be joined, so the last wins."""
    return {
        name: values[-1] if name.lower() == "set-cookie" else ", ".join(values)
        for name, values in headers.items()
    }


def _body(captured: _Captured, binary_types: Collection[str]) -> dict[str, Any]:
    """Return body and isBase64Encoded: UTF-8 text for a textual type, else base64."""
    if not captured.body or _is_text(captured.headers, binary_types):
        with suppress(UnicodeDecodeError):  # text in another charset travels as bytes
            return {"body": captured.body.decode("utf-8"), "isBase64Encoded": False}
    return {"body": b64encode(captured.body).decode("ascii"), "isBase64Encoded": True}


def _is_text(headers: Iterable[tuple[str, str]], binary_types: Collection[str]) -> bool:
    """Tell whether a response with these headers carries an unencoded textual body."""
    fields = {name.lower(): value for name, value in headers}
    media_type = fields.get("content-type", "").split(";", 1)[0].strip().lower()
    if fields.get("content-encoding", "identity") != "identity" or media_type in binary_types:
        return False
    return _TEXT_TYPES.fullmatch(media_type) is not None
