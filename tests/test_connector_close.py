"""Closing a Snowflake connection leaves no socket open, even when the connector's close does."""

from __future__ import annotations

import os

import pytest
from runtime_api import connections_to

from bench.servers import server_settings
from userservice.db.connector import close_connection, snowflake_connector

pytestmark = pytest.mark.slow


def test_close_connection_leaves_no_socket_to_the_database(emulator_server):
    conn = snowflake_connector(server_settings(emulator_server.port))()
    conn.cursor().execute("SELECT 1").fetchall()
    opened = connections_to(os.getpid(), emulator_server.port)

    close_connection(conn)

    assert (opened, connections_to(os.getpid(), emulator_server.port)) == (1, 0)


def test_the_connectors_own_close_still_leaves_the_socket_open_when_logout_fails(emulator_server):
    # What close_connection works around: when this fails, the connector closes its HTTP
    # sessions itself and the workaround in userservice/db/connector.py can go.
    conn = snowflake_connector(server_settings(emulator_server.port))()
    conn.cursor().execute("SELECT 1").fetchall()

    conn.close()

    assert connections_to(os.getpid(), emulator_server.port) == 1
    close_connection(conn)
    assert connections_to(os.getpid(), emulator_server.port) == 0
