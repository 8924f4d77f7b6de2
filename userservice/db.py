"""Own the process's connection pool: what it connects to, and when a failure means 503."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app

from . import emulator, queries
from .errors import DatabaseUnavailable
from .pool import ConnectionPool, PoolClosed, PoolTimeout
from .settings import Settings

EXTENSION_KEY = "userservice.db"
SCHEMA = ("create_users_id_seq", "create_users_table")
log = logging.getLogger(__name__)


class Database:
    """Create the pool lazily in each process, so forked workers never share a socket."""

    def __init__(self, settings: Settings, connect: Callable[[], Any] | None = None) -> None:
        self.settings = settings
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
        if connect is None and s.use_emulator:
            self._emulator = emulator.Emulator(
                s.emulator_data_dir, database=s.snowflake_database, schema=s.snowflake_schema
            )
            connect = self._emulator.connect
        return ConnectionPool(
            connect or snowflake_connector(s),
            min_size=s.db_pool_min_connections,
            max_size=s.db_pool_max_connections,
            timeout=s.db_pool_timeout,
            max_lifetime=s.db_pool_max_lifetime,
            max_idle=s.db_pool_max_idle,
            check=_ping,
            is_broken=is_connection_error,
            name="snowflake",
        )


def snowflake_connector(settings: Settings) -> Callable[[], Any]:
    """Return a connect function for the Snowflake account the settings name."""
    s = settings
    options: dict[str, Any] = {
        "account": s.snowflake_account,
        "user": s.snowflake_user,
        "password": s.snowflake_password or None,
        "role": s.snowflake_role or None,
        "warehouse": s.snowflake_warehouse or None,
        "database": s.snowflake_database,
        "schema": s.snowflake_schema,
        "host": s.snowflake_host or None,
        "port": s.snowflake_port,
        "protocol": s.snowflake_protocol,
        "paramstyle": "qmark",
        "login_timeout": s.snowflake_login_timeout,
        "network_timeout": s.snowflake_network_timeout,
        "socket_timeout": s.snowflake_socket_timeout,
        "application": "userservice",
        "session_parameters": {
            "QUERY_TAG": f"userservice:{s.environment}",
            "STATEMENT_TIMEOUT_IN_SECONDS": s.snowflake_statement_timeout,
            "TIMEZONE": "UTC",
            "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
        },
    }
    options = {key: value for key, value in options.items() if value is not None}

    def connect() -> Any:
        # Imported here: the connector takes 300-480 ms to import, which a Lambda cold
        # start or a health check should not pay before it needs a connection.
        import snowflake.connector

        return snowflake.connector.connect(**options)

    return connect


def is_connection_error(exc: BaseException) -> bool:
    """Tell whether an error means the connection, not the statement, failed."""
    from snowflake.connector import errors

    if isinstance(exc, errors.ProgrammingError):
        return exc.errno in (390114, 390111, 390112)  # session or token expired
    return isinstance(exc, (errors.OperationalError, errors.InterfaceError, OSError))


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
    try:
        with get().pool.connection(timeout) as conn:
            yield conn
    except (PoolTimeout, PoolClosed) as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    except Exception as exc:
        if is_connection_error(exc):
            raise DatabaseUnavailable(type(exc).__name__) from exc
        raise


def create_schema() -> None:
    """Apply the DDL in sql/ (table and sequence); safe to run again."""
    with connection() as conn:
        for name in SCHEMA:
            queries.run(conn, name)


def init_app(app: Flask, connect: Callable[[], Any] | None = None) -> None:
    """Attach a Database to the app and register the `init-db` command."""
    database = Database(app.config["SETTINGS"], connect)
    app.extensions[EXTENSION_KEY] = database
    app.cli.add_command(init_db_command)
    if database.settings.use_emulator:
        log.info(
            "using the embedded Snowflake emulator (fakesnow); data in %s",
            Path(database.settings.emulator_data_dir).resolve(),
        )


@click.command("init-db")
def init_db_command() -> None:
    """Create the users table and its sequence."""
    create_schema()
    click.echo("Created the users table and sequence.")


def _ping(conn: Any) -> None:
    queries.run(conn, "ping")
