"""Document what the spec cannot infer: problem responses and examples, headers, preconditions."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from apispec.core import Components
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask_smorest.pagination import PaginationMetadataSchema
from werkzeug.exceptions import default_exceptions

from .db import REQUEST_ID
from .errors import ServiceError
from .problems import HTTP_CODES, PROBLEM_JSON, VALIDATION_DETAIL, problem_body
from .schemas import IDEMPOTENCY_KEY_PATTERN, ProblemSchema
from .settings import Settings

# The name flask-smorest gives the response every operation documents as `default`.
DEFAULT_ERROR = "DEFAULT_ERROR"


def _header(description: str, **schema: Any) -> dict[str, Any]:
    """Describe a response header that is always sent."""
    return {"description": description, "required": True, "schema": schema}


def _duration(seconds: int) -> str:
    """Write a number of seconds as the docs do: 24 h, 30 min, 45 s."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


# The headers userservice/hooks.py adds to every response, success or problem.
EVERY_RESPONSE_HEADERS = {
    "X-Request-ID": "X_REQUEST_ID",
    "X-Process-Time": "X_PROCESS_TIME",
    "Server-Timing": "SERVER_TIMING",
}
HEADERS = {
    "X_REQUEST_ID": _header(
        "The caller's X-Request-ID when it is 1-128 letters, digits and `-._:`, else a new UUID4.",
        type="string",
        pattern=f"^{REQUEST_ID.pattern}$",
    ),
    "X_PROCESS_TIME": _header(
        "Seconds the service spent on the request.", type="number", minimum=0
    ),
    "SERVER_TIMING": _header(
        "Milliseconds spent in the app (`app`) and in the database (`db`).",
        type="string",
        pattern=r"^app;dur=[0-9]+(\.[0-9]+)?, db;dur=[0-9]+(\.[0-9]+)?",
    ),
    "RETRY_AFTER": _header("Seconds to wait before trying again.", type="integer", minimum=0),
    "ETAG": _header("The user's entity tag.", type="string", pattern=r'^"v[0-9]+"$'),
    # flask-smorest's paginate() documents its header under this name. The value is a JSON
    # document; `content` is how OpenAPI 3 says so (not an object `schema`, which would mean
    # `k,v,k,v` text).
    "PAGINATION": {
        "description": "Where this page sits in the whole list, as JSON.",
        "required": True,
        "content": {"application/json": {"schema": PaginationMetadataSchema}},
    },
}
PRECONDITION_PARAMETERS = {
    "IF_MATCH": {
        "name": "If-Match",
        "description": "Act only if the user's ETag is one of these, or `*`; else 412. Optional.",
        # The one value that never goes stale, so example-driven clients and tests succeed.
        "example": "*",
        "schema": {"type": "string"},
    },
    "IF_NONE_MATCH": {
        "name": "If-None-Match",
        "description": "304 if the user's ETag is one of these (weak comparison), or `*`.",
        "schema": {"type": "string"},
    },
    "IDEMPOTENCY_KEY": {
        "name": "Idempotency-Key",
        "description": (
            '1-255 visible ASCII characters, quoted as a structured-field string (`"k1"`) '
            "or bare (then without a comma); one per request (two are 400 "
            "IDEMPOTENCY_KEY_REPEATED); unique per create. A retry with the key and the same "
            "body within IDEMPOTENCY_KEY_TTL_SECONDS "
            f"({_duration(Settings.idempotency_key_ttl_seconds)} by default) gets the first "
            "answer again (with "
            "`Idempotent-Replayed: true`) and creates nothing; with another body, 422 "
            "IDEMPOTENCY_KEY_REUSED; while the first is unanswered, 409 "
            "IDEMPOTENCY_KEY_IN_FLIGHT with Retry-After. Optional."
        ),
        "example": '"8e03978e-40d5-43e8-bc93-6894a57f9324"',
        "schema": {"type": "string", "pattern": f"^(?:{IDEMPOTENCY_KEY_PATTERN})$"},
    },
    "IF_NONE_MATCH_WRITE": {
        "name": "If-None-Match",
        "description": "412 if the user's ETag is one of these (weak comparison), or `*`.",
        "schema": {"type": "string"},
    },
}
# A body for each example: a field error on 422, what any problem carries otherwise.
EXAMPLE_ERRORS = {"email": ["Not a valid email address."]}
# Each example's `instance` is a path that answers with its code: a user by default, the
# collection for what only a create answers, and for an unknown route, a path with no route.
EXAMPLE_USER_PATH = "/api/v1/users/7"
EXAMPLE_COLLECTION_PATH = "/api/v1/users"
EXAMPLE_NO_ROUTE_PATH = "/api/v1/user"
CREATE_ONLY_PREFIX = "IDEMPOTENCY_KEY_"
EXAMPLE_REQUEST_ID = "5f0c6a3e-2b7d-4c1e-9a8f-3d2e1b0c9a87"


