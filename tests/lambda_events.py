"""Build AWS Lambda HTTP events from the real samples in tests/events, for tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

# AWS's published sample events, one per front door, kept with the tests (see events/README.md).
EVENTS_DIR = Path(__file__).resolve().parent / "events"

CONTEXT = SimpleNamespace(
    aws_request_id="c6af9ac6-7b61-11e6-9a41-93e812345678",
    function_name="userservice",
    function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:userservice",
    memory_limit_in_mb=512,
    log_group_name="/aws/lambda/userservice",
    log_stream_name="2024/01/01/[$LATEST]abcdef",
    get_remaining_time_in_millis=lambda: 3000,
)

REST_HOST = "gy415nuibc.execute-api.us-east-1.amazonaws.com"
HTTP_HOST = "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com"
URL_HOST = "a1b2c3d4e5.lambda-url.us-west-2.on.aws"
ALB_HOST = "alb-c-LoadB-14POFKYCLBNSF-1815800096.eu-central-1.elb.amazonaws.com"


# Event builders: a real sample, changed only where the test says.


@cache
def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def load(name: str) -> dict[str, Any]:
    """Return a fresh copy of the sample event tests/events/{name}.json."""
    return copy.deepcopy(_sample(name))


def _merged(base: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """Return base updated with changes; a change to None removes the header."""
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def rest_event(
    *,
    method: str = "GET",
    path: str = "/echo",
    query: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str | None] | None = None,
    body: str | None = None,
    base64: bool = False,
    stage: str = "testStage",
    context_path: str | None = None,
) -> dict[str, Any]:
    """Return an API Gateway REST (1.0) event, from apigw-rest-v1.json."""
    event = load("apigw-rest-v1")
    single = _merged(event["headers"], headers or {})
    query = query or {}
    event.update(
        httpMethod=method,
        path=path,
        headers=single,
        multiValueHeaders={k: [v] for k, v in single.items()},
        queryStringParameters={k: v[-1] for k, v in query.items()} or None,
        multiValueQueryStringParameters=dict(query) or None,
        body=body,
        isBase64Encoded=base64,
    )
    event["requestContext"].update(httpMethod=method, stage=stage)
    if context_path is not None:
        event["requestContext"]["path"] = context_path
    return event


def http_event(
    *,
    method: str = "GET",
    raw_path: str = "/echo",
    raw_query: str = "",
    headers: Mapping[str, str | None] | None = None,
    cookies: Iterable[str] = (),
    body: str | None = None,
    base64: bool = False,
    stage: str = "$default",
    function_url: bool = False,
) -> dict[str, Any]:
    """Return an HTTP API (2.0) event from apigw-http-v2-get.json, or a function URL's."""
    event = load("function-url" if function_url else "apigw-http-v2-get")
    event.update(
        rawPath=raw_path,
        rawQueryString=raw_query,
        headers=_merged(event["headers"], headers or {}),
        body=body,
        isBase64Encoded=base64,
    )
    event.pop("cookies", None)
    event.pop("queryStringParameters", None)
    if cookies := list(cookies):
        event["cookies"] = cookies
    event["requestContext"]["http"].update(method=method, path=raw_path)
    if function_url:  # the sample's "<url-id>" placeholder is not a valid host
        event["requestContext"].update(domainName=URL_HOST, domainPrefix=URL_HOST.split(".")[0])
    else:
        event["requestContext"]["stage"] = stage
    return event


def alb_event(
    *,
    multi_value: bool,
    method: str = "GET",
    path: str = "/echo",
    query: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str | None] | None = None,
    body: str | None = None,
    base64: bool = False,
) -> dict[str, Any]:
    """Return an ALB event, multi-value headers on or off; query values as the client sent them."""
    query = query or {}
    event = load("alb-multi-value")
    single = _merged({k: v[0] for k, v in event.pop("multiValueHeaders").items()}, headers or {})
    event.update(httpMethod=method, path=path, body=body or "", isBase64Encoded=base64)
    if multi_value:
        event["multiValueHeaders"] = {k: [v] for k, v in single.items()}
        event["multiValueQueryStringParameters"] = dict(query)
    else:
        event["headers"] = single
        event["queryStringParameters"] = {k: v[-1] for k, v in query.items()}
        del event["multiValueQueryStringParameters"]
    return event


DOORS = ("rest", "http", "function-url", "alb-multi-value", "alb-single-value")


class Request(TypedDict, total=False):
    """The parts of a request that every front door carries; each builder has its defaults."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str | None]
    body: str | None
    base64: bool


def door_event(
    door: str, *, stage: str | None = None, **request: Unpack[Request]
) -> dict[str, Any]:
    """Return an event of one of DOORS; HTTP API and ALB header names go in lower case."""
    staged = {"stage": stage} if stage else {}
    if door == "rest":
        return rest_event(**request, **staged)
    lowered = {name.lower(): value for name, value in request.get("headers", {}).items()}
    if door in ("http", "function-url"):
        return http_event(
            method=request.get("method", "GET"),
            raw_path=request.get("path", "/echo"),
            raw_query=urlencode(request.get("query", {}), doseq=True),
            headers=lowered,
            body=request.get("body"),
            base64=request.get("base64", False),
            function_url=door == "function-url",
            **staged,
        )
    return alb_event(multi_value=door == "alb-multi-value", **(request | {"headers": lowered}))
