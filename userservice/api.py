"""Wire flask-smorest: JSON-only bodies, the spec (its components in spec.py), local docs."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from apispec import BasePlugin
from flask import Flask
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import BadRequest

from . import spec
from .errors import MalformedJson, UnsupportedMediaType
from .schemas import ProblemSchema

ViewT = TypeVar("ViewT", bound=Callable[..., Any])
API_TITLE = "userservice"
API_VERSION = "v1"


class JsonParser(FlaskParser):
    """Parse bodies as JSON only: 415 for other types, 400 for JSON that does not parse."""

    def load_json(self, req: Any, schema: Any) -> Any:
        """Load the JSON body, refusing non-JSON types, oversized streams and deep nesting."""
        if not is_json_request(req):
            raise UnsupportedMediaType()
        _refuse_oversized_stream(req)
        try:
            return super().load_json(req, schema)
        except BadRequest:
            # webargs answers a body that does not parse with its own 400 (through abort()).
            raise MalformedJson() from None
        except RecursionError:
            raise MalformedJson("The JSON body is nested too deeply.") from None
        except ValueError:
            # Python refuses to read an integer of more than 4,300 digits.
            raise MalformedJson("The JSON body holds a number too long to read.") from None


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
    """A smorest blueprint that parses with JsonParser and documents problem responses."""

    ARGUMENTS_PARSER = JsonParser()

    def problems(self, *statuses: int) -> Callable[[ViewT], ViewT]:
        """Document the problem-details responses a view can give (spec.py describes them)."""
        responses = {status: http.HTTPStatus(status).name for status in statuses}
        return self.doc(responses=responses)  # type: ignore[no-any-return]


class Api(flask_smorest.Api):
    """A smorest Api whose own error components describe problem details."""

    # smorest puts this schema in the spec with the error components it registers (which
    # spec.document replaces); without it, an unused `Error` schema would stay behind.
    ERROR_SCHEMA = ProblemSchema


def configure(app: Flask, plugins: list[BasePlugin] | None = None) -> Api:
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
    api = Api(app, spec_kwargs={"extra_plugins": [spec.ContractPlugin(), *(plugins or [])]})
    spec.document(api.spec.components)
    return api