def document(components: Components) -> None:
    """Register the problem responses, headers and precondition parameters the views name.

    flask-smorest registers its own components under some of these names (NOT_FOUND,
    DEFAULT_ERROR, UNPROCESSABLE_ENTITY, ETAG, PAGINATION, IF_MATCH) when the Api is made, and
    refers to UNPROCESSABLE_ENTITY, DEFAULT_ERROR and PAGINATION itself; its public API has
    no switch for their content type or shape. They are registered lazily, and a lazy
    registration under the same name replaces them, so call this right after Api(app) and
    before any blueprint is registered. apispec refuses a name that is already in the spec,
    so if either library ever registers them for good, the app fails to start instead of
    serving smorest's shapes.
    """
    for name, header in HEADERS.items():
        components.header(name, header, lazy=True)
    for name, parameter in PRECONDITION_PARAMETERS.items():
        components.parameter(name, "header", parameter, lazy=True)
    for status in HTTPStatus:
        if status >= HTTPStatus.BAD_REQUEST:
            components.response(status.name, _problem(status), lazy=True)
    components.response(DEFAULT_ERROR, _problem(None), lazy=True)


def _problem(status: HTTPStatus | None) -> dict[str, Any]:
    """Describe a problem-details response; None is the default (unexpected) one."""
    headers: dict[str, Any] = dict(EVERY_RESPONSE_HEADERS)
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = "RETRY_AFTER"
    elif status is not None and (passing := _passing(status)):
        headers["Retry-After"] = {  # sent with some of the status's codes only
            "description": "Seconds to wait before trying again; sent with "
            + ", ".join(f"{code} ({seconds} s)" for code, seconds in passing.items())
            + ".",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
        }
    shown = status or HTTPStatus.INTERNAL_SERVER_ERROR
    return {
        "description": status.phrase if status else "Problem details (500 INTERNAL_ERROR)",
        "headers": headers,
        "content": {PROBLEM_JSON: {"schema": ProblemSchema, "examples": examples(shown)}},
    }


def examples(status: HTTPStatus) -> dict[str, dict[str, Any]]:
    """Return one named example body for each code a problem with this status carries."""
    details = {cls.code: cls.public_detail for cls in _service_errors() if cls.status == status}
    if not details or status in HTTP_CODES:  # werkzeug's or smorest's own, beside the service's
        details.setdefault(HTTP_CODES.get(status, status.name), _http_detail(status))
    bodies = {}
    for code, detail in details.items():
        body = problem_body(int(status), code, detail, _instance(code), EXAMPLE_REQUEST_ID)
        if code == HTTP_CODES[HTTPStatus.UNPROCESSABLE_ENTITY]:
            body["errors"] = EXAMPLE_ERRORS
        bodies[code] = {"summary": code, "value": body}
    return bodies


def _instance(code: str) -> str:
    """Return the path an example of this code names as its `instance`."""
    if code == HTTP_CODES.get(HTTPStatus.NOT_FOUND, HTTPStatus.NOT_FOUND.name):
        return EXAMPLE_NO_ROUTE_PATH
    if code.startswith(CREATE_ONLY_PREFIX):
        return EXAMPLE_COLLECTION_PATH
    return EXAMPLE_USER_PATH


def _http_detail(status: HTTPStatus) -> str:
    """Return the detail problems.py shows for werkzeug's or smorest's error of this status."""
    if status == HTTPStatus.UNPROCESSABLE_ENTITY:
        return VALIDATION_DETAIL
    werkzeug_error = default_exceptions.get(status)
    return (werkzeug_error and werkzeug_error.description) or status.description


def _passing(status: HTTPStatus) -> dict[str, int]:
    """Return the codes of this status that pass, with their Retry-After (409 IN_FLIGHT: 1)."""
    return {
        cls.code: cls.retry_after
        for cls in _service_errors()
        if cls.status == status and cls.retry_after is not None
    }


def _service_errors() -> list[type[ServiceError]]:
    """Return ServiceError and every subclass of it, however deep."""
    found: list[type[ServiceError]] = [ServiceError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


class ContractPlugin(BasePlugin):
    """Document what marshmallow and smorest cannot say on their own."""

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> Any:
        """Add the JSON Schema keywords a schema's `Meta.openapi` names (minProperties, ...)."""
        schema = kwargs.get("schema")
        meta = getattr(resolve_schema_cls(schema), "Meta", None) if schema else None
        return getattr(meta, "openapi", None)

    def operation_helper(self, path: Any = None, operations: Any = None, **kwargs: Any) -> None:
        """Add the every-response headers to inline responses; problem components have them."""
        for operation in (operations or {}).values():
            for status, response in operation.get("responses", {}).items():
                if isinstance(response, dict):
                    headers = {**response.get("headers", {}), **EVERY_RESPONSE_HEADERS}
                    operation["responses"][status] = {**response, "headers": headers}
