"""Own the process's connection pool: what it connects to, and when a failure means 503."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from . import emulator, queries
from .connector import snowflake_connector
from .credentials import is_login_refused
from .errors import DatabaseUnavailable
from .pool import ConnectionPool, PoolClosed, PoolTimeout
from .secrets_manager import SecretError
from .settings import Settings

EXTENSION_KEY = "userservice.db"
SCHEMA = ("create_users_id_seq", "create_users_table")
HYBRID_SCHEMA = ("create_users_id_seq", "create_users_hybrid_table")
# Connector errnos that mean the session or connection is gone: 2500xx are the connector's
# own (could not connect, connection closed), 3901xx Snowflake's (session or token expired).
SESSION_GONE = frozenset({250001, 250002, 390111, 390112, 390113, 390114, 390115})
log = logging.getLogger(__name__)


class Database:
    """Create the pool lazily in each process, so forked workers never share a socket."""

    def __init__(self, settings: Settings, connect: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        if connect is None and not settings.use_emulator:
            # Built now, so settings that cannot log in (or a key that will not decrypt)
            # stop the start rather than the first request.
            connect = snowflake_connector(settings)
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
        if self._emulator is not None:
            self._emulator.close()

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
            max_lifetime=s.db_pool_max_lifetime,
            max_idle=s.db_pool_max_idle,
            check=_ping,
            is_broken=is_connection_error,
            name="snowflake",
        )


def is_connection_error(exc: BaseException) -> bool:
    """Tell whether an error means the connection, not the statement, failed."""
    from snowflake.connector import errors

    if isinstance(exc, SecretError) or is_login_refused(exc):
        return True
    # HttpError: the endpoint refused the request itself (a 401 for a session a restarted
    # server no longer knows, say); the session is unusable, whatever the statement.
    if isinstance(exc, (errors.OperationalError, errors.InterfaceError, errors.HttpError, OSError)):
        return True
    return isinstance(exc, errors.DatabaseError) and exc.errno in SESSION_GONE


def get_from(app: Flask) -> Database:
    """Return an app's Database."""
    database: Database = app.extensions[EXTENSION_KEY]
    return database


def get() -> Database:
    """Return the current app's Database."""
    return get_from(current_app)


@contextmanager
def connection(timeout: float | None = None) -> Iterator[Any]:
    """Lend a pooled connection; a connection failure becomes DatabaseUnavailable (503)."""
    started = time.perf_counter()
    try:
        with _Lease(get().pool, timeout) as lease:
            _note_wait(time.perf_counter() - started)
            yield lease
    except (PoolTimeout, PoolClosed) as exc:
        _note_wait(time.perf_counter() - started, timed_out=isinstance(exc, PoolTimeout))
        raise DatabaseUnavailable(str(exc)) from exc
    except Exception as exc:
        if is_connection_error(exc):
            raise DatabaseUnavailable(describe(exc)) from exc
        raise


def waits() -> tuple[float, int]:
    """Return the seconds the current request waited for connections, and its pool timeouts."""
    found = queries.figures()
    return (found.pool_wait, found.pool_timeouts) if found else (0.0, 0)


def _note_wait(seconds: float, *, timed_out: bool = False) -> None:
    found = queries.figures()
    if found is not None:
        found.pool_wait += seconds
        found.pool_timeouts += timed_out


def describe(exc: BaseException) -> str:
    """Name an error by its type and Snowflake codes only; its message may quote a host or SQL."""
    errno, sqlstate = getattr(exc, "errno", None), getattr(exc, "sqlstate", None)
    codes = [f"{errno:06d}" if isinstance(errno, int) and errno > 0 else ""]
    codes.append(f"({sqlstate})" if sqlstate and sqlstate != "n/a" else "")
    return " ".join([type(exc).__name__, *filter(None, codes)])


class _Lease:
    """A pooled connection, swapped once for a fresh one if it cannot open a cursor.

    Opening a cursor sends no statement, so a connection found dead there (closed, or its
    session expired) is replaced unnoticed. A failure once a statement is sent is never
    retried here: it may be a write that Snowflake ran.
    """

    def __init__(self, pool: ConnectionPool[Any], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._lent: AbstractContextManager[Any] | None = None
        self._conn: Any = None
        self._swapped = False

    def __enter__(self) -> _Lease:
        lent = self._pool.connection(self._timeout)
        self._conn = lent.__enter__()
        self._lent = lent
        return self

    def __exit__(self, *exc_info: Any) -> bool | None:
        lent, self._lent = self._lent, None
        return lent.__exit__(*exc_info) if lent is not None else None

    def cursor(self) -> Any:
        """Open a cursor, on a fresh connection if this one is found dead."""
        try:
            return self._conn.cursor()
        except Exception as exc:
            if self._swapped or not is_connection_error(exc):
                raise
            log.info("replacing a connection that could not open a cursor (%s)", type(exc).__name__)
            self._swapped = True
            self.__exit__(type(exc), exc, exc.__traceback__)  # the pool discards it
        self.__enter__()
        return self._conn.cursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def create_schema(*, hybrid: bool = False) -> None:
    """Apply the DDL in sql/ (sequence, and a standard or hybrid table); safe to run again."""
    with connection() as conn:
        for name in HYBRID_SCHEMA if hybrid else SCHEMA:
            queries.run(conn, name)


def init_app(app: Flask, connect: Callable[[], Any] | None = None) -> None:
    """Attach a Database to the app."""
    database = Database(app.config["SETTINGS"], connect)
    app.extensions[EXTENSION_KEY] = database
    if database.settings.use_emulator:
        log.info(
            "using the embedded Snowflake emulator (fakesnow); data in %s",
            Path(database.settings.emulator_data_dir).resolve(),
        )


def _ping(conn: Any) -> None:
    queries.run(conn, "ping")
