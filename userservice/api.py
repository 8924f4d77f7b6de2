"""Wire flask-smorest: JSON-only bodies, the spec (its components in spec.py), local docs."""

from __future__ import annotations

import http
import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import flask_smorest
from apispec import BasePlugin
from flask import Flask, current_app, request
from flask.views import MethodView
from webargs import missing
from webargs.flaskparser import FlaskParser, is_json_request

from . import paths, spec
from .errors import MalformedJson, UnsupportedMediaType
from .proxies import unproxied
from .schemas import ProblemSchema

ViewT = TypeVar("ViewT", bound=Callable[..., Any])
API_TITLE = "userservice"
API_VERSION = "v1"


class JsonParser(FlaskParser):
    """Parse bodies as JSON only (415, 400), and query integers as ASCII digits only (422)."""

    def load_json(self, req: Any, schema: Any) -> Any:
        """Load the JSON body (framing.py has read it), refusing anything ambiguous."""
        if not is_json_request(req):
            raise UnsupportedMediaType()
        try:
            text = req.get_data(cache=True).decode()
            if not text:
                return missing
            return json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
        except RecursionError:
            raise MalformedJson("The JSON body is nested too deeply.") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedJson() from None
        except ValueError:
            # Python refuses to read an integer of more than 4,300 digits.
            raise MalformedJson("The JSON body holds a number too long to read.") from None

    def load_querystring(self, req: Any, schema: Any) -> Any:
        """Load the query string, refusing repeated parameters and oddly spelled integers."""
        paths.check_query(req.args, schema)
        return super().load_querystring(req, schema)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object; one that names a key twice means different things to parsers."""
    built = dict(pairs)
    if len(built) != len(pairs):
        raise MalformedJson("The JSON body names the same key twice.")
    return built


def _no_constant(name: str) -> NoReturn:
    """Refuse NaN and Infinity, which Python reads but JSON (RFC 8259) does not have."""
    raise MalformedJson(f"{name} is not JSON.")


class Blueprint(flask_smorest.Blueprint):
    """A smorest blueprint that parses with JsonParser and documents problem responses."""

    ARGUMENTS_PARSER = JsonParser()
    PAGINATION_ARGUMENTS_PARSER = ARGUMENTS_PARSER

    def problems(self, *statuses: int, **doc: Any) -> Callable[[ViewT], ViewT]:
        """Document the problem-details responses a view can give (spec.py describes them).

        Any other documentation of the view comes along in `doc` (as `Blueprint.doc` takes
        it): smorest wraps the view once per decorator, and each wrapper runs on every call.
        """
        responses = {**doc.pop("responses", {})}
        responses.update({status: http.HTTPStatus(status).name for status in statuses})
        return self.doc(**doc, responses=responses)  # type: ignore[no-any-return]


class View(MethodView):
    """A class-based view of the API: one instance serves every request (it holds no state).

    Dispatched as MethodView does, reading the request and app through their proxies once
    each, not three times (proxies.py).
    """

    init_every_request = False

    def dispatch_request(self, **kwargs: Any) -> Any:
        """Call the method named by the request's (HEAD: GET's, when there is no head())."""
        method = unproxied(request).method
        handler = getattr(self, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(self, "get", None)
        assert handler is not None, f"Unimplemented method {method!r}"
        return unproxied(current_app).ensure_sync(handler)(**kwargs)


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
