"""Open Snowflake connections (endpoint, login, session settings) and classify their errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from ..settings import Settings
from .credentials import Credentials, is_login_refused
from .secrets_manager import SecretError

log = logging.getLogger(__name__)
# Errnos that mean the session or connection is gone: 2500xx are the connector's own (could
# not connect, connection closed), 3901xx Snowflake's (session or token expired).
SESSION_GONE = frozenset({250001, 250002, 390111, 390112, 390113, 390114, 390115})
# Errnos that mean "busy, retry" while the session stays sound. 000625: the statement was
# aborted waiting for a table's lock, because more than 20 statements already waited for it,
# or because it waited past LOCK_TIMEOUT. 000630: the statement ran past
# STATEMENT_TIMEOUT_IN_SECONDS (or sat queued past STATEMENT_QUEUED_TIMEOUT_IN_SECONDS).
BUSY = frozenset({625, 630})
# A hybrid table's refusal of a duplicate key. Snowflake documents 200001 (22000) for a
# PRIMARY KEY and shows the UNIQUE refusal only by its message ('Duplicate key value violates
# unique constraint "SYS_INDEX_..."'), so both are recognised; the emulator raises both.
DUPLICATE_KEY = 200001
DUPLICATE_KEY_MESSAGE = "Duplicate key value violates unique constraint"


def snowflake_connector(
    settings: Settings,
    *,
    credentials: Credentials | None = None,
    connector: Callable[..., Any] | None = None,
) -> Callable[[], Any]:
    """Return a connect function for the account the settings (or their secret) name."""
    creds = credentials or Credentials(settings)

    def connect() -> Any:
        connect_to = connector or _snowflake_connect()
        effective, login = creds.current()
        try:
            return connect_to(**session_options(effective), **login)
        except Exception as exc:
            # A rotated key or token: the secret may hold new credentials by now.
            if not (is_login_refused(exc) and creds.refresh()):
                raise
            errno = getattr(exc, "errno", None)
            log.warning(
                "Snowflake refused the login (errno %s); the secret changed, retrying", errno
            )
        effective, login = creds.current()
        return connect_to(**session_options(effective), **login)

    return connect


def session_options(settings: Settings) -> dict[str, Any]:
    """Return the connector's arguments other than the login: endpoint, session, timeouts."""
    s = settings
    tag = {"service": "userservice", "env": s.environment, "version": s.service_version}
    options: dict[str, Any] = {
        "account": s.snowflake_account,
        "user": s.snowflake_user or None,
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
        "backoff_policy": steady_backoff,
        "application": "userservice",
        "session_parameters": {
            "QUERY_TAG": json.dumps(tag, separators=(",", ":")),
            "STATEMENT_TIMEOUT_IN_SECONDS": s.snowflake_statement_timeout,
            # A statement still queued when we have answered 503 must not run later.
            "STATEMENT_QUEUED_TIMEOUT_IN_SECONDS": s.snowflake_statement_timeout,
            "LOCK_TIMEOUT": s.snowflake_lock_timeout,
            "TIMEZONE": "UTC",
            "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
        },
    }
    return {key: value for key, value in options.items() if value is not None}


def steady_backoff() -> Iterator[int]:
    """Yield the connector's sleep between retries: 1 s, always.

    The connector checks network_timeout only between attempts and sleeps its backoff in full
    (by default up to 16 s), so its worst case is network_timeout + one sleep + socket_timeout;
    a steady 1 s keeps that inside the time budget. It truncates sleeps to whole seconds.
    """
    while True:
        yield 1


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


def is_busy(exc: BaseException) -> bool:
    """Tell whether Snowflake turned a statement away for contention or time, session intact."""
    from snowflake.connector.errors import DatabaseError

    return isinstance(exc, DatabaseError) and exc.errno in BUSY


def is_duplicate_key(exc: BaseException) -> bool:
    """Tell whether a hybrid table refused a second holder of a unique key."""
    errno, message = getattr(exc, "errno", None), str(getattr(exc, "raw_msg", ""))
    return errno == DUPLICATE_KEY or message.startswith(DUPLICATE_KEY_MESSAGE)


def describe(exc: BaseException) -> str:
    """Name an error by its type and Snowflake codes only; its message may quote a host or SQL."""
    errno, sqlstate = getattr(exc, "errno", None), getattr(exc, "sqlstate", None)
    codes = [f"{errno:06d}" if isinstance(errno, int) and errno > 0 else ""]
    codes.append(f"({sqlstate})" if sqlstate and sqlstate != "n/a" else "")
    return " ".join([type(exc).__name__, *filter(None, codes)])


def close_connection(conn: Any) -> None:
    """Close a connection and every socket it holds, even when its logout fails."""
    try:
        conn.close()
    finally:
        # The connector's close() leaves its HTTP sessions (and their sockets) open when the
        # logout fails: a database that does not answer, or the emulator, which issues no
        # master token. A SnapStart snapshot would keep such a socket. `_rest` is the
        # connector's own attribute, set to None by a complete close; tests/test_connector_close.py
        # fails when the connector stops needing this.
        rest = getattr(conn, "_rest", None)
        if rest is not None:
            rest.close()


def _snowflake_connect() -> Callable[..., Any]:
    # Imported here: the connector takes 300-480 ms to import, which a Lambda cold
    # start or a health check should not pay before it needs a connection.
    import snowflake.connector

    return snowflake.connector.connect
