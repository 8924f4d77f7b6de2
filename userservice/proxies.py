"""The objects behind Flask's context proxies, for code that reads them several times a request.

`flask.request`, `flask.g` and `flask.current_app` are werkzeug LocalProxy objects: every
attribute read through one looks the context up again (a ContextVar read and three Python
calls, about a microsecond on these machines: docs/PERFORMANCE.md). werkzeug documents
`LocalProxy._get_current_object()` for taking the object once, as "useful for performance if
you are accessing the object multiple times in a function".
"""

from __future__ import annotations

from typing import TypeVar, cast

from werkzeug.local import LocalProxy

T = TypeVar("T")


def unproxied(proxy: T) -> T:
    """Return the object a Flask proxy stands for in the current context."""
    return cast("LocalProxy[T]", proxy)._get_current_object()
