"""Render every error, from any layer, as RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error the API reports; ERRORS gives its status and code."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


class UserNotFound(ServiceError):
    """No user has that id."""


class EmailTaken(ServiceError):
    """Another user already has that email, ignoring case."""


class PreconditionFailed(ServiceError):
    """The user's ETag does not match the request's If-Match."""


class DatabaseUnavailable(ServiceError):
    """The database could not be reached in time."""


class MalformedJson(ServiceError):
    """The request body is not valid JSON."""


class UnsupportedMediaType(ServiceError):
    """The request body is not JSON."""


# exception -> (status, code, the detail clients see when the exception has none to show)
ERRORS: dict[type[ServiceError], tuple[int, str, str]] = {
    UserNotFound: (404, "USER_NOT_FOUND", "No user has this id."),
    EmailTaken: (409, "EMAIL_TAKEN", "Another user already has this email."),
    PreconditionFailed: (412, "PRECONDITION_FAILED", "The user has changed since that ETag."),
    DatabaseUnavailable: (503, "DATABASE_UNAVAILABLE", "The database is unavailable; retry."),
    MalformedJson: (400, "MALFORMED_JSON", "The request body is not valid JSON."),
    UnsupportedMediaType: (415, "UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json."),
}
# Details that come from our own messages are safe to show; a 503's is not (it may name a
# host or a pool), so its public detail is fixed.
PRIVATE_DETAIL = (DatabaseUnavailable,)

# werkzeug's HTTP errors answer with their status's standard name as the code
# (NOT_FOUND, METHOD_NOT_ALLOWED, ...), except where the contract names them otherwise.
HTTP_CODES = {
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    500: "INTERNAL_ERROR",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem-details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "code": code,
        "request_id": g.get("request_id"),
    }
    if errors is not None:
        body["errors"] = errors
    return current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_JSON, headers=dict(headers or {})
    )


def handle_service_error(error: ServiceError) -> Response:
    """Render a project exception through the ERRORS table."""
    status, code, public_detail = ERRORS[type(error)]
    shown = public_detail if isinstance(error, PRIVATE_DETAIL) else error.detail or public_detail
    headers = {}
    if status == 503:
        headers["Retry-After"] = str(current_app.config["SETTINGS"].db_retry_after)
        log.warning("database unavailable: %s", error.detail)
    return problem(status, code, shown, headers=headers)


def handle_http_exception(error: HTTPException) -> Response:
    """Render werkzeug's and flask-smorest's HTTP errors, 422 included."""
    status = error.code or 500
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    data = getattr(error, "data", None) or {}
    errors = _field_errors(data["messages"]) if "messages" in data else None
    if status == 422:
        detail = "The request does not validate; see errors."
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
    """Flatten webargs messages ({location: {field: [msg]}}) to {field: [msg]}."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str | None, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(str(key) if prefix is None else f"{prefix}.{key}", item)
        else:
            # A field may be called "" (an unknown one sent by a client); only no name is _schema.
            flat.setdefault("_schema" if prefix is None else prefix, []).extend(
                value if isinstance(value, list) else [str(value)]
            )

    for location_messages in messages.values():
        walk(None, location_messages)
    return flat
