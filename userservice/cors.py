"""Answer cross-origin requests from browsers on the CORS_ORIGINS allow-list."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, current_app

from .responses import frame_of, has_header

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
# What a browser client of this API sends and must read: conditional requests, a create's
# Idempotency-Key and its replay mark, and W3C trace context both ways.
ALLOW_HEADERS = (
    "Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID, Idempotency-Key, "
    "traceparent, tracestate"
)
EXPOSE_HEADERS = (
    "ETag, Location, X-Pagination, X-Request-ID, X-Process-Time, Server-Timing, Retry-After, "
    "WWW-Authenticate, Idempotent-Replayed, traceresponse"
)
MAX_AGE = "600"


def preflight(environ: Mapping[str, object]) -> Response | None:
    """Answer a preflight (OPTIONS with Origin and Access-Control-Request-Method) with 204."""
    # The WSGI names: cheaper than request.headers, per request.
    asks = "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
    if not asks or str(environ.get("REQUEST_METHOD", "")).upper() != "OPTIONS":
        return None
    response = current_app.response_class(status=204)
    if _allowed_origin(environ):
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


def add_headers(response: Response, environ: Mapping[str, object]) -> Response:
    """Let an allowed origin read the response; say that the answer varies by Origin.

    Sent with the frame's headers (responses.py), unless the answer already has a Vary.
    """
    frame = frame_of(response)
    if has_header(response, "Vary"):  # response.vary parses and rebuilds the header
        response.vary.add("Origin")
    else:
        frame.append(("Vary", "Origin"))
    origin = _allowed_origin(environ)
    if origin:
        frame.append(("Access-Control-Allow-Origin", origin))
        frame.append(("Access-Control-Expose-Headers", EXPOSE_HEADERS))
        if current_app.config["SETTINGS"].cors_allow_credentials:
            frame.append(("Access-Control-Allow-Credentials", "true"))
    return response


def _allowed_origin(environ: Mapping[str, object]) -> str | None:
    """Return the Allow-Origin value for this request's Origin, or None when not allowed."""
    origin = str(environ.get("HTTP_ORIGIN", "")).rstrip("/")
    if not origin:
        return None
    allowed = current_app.config["SETTINGS"].cors_allowed_origins
    if not allowed:
        return None
    if origin in allowed:
        return origin
    # Settings refuse `*` together with credentials, so `*` here means anonymous access.
    return "*" if "*" in allowed else None
