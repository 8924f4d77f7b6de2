"""The app's response class: the frame's headers join the answer's own as it is sent.

The frame (hooks.py, cors.py, tracing.py) gives every answer up to nine headers: its ID,
timing, security and caching, CORS and trace. werkzeug's `Headers` checks each value it is
given and scans its list on each set: about 110k instructions per request for these alone
(docs/PERFORMANCE.md). Their values are the service's own, made from parts already checked (a
sane request ID, an allowed origin, hex ids, numbers), so they are kept beside the answer's
headers and joined to the WSGI list when it is made, in `get_wsgi_response`: werkzeug's
documented step from a response to what the server sends.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Response
from werkzeug.sansio.response import Response as SansIOResponse

Header = tuple[str, str]


class FramedResponse(Response):
    """A Flask response that sends the frame's headers after its own."""

    frame: list[Header] | None = None

    def get_wsgi_response(self, environ: Any) -> tuple[Any, str, list[Header]]:
        """Return what werkzeug makes of the response, with the frame's headers at the end."""
        app_iter, status, headers = super().get_wsgi_response(environ)
        if self.frame:
            headers.extend(self.frame)  # to_wsgi_list() made the list for this call
        return app_iter, status, headers


def has_header(response: SansIOResponse, name: str) -> bool:
    """Tell whether the answer has a header, by name in any case.

    `name in response.headers` raises and catches a KeyError when it has not: four times the
    cost of this loop.
    """
    lower = name.lower()
    return any(key.lower() == lower for key, _ in response.headers)


def frame_of(response: SansIOResponse) -> list[Header]:
    """Return the list of the frame's headers that `response` will send (started if need be).

    A response of another class (one a view built with werkzeug's own) becomes a
    FramedResponse in place, by werkzeug's `force_type`, as Flask's own make_response does.
    """
    framed = cast(FramedResponse, FramedResponse.force_type(response))  # type: ignore[arg-type]
    if framed.frame is None:
        framed.frame = []
    return framed.frame
