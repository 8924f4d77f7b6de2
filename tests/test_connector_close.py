"""Closing a Snowflake connection leaves no socket open, even when the connector's close does."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from runtime_api import connections_to

from bench.servers import EmulatorServer, server_settings
from userservice.db.connector import close_connection, snowflake_connector

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    running = EmulatorServer()
    running.start()
    yield running
    running.kill()


def test_close_connection_leaves_no_socket_to_the_database(server):
    conn = snowflake_connector(server_settings(server.port))()
    conn.cursor().execute("SELECT 1").fetchall()
    opened = connections_to(os.getpid(), server.port)

    close_connection(conn)

    assert (opened, connections_to(os.getpid(), server.port)) == (1, 0)


def test_the_connectors_own_close_still_leaves_the_socket_open_when_logout_fails(server):
    # What close_connection works around: when this fails, the connector closes its HTTP
    # sessions itself and the workaround in userservice/db/connector.py can go.
    conn = snowflake_connector(server_settings(server.port))()
    conn.cursor().execute("SELECT 1").fetchall()

    conn.close()

    assert connections_to(os.getpid(), server.port) == 1
    close_connection(conn)
    assert connections_to(os.getpid(), server.port) == 0
