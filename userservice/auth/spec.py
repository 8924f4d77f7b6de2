"""Document bearer authentication in the spec: the scheme, each call's scope, 401, 403 and 503."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import APISpec, BasePlugin

from .. import spec
from ..errors import REALM
from ..problems import PROBLEM_JSON
from ..schemas import ProblemSchema
from ..settings import Settings
from .bearer import READ_METHODS

SCHEME = "bearerAuth"
PROTECTED = "/api/v1/"
WWW_AUTHENTICATE = {
    "description": f'The challenge (RFC 6750): `Bearer realm="{REALM}"`, with `error` and '
    "`scope` when a token was refused.",
    "required": True,
    "schema": {"type": "string", "pattern": "^Bearer "},
}


def _problem(status: HTTPStatus, description: str, **headers: str) -> dict[str, Any]:
    content = {"schema": ProblemSchema, "examples": spec.examples(status)}
    return {
        "description": description,
        "headers": {**spec.EVERY_RESPONSE_HEADERS, **headers},
        "content": {PROBLEM_JSON: content},
    }


RESPONSES = {
    "401": (
        "TOKEN_REFUSED",
        _problem(
            HTTPStatus.UNAUTHORIZED,
            "UNAUTHENTICATED: no `Authorization: Bearer` token; INVALID_TOKEN: the token is "
            "malformed, forged, expired or not for this service.",
            **{"WWW-Authenticate": "WWW_AUTHENTICATE"},
        ),
    ),
    "403": (
        "SCOPE_MISSING",
        _problem(
            HTTPStatus.FORBIDDEN,
            "INSUFFICIENT_SCOPE: the token does not grant the scope this call needs.",
            **{"WWW-Authenticate": "WWW_AUTHENTICATE"},
        ),
    ),
    "503": (
        "UNAVAILABLE",
        _problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The database is unavailable or busy (`code` says which; see the examples), or "
            "AUTH_UNAVAILABLE: the token's key is not cached and the issuer's key set cannot be "
            "fetched. Retry after `Retry-After` seconds.",
            **{"Retry-After": "RETRY_AFTER"},
        ),
    ),
}


class SecurityPlugin(BasePlugin):
    """Declare the bearer scheme, and on every /api/v1 operation its scope and refusals."""

    def __init__(self, settings: Settings) -> None:
        self._read_scope = settings.auth_read_scope
        self._write_scope = settings.auth_write_scope

    def init_spec(self, spec: APISpec) -> None:
        """Register the security scheme and the refusal responses."""
        super().init_spec(spec)
        spec.components.security_scheme(
            SCHEME,
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": f"A JWT from the issuer; `{self._read_scope}` to read, "
                f"`{self._write_scope}` to write.",
            },
        )
        spec.components.header("WWW_AUTHENTICATE", WWW_AUTHENTICATE)
        for name, response in RESPONSES.values():
            spec.components.response(name, response, lazy=True)

    def operation_helper(self, path: Any = None, operations: Any = None, **kwargs: Any) -> None:
        """Give each protected operation its scope and its 401, 403 and 503 answers."""
        if not str(path).startswith(PROTECTED):
            return
        for method, operation in (operations or {}).items():
            scope = self._read_scope if method.upper() in READ_METHODS else self._write_scope
            operation["security"] = [{SCHEME: [scope]}]
            responses = operation.setdefault("responses", {})
            responses.update({status: name for status, (name, _) in RESPONSES.items()})


def plugins(settings: Settings) -> list[BasePlugin]:
    """Return the spec plugins for these settings: none when tokens are not required."""
    return [SecurityPlugin(settings)] if settings.auth_enabled else []
