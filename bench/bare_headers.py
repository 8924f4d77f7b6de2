"""bench/bare_wsgi.py with the eight headers the service adds to each answer: what they cost.

ETag, Vary, X-Request-ID, X-Process-Time, Server-Timing, X-Content-Type-Options, Cache-Control
and traceresponse, with values of the service's lengths, appended at `start_response`. gunicorn
checks and formats every header an app sends; the difference between this app and bare_wsgi
under the same worker is that cost alone (docs/PERFORMANCE.md, figure a).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.bare_wsgi import app

SERVICE_HEADERS = [
    ("ETag", '"v1"'),
    ("Vary", "Origin"),
    ("X-Request-ID", "5b0c7d3e-8f7a-4b1e-9c2d-1a2b3c4d5e6f"),
    ("X-Process-Time", "0.000123"),
    ("Server-Timing", "app;dur=0.12, db;dur=0.01"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("traceresponse", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),
]
_bare = app.wsgi_app


def _with_headers(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, headers + SERVICE_HEADERS, exc_info)

    return _bare(environ, start)


app.wsgi_app = _with_headers  # type: ignore[method-assign]
