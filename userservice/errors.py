"""Render every error, from any layer, as RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

PROBLEM_JSON = "application/problem+json"
# Bounds on a 422's `errors`, so that its size does not follow the request's.
MAX_FIELDS = 20
MAX_FIELD_NAME = 64
# The protection space named in WWW-Authenticate (RFC 6750).
REALM = "userservice"
log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error the API reports, carrying its status, code and public detail."""

    status = 500
    code = "INTERNAL_ERROR"
    # What clients see when the exception brings no detail of its own.
    public_detail = "An unexpected error occurred; quote the request_id."
    # A private detail (a host, a pool) is logged, never shown.
    detail_is_private = False

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def shown_detail(self) -> str:
        """Return the detail a client may see."""
        if self.detail_is_private or not self.detail:
            return self.public_detail
        return self.detail

    def headers(self) -> dict[str, str]:
        """Return the headers this error adds to its response."""
        return {}


class UserNotFound(ServiceError):
    """No user has that id."""

    status, code, public_detail = 404, "USER_NOT_FOUND", "No user has this id."


class EmailTaken(ServiceError):
    """Another user already holds that address, in any spelling."""

    status, code, public_detail = 409, "EMAIL_TAKEN", "Another user already has this email."


class PreconditionFailed(ServiceError):
    """The user's ETag does not match the request's If-Match."""

    status, code = 412, "PRECONDITION_FAILED"
    public_detail = "The user has changed since that ETag."


class WriteConflict(ServiceError):
    """Another request changed the user between this request's read and its write."""

    status, code = 503, "WRITE_CONFLICT"
    public_detail = "Another request changed this user at the same moment; nothing was written."

    def headers(self) -> dict[str, str]:
        """Tell the client to retry: the race is over by then."""
        return {"Retry-After": "1"}


class DatabaseUnavailable(ServiceError):
    """The database could not be reached in time."""

    status, code = 503, "DATABASE_UNAVAILABLE"
    public_detail = "The database is unavailable; retry."
    detail_is_private = True

    def headers(self) -> dict[str, str]:
        """Tell the client when to retry."""
        return {"Retry-After": str(current_app.config["SETTINGS"].db_retry_after)}


class DatabaseBusy(DatabaseUnavailable):
    """The database turned the statement away for contention or time; the session is sound."""

    code = "DATABASE_BUSY"
    public_detail = "The database is busy; retry."


class MalformedJson(ServiceError):
    """The request body is not valid JSON."""

    status, code, public_detail = 400, "MALFORMED_JSON", "The request body is not valid JSON."


class UnsupportedMediaType(ServiceError):
    """The request body is not JSON."""

    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    public_detail = "Send the body as application/json."


class MissingHost(ServiceError):
    """An HTTP/1.1 request came without a Host header."""

    status, code = 400, "HOST_REQUIRED"
    public_detail = "An HTTP/1.1 request must carry a Host header."


class MalformedBody(ServiceError):
    """The request body's framing is broken (a bad chunk size, a missing CRLF, a bad trailer)."""

    status, code = 400, "MALFORMED_BODY"
    public_detail = "The request body's chunked framing is malformed."


class IncompleteBody(ServiceError):
    """The body ended before its Content-Length: the client closed or half-closed mid-body."""

    status, code = 400, "INCOMPLETE_BODY"
    public_detail = "The request body ended before its Content-Length."


class BodyTimeout(ServiceError):
    """The client stopped sending its body for longer than READ_TIMEOUT."""

    status, code = 408, "REQUEST_TIMEOUT"
    public_detail = "The request body did not arrive in time."


class Unauthenticated(ServiceError):
    """The request carries no bearer token (RFC 6750)."""

    status, code = 401, "UNAUTHENTICATED"
    public_detail = "Send a token as Authorization: Bearer <token>."

    def headers(self) -> dict[str, str]:
        """Name the scheme the client must use."""
        return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


class InvalidToken(ServiceError):
    """The bearer token is malformed, forged, expired or not meant for this service."""

    status, code, public_detail = 401, "INVALID_TOKEN", "The token is not valid."

    def headers(self) -> dict[str, str]:
        """Say the token itself was refused."""
        return {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'}


class InsufficientScope(ServiceError):
    """The token is valid but does not grant the scope the call needs."""

    status, code, public_detail = 403, "INSUFFICIENT_SCOPE", "The token lacks the scope needed."

    def __init__(self, scope: str) -> None:
        super().__init__(f"The token lacks the {scope} scope.")
        self.scope = scope

    def headers(self) -> dict[str, str]:
        """Name the scope the call needs."""
        return {
            "WWW-Authenticate": (
                f'Bearer realm="{REALM}", error="insufficient_scope", scope="{self.scope}"'
            )
        }


class AuthUnavailable(ServiceError):
    """No cached key fits the token and the issuer's key set cannot be fetched."""

    status, code = 503, "AUTH_UNAVAILABLE"
    public_detail = "The token cannot be checked now: the issuer's keys are unreachable; retry."
    detail_is_private = True

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Tell the client when the key set will next be fetched."""
        return {"Retry-After": str(self.retry_after)}


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


def problem_body(
    status: int, code: str, detail: str, instance: str, request_id: str | None
) -> dict[str, Any]:
    """Return the members every problem document has, in the contract's order."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
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
