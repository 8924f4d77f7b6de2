"""Build the function that opens a Snowflake connection: endpoint, login and session settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .credentials import Credentials, is_login_refused
from .settings import Settings

log = logging.getLogger(__name__)


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
        "application": "userservice",
        "session_parameters": {
            "QUERY_TAG": json.dumps(tag, separators=(",", ":")),
            "STATEMENT_TIMEOUT_IN_SECONDS": s.snowflake_statement_timeout,
            "TIMEZONE": "UTC",
            "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
        },
    }
    return {key: value for key, value in options.items() if value is not None}


def _snowflake_connect() -> Callable[..., Any]:
    # Imported here: the connector takes 300-480 ms to import, which a Lambda cold
    # start or a health check should not pay before it needs a connection.
    import snowflake.connector

    return snowflake.connector.connect
