"""The database layer: a per-process pool of Snowflake (or emulator) connections, and the SQL.

`init_app` loads and checks every statement in sql/ and attaches the pool; inside a request,
`with connection() as conn:` lends a connection and `queries.run(conn, "get_user", id=7)` runs
a named statement on it. A failure the client should retry becomes a 503 (errors.py), and what
the request spent is added to its `RequestFigures`. The pool (pool.py) knows nothing of
Snowflake: connector.py hands it a `connect` function.
"""

from __future__ import annotations

from . import queries
from .connector import is_duplicate_key
from .database import (
    EXTENSION_KEY,
    SCHEMA,
    Database,
    connection,
    create_schema,
    get,
    get_from,
    init_app,
    ping,
)
from .figures import RequestFigures
from .queries import REQUEST_ID

__all__ = [
    "EXTENSION_KEY",
    "REQUEST_ID",
    "SCHEMA",
    "Database",
    "RequestFigures",
    "connection",
    "create_schema",
    "get",
    "get_from",
    "init_app",
    "is_duplicate_key",
    "ping",
    "queries",
]
