"""Render every error, from any layer, as RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from .errors import ServiceError

# As much of a path as a problem document's `instance` or a log line quotes.
QUOTED_PATH = 40

PROBLEM_JSON = "application/problem+json"
# Bounds on a 422's `errors`, so that its size does not follow the request's.
MAX_FIELDS = 20
MAX_FIELD_NAME = 64
log = logging.getLogger(__name__)
# werkzeug's HTTP errors answer with their status's standard name as the code
# (NOT_FOUND, METHOD_NOT_ALLOWED, ...), except where the contract names them otherwise.
HTTP_CODES = {
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    500: "INTERNAL_ERROR",
}
VALIDATION_DETAIL = "The request does not validate; see errors."


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem-details response."""
    body = problem_body(status, code, detail, request.path, g.get("request_id"))
    if errors is not None:
        body["errors"] = errors
    return current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_JSON, headers=dict(headers or {})
    )


def quoted_path(path: str) -> str:
    """Return a path as answers and log lines quote it: cut to QUOTED_PATH characters.

    Every route's path is shorter (/api/v1/users/ and a 19-digit id is 33); a longer one may
    carry what a client should never have put in a URL, such as a token.
    """
    return path if len(path) <= QUOTED_PATH else path[:QUOTED_PATH] + "..."


def problem_body(
    status: int, code: str, detail: str, instance: str, request_id: str | None
) -> dict[str, Any]:
    """Return the members every problem document has, in the contract's order."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": quoted_path(instance),
        "code": code,
        "request_id": request_id,
    }


def handle_service_error(error: ServiceError) -> Response:
    """Render a project exception from the facts it carries."""
    if error.detail_is_private:
        log.warning("%s: %s", error.code.lower(), error.detail)
    return problem(error.status, error.code, error.shown_detail, headers=error.headers())


def handle_http_exception(error: HTTPException) -> Response:
    """Render werkzeug's and flask-smorest's HTTP errors, 422 included."""
    status = error.code or 500
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    data = getattr(error, "data", None) or {}
    errors = _field_errors(data["messages"]) if "messages" in data else None
    if status == 422:
        detail = VALIDATION_DETAIL
    else:
        detail = error.description or HTTPStatus(status).description
    return problem(
        status,
        HTTP_CODES.get(status, HTTPStatus(status).name),
        detail,
        errors=errors if status == 422 else None,
        headers=headers,
    )


def handle_unexpected(error: Exception) -> Response:
    """Log an unexpected error in full and answer 500 with nothing internal in it."""
    original = getattr(error, "original_exception", None) or error
    log.error("unhandled %s", type(original).__name__, exc_info=original)
    return problem(500, "INTERNAL_ERROR", "An unexpected error occurred; quote the request_id.")


def init_app(app: Flask) -> None:
    """Route every error through the handlers above."""
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)


def _field_errors(messages: Mapping[str, Any]) -> dict[str, list[str]]:
    """Flatten webargs messages ({location: {field: [msg]}}) to {field: [msg]}.

    At most MAX_FIELDS fields, each name cut to MAX_FIELD_NAME characters: the names of
    unknown fields are the client's, and 40,000 of them, or one of 900 KB, would otherwise
    make the answer as large as the request.
    """
    flat: dict[str, list[str]] = {}

    def walk(prefix: str | None, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(str(key) if prefix is None else f"{prefix}.{key}", item)
            return
        # A field may be called "" (an unknown one sent by a client); only no name is _schema.
        name = ("_schema" if prefix is None else prefix)[:MAX_FIELD_NAME]
        if name in flat or len(flat) < MAX_FIELDS:
            flat.setdefault(name, []).extend(value if isinstance(value, list) else [str(value)])

    for location_messages in messages.values():
        walk(None, location_messages)
    return flat
