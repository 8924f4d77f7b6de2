"""Fit all of a request's statements in its time budget: one deadline that they share.

Every request is answered within 10 s on the default settings (docs/OPERATIONS.md, "Time
budget"). One statement against a silent database costs at most network_timeout + the
connector's 1 s backoff + socket_timeout (6 s on the defaults) and a connection wait at most
DB_POOL_TIMEOUT (3 s): one of each fits, two statements that both meet a stall do not. A
request whose work takes several connections and statements (a create with an
Idempotency-Key: find, claim, insert, store) would otherwise add them up. So the request's
first connection starts a deadline; a connection or statement is only started when its
worst case still ends before it, the wait for a connection is cut to what is left, and what
cannot start is a 503 at once.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import current_app, has_request_context

from ..errors import DatabaseUnavailable
from ..settings import Settings

BUDGET_SECONDS = 10.0
# Kept for everything after the last statement: the answer, its log line, the front door.
ANSWER_MARGIN_SECONDS = 0.5
# The connector's sleep between two attempts of one request (connector.steady_backoff).
BACKOFF_SECONDS = 1.0
OUT_OF_TIME = "the request's time budget leaves no room for another statement"


def worst_statement(settings: Settings) -> float:
    """Return the longest one statement may take against a database that stopped answering."""
    return settings.snowflake_network_timeout + BACKOFF_SECONDS + settings.snowflake_socket_timeout


def start(settings: Settings, state: Any) -> None:
    """Start the request's deadline at its first connection (a no-op outside a request).

    `state` is the app context's `g` (proxies.py). Only a request has a budget: the CLI's and
    the pool's own app contexts have none.
    """
    if "db_latest_start" not in state and has_request_context():
        deadline = time.perf_counter() + BUDGET_SECONDS - ANSWER_MARGIN_SECONDS
        # The last moment a statement may start and still end, at its worst, by the deadline.
        state.db_latest_start = deadline - worst_statement(settings)


def room(state: Any) -> float:
    """Return the seconds left once one more statement's worst case is set aside (inf: none)."""
    latest: float | None = state.get("db_latest_start")
    return math.inf if latest is None else latest - time.perf_counter()


def require(state: Any) -> float:
    """Return room(), or raise the 503 that says no statement can start in time."""
    left = room(state)
    if left <= 0:
        settings: Settings = current_app.config["SETTINGS"]
        raise DatabaseUnavailable(OUT_OF_TIME, retry_after=settings.db_retry_after)
    return left
