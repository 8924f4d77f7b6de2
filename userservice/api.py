"""Wire flask-smorest: JSON-only bodies, the whole HTTP contract in the spec, local docs."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import flask_smorest
from apispec import BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask
from flask_smorest.pagination import PaginationMetadataSchema
from webargs.flaskparser import FlaskParser, is_json_request

from .errors import PROBLEM_JSON, MalformedJson, UnsupportedMediaType
from .schemas import ProblemSchema

ViewT = TypeVar("ViewT", bound=Callable[..., Any])
API_TITLE = "userservice"
API_VERSION = "v1"


def _header(description: str, **schema: Any) -> dict[str, Any]:
    """Describe a response header that is always sent."""
    return {"description": description, "required": True, "schema": schema}


# The headers hooks.py adds to every response, success or problem.
EVERY_RESPONSE_HEADERS = {
    "X-Request-ID": "X_REQUEST_ID",
    "X-Process-Time": "X_PROCESS_TIME",
    "Server-Timing": "SERVER_TIMING",
}
RESPONSE_HEADERS = {
    "X_REQUEST_ID": _header(
        "The caller's X-Request-ID when it is 1-128 letters, digits and `-._:`, else a new UUID4.",
        type="string",
        pattern=r"^[A-Za-z0-9\-._:]{1,128}$",
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
}
ETAG_HEADER = _header("The user's entity tag.", type="string", pattern=r'^"v[0-9]+"$')
PAGINATION_HEADER = {
    # The value is a JSON document; `content` is how OpenAPI 3 says so (not an object `schema`,
    # which would mean `k,v,k,v` text).
    "description": "Where this page sits in the whole list, as JSON.",
    "required": True,
    "content": {"application/json": {"schema": PaginationMetadataSchema}},
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
}


class JsonParser(FlaskParser):
    """Parse bodies as JSON only: 415 for other types, 400 for JSON that does not parse."""

    def load_json(self, req: Any, schema: Any) -> Any:
        """Load the JSON body, refusing non-JSON types, oversized streams and deep nesting."""
        if not is_json_request(req):
            raise UnsupportedMediaType()
        _refuse_oversized_stream(req)
        try:
            return super().load_json(req, schema)
        except RecursionError:
            raise MalformedJson("The JSON body is nested too deeply.") from None
        except ValueError:
            # Python refuses to read an integer of more than 4,300 digits.
            raise MalformedJson("The JSON body holds a number too long to read.") from None

    def _handle_invalid_json_error(self, error: Any, req: Any, *a: Any, **kw: Any) -> NoReturn:
        raise MalformedJson()


def _refuse_oversized_stream(req: Any) -> None:
    """Answer 413 for a streamed body (no Content-Length) that reaches MAX_CONTENT_LENGTH.

    werkzeug stops reading such a body at the limit without complaint, and raises 413
    only on a read past it; without this, a chunked 10 MB body through gunicorn is cut
    to the limit and parsed (a 400, or a truncated document that happens to parse).
    A streamed body of exactly the limit is refused too: the two cannot be told apart.
    """
    limit = req.max_content_length
    if req.content_length is None and limit is not None and len(req.get_data()) >= limit:
        req.stream.read(1)


class Blueprint(flask_smorest.Blueprint):
    """A smorest blueprint that parses with JsonParser."""

    ARGUMENTS_PARSER = JsonParser()

    def alt_response(self, *args: Any, **kwargs: Any) -> Callable[[ViewT], ViewT]:
        """Document an alternative response, as smorest does, without wrapping the view."""
        return _document_only(super().alt_response(*args, **kwargs))

    @staticmethod
    def doc(**kwargs: Any) -> Callable[[ViewT], ViewT]:
        """Add to a view's documentation, as smorest does, without wrapping the view."""
        return _document_only(flask_smorest.Blueprint.doc(**kwargs))

    def problems(self, *statuses: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Document the problem-details responses a view can give."""

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            for status in statuses:
                view = self.alt_response(status, response=http.HTTPStatus(status).name)(view)
            return view

        return decorator


def _document_only(decorator: Callable[[ViewT], Any]) -> Callable[[ViewT], ViewT]:
    """Keep the documentation a smorest decorator records, but not the wrapper it adds.

    smorest's alt_response() and doc() wrap the view in a function that only calls it (through
    current_app.ensure_sync), a layer every request pays for; the docs live in `_apidoc`.
    """

    def keep_view(view: ViewT) -> ViewT:
        view._apidoc = decorator(view)._apidoc  # type: ignore[attr-defined]
        return view

    return keep_view


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


class Api(flask_smorest.Api):
    """A smorest Api whose spec documents problem details, headers and preconditions."""

    def _register_responses(self) -> None:
        for name, header in RESPONSE_HEADERS.items():
            self.spec.components.header(name, header, lazy=True)
        for status in http.HTTPStatus:
            self.spec.components.response(status.name, _problem(status), lazy=True)
        self.spec.components.response("DEFAULT_ERROR", _problem(None), lazy=True)

    def _register_etag_headers(self) -> None:
        self.spec.components.header("ETAG", ETAG_HEADER, lazy=True)
        for name, parameter in PRECONDITION_PARAMETERS.items():
            self.spec.components.parameter(name, "header", parameter, lazy=True)

    def _register_pagination_header(self) -> None:
        self.spec.components.header("PAGINATION", PAGINATION_HEADER, lazy=True)


def _problem(status: http.HTTPStatus | None) -> dict[str, Any]:
    """Describe a problem-details response; None is the default (unexpected) one."""
    headers = dict(EVERY_RESPONSE_HEADERS)
    if status == http.HTTPStatus.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = "RETRY_AFTER"
    return {
        "description": status.phrase if status else "Problem details (500 INTERNAL_ERROR)",
        "headers": headers,
        "content": {PROBLEM_JSON: {"schema": ProblemSchema}},
    }


def configure(app: Flask) -> Api:
    """Set smorest's options (docs only outside production) and return the Api."""
    settings = app.config["SETTINGS"]
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        API_SPEC_OPTIONS={
            "info": {"description": "Users on Snowflake. Errors are RFC 9457 problem details."}
        },
    )
    if settings.docs_enabled:
        app.config.update(
            OPENAPI_URL_PREFIX="/",
            OPENAPI_JSON_PATH="openapi.json",
            OPENAPI_SWAGGER_UI_PATH="docs",
            # Relative, so the page finds its assets under a stage prefix too (/prod/docs).
            OPENAPI_SWAGGER_UI_URL="static/swagger-ui/",
            OPENAPI_REDOC_PATH="redoc",
            OPENAPI_REDOC_URL="static/redoc/redoc.standalone.js",
        )
    return Api(app, spec_kwargs={"extra_plugins": [ContractPlugin()]})
