"""Answer cross-origin requests from browsers on the CORS_ORIGINS allow-list."""

from __future__ import annotations

from flask import Response, current_app, request

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


def preflight() -> Response | None:
    """Answer a preflight (OPTIONS with Origin and Access-Control-Request-Method) with 204."""
    environ = request.environ  # the WSGI names: cheaper than request.headers, per request
    asks = "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
    if not asks or str(environ.get("REQUEST_METHOD", "")).upper() != "OPTIONS":
        return None
    response = current_app.response_class(status=204)
    if _allowed_origin():
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


def add_headers(response: Response) -> Response:
    """Let an allowed origin read the response; say that the answer varies by Origin."""
    # response.vary parses and rebuilds the header; most answers have no Vary yet.
    if "Vary" in response.headers:
        response.vary.add("Origin")
    else:
        response.headers["Vary"] = "Origin"
    origin = _allowed_origin()
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        if current_app.config["SETTINGS"].cors_allow_credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


def _allowed_origin() -> str | None:
    """Return the Allow-Origin value for this request's Origin, or None when not allowed."""
    origin = str(request.environ.get("HTTP_ORIGIN", "")).rstrip("/")
    if not origin:
        return None
    allowed = current_app.config["SETTINGS"].cors_allowed_origins
    if not allowed:
        return None
    if origin in allowed:
        return origin
    # Settings refuse `*` together with credentials, so `*` here means anonymous access.
    return "*" if "*" in allowed else None
