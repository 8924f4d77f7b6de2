"""Own the process's connection pool: what it connects to, and when a failure means 503."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g

from ..errors import DatabaseBusy, DatabaseUnavailable, ServiceError
from ..proxies import unproxied
from ..settings import Settings
from . import budget, emulator, queries
from .connector import (
    close_connection,
    describe,
    is_busy,
    is_connection_error,
    snowflake_connector,
)
from .figures import RequestFigures
from .pool import ConnectionPool, PoolClosed, PoolTimeout

EXTENSION_KEY = "userservice.db"
SCHEMA = ("create_users_id_seq", "create_users_table", "create_idempotency_keys_table")
HYBRID_SCHEMA = (
    "create_users_id_seq",
    "create_users_hybrid_table",
    "create_idempotency_keys_hybrid_table",
)
log = logging.getLogger(__name__)


class Database:
    """Create the pool lazily in each process, so forked workers never share a socket."""

    def __init__(self, app: Flask, connect: Callable[[], Any] | None = None) -> None:
        self.settings: Settings = app.config["SETTINGS"]
        if connect is None and not self.settings.use_emulator:
            # Built now, so settings that cannot log in (or a key that will not decrypt)
            # stop the start rather than the first request.
            connect = snowflake_connector(self.settings)
        self._app = app
        self._connect = connect
        self._pool: ConnectionPool[Any] | None = None
        self._emulator: emulator.Emulator | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def pool(self) -> ConnectionPool[Any]:
        """Return this process's pool, creating it on first use."""
        if self._pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    self._pool = self._create_pool()
                    self._pid = os.getpid()
        return self._pool

    def stats(self) -> dict[str, int] | None:
        """Return the pool's figures, or None while this process has no pool yet."""
        if self._pool is None or self._pid != os.getpid():
            return None
        return self._pool.get_stats()

    def close(self) -> None:
        """Close this process's pool, and the emulator if it runs one."""
        if self._pid != os.getpid():
            return
        if self._pool is not None:
            self._pool.close()
            log.info("closed the connection pool of process %d", self._pid)
        if self._emulator is not None:
            self._emulator.close()

    def restart_pool(self) -> None:
        """Close this process's pool and forget it: the next use starts a fresh pool."""
        # Connections still lent out close as they come back; SnapStart's hooks call this.
        with self._lock:
            if self._pid == os.getpid():
                self.close()
            self._pool = self._emulator = None

    def _create_pool(self) -> ConnectionPool[Any]:
        s = self.settings
        connect = self._connect
        if connect is None:
            self._emulator = emulator.Emulator(
                s.emulator_data_dir, database=s.snowflake_database, schema=s.snowflake_schema
            )
            connect = self._emulator.connect
        return ConnectionPool(
            connect,
            min_size=s.db_pool_min_connections,
            max_size=s.db_pool_max_connections,
            timeout=s.db_pool_timeout,
            # The connector's own worst case for a login (its last attempt may start just
            # before login_timeout, after a 1 s backoff), plus 1 s: past it, the connect is hung.
            connect_timeout=s.snowflake_login_timeout + s.snowflake_socket_timeout + 2,
            max_lifetime=s.db_pool_max_lifetime,
            max_idle=s.db_pool_max_idle,
            check=self._ping,
            # The connector's own flag: a connection closed under us is replaced unnoticed.
            is_closed=lambda conn: bool(conn.is_closed()),
            is_broken=is_connection_error,
            close=close_connection,
            name="snowflake",
        )

    def _ping(self, conn: Any) -> None:
        # The pool checks connections on threads of its own, outside any request.
        with self._app.app_context():
            queries.run(conn, "ping")


def get_from(app: Flask) -> Database:
    """Return an app's Database."""
    database: Database = app.extensions[EXTENSION_KEY]
    return database


def get() -> Database:
    """Return the current app's Database."""
    return get_from(current_app)


@contextmanager
def connection(timeout: float | None = None) -> Iterator[Any]:
    """Lend a pooled connection; a failure the client should retry becomes a 503."""
    database = get_from(unproxied(current_app))
    state = unproxied(g)  # the app context's: the request's figures and budget (proxies.py)
    figures: RequestFigures | None = state.get("figures")
    # Within a request, a connection is waited for only as long as the request's time budget
    # leaves room for it and one statement on it (budget.py).
    budget.start(database.settings, state)
    left = budget.require(state)
    if left != math.inf:
        timeout = min(database.settings.db_pool_timeout if timeout is None else timeout, left)
    started = time.perf_counter()
    try:
        with database.pool.connection(timeout) as conn:
            if figures is not None:
                figures.add_wait(time.perf_counter() - started)
            yield conn
    except Exception as exc:
        if figures is not None and isinstance(exc, PoolTimeout):
            figures.add_wait(time.perf_counter() - started, timed_out=True)
        error = _as_503(exc, database.settings.db_retry_after)
        if error is None:
            raise
        raise error from exc


def ping(timeout: float) -> None:
    """Check that the database answers, raising a 503 within timeout whatever it does."""
    database = get()
    try:
        database.pool.probe(timeout)
    except Exception as exc:
        error = _as_503(exc, database.settings.db_retry_after)
        if error is None:
            raise
        raise error from exc


def _as_503(exc: Exception, retry_after: int) -> ServiceError | None:
    """Return the 503 an error means for the client, or None when it means none."""
    if isinstance(exc, (PoolTimeout, PoolClosed)):
        cause = exc.__cause__
        detail = f"{exc}; last connect: {describe(cause)}" if cause else str(exc)
        return DatabaseUnavailable(detail, retry_after=retry_after)
    if isinstance(exc, ServiceError):
        return None
    if is_busy(exc):
        return DatabaseBusy(describe(exc), retry_after=retry_after)
    if is_connection_error(exc):
        return DatabaseUnavailable(describe(exc), retry_after=retry_after)
    return None


def create_schema(*, hybrid: bool = False) -> None:
    """Apply the DDL in sql/ (sequence, standard or hybrid tables); safe to run again."""
    with connection() as conn:
        for name in HYBRID_SCHEMA if hybrid else SCHEMA:
            queries.run(conn, name)


def init_app(app: Flask, connect: Callable[[], Any] | None = None) -> None:
    """Load and check the SQL catalogue, then attach a Database to the app."""
    queries.init_app(app)
    database = Database(app, connect)
    app.extensions[EXTENSION_KEY] = database
    if database.settings.use_emulator:
        log.info(
            "using the embedded Snowflake emulator (fakesnow); data in %s",
            Path(database.settings.emulator_data_dir).resolve(),
        )
