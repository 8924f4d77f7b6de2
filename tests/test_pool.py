"""Test the connection pool with real threads and a fake connection."""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from userservice.db.pool import ConnectionPool, PoolClosed, PoolTimeout


class ConnectionLost(Exception):
    """Stand for a driver error that means the connection is gone."""


class FakeConn:
    """Record whether the pool closed it and whether a thread is using it."""

    def __init__(self, ident: int, server: FakeServer) -> None:
        self.id = ident
        self.closed = False
        self.in_use = False
        self._server = server

    def close(self) -> None:
        """Close once, telling the server one connection fewer is open."""
        if not self.closed:
            self.closed = True
            self._server.closed_one()


class FakeServer:
    """Open FakeConns, counting how many are open now and the most at once."""

    def __init__(self, fail_first: int = 0) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.fail_first = fail_first
        self.calls = 0
        self.open = 0
        self.max_open = 0

    def connect(self) -> FakeConn:
        """Return a new connection, or refuse while the first fail_first calls last."""
        with self._lock:
            self.calls += 1
            if self.calls <= self.fail_first:
                raise ConnectionRefusedError("fake server is down")
            self.open += 1
            self.max_open = max(self.max_open, self.open)
            return FakeConn(next(self._ids), self)

    def closed_one(self) -> None:
        """Count one connection closed."""
        with self._lock:
            self.open -= 1


Pool = ConnectionPool[FakeConn]
MakePool = Callable[..., Pool]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def make_pool(server: FakeServer) -> Iterator[Callable[..., Pool]]:
    """Build pools on the server fixture (unless given a connect), closing them afterwards."""
    pools: list[Pool] = []

    def make(connect: Callable[[], FakeConn] | None = None, **options: Any) -> Pool:
        pool = ConnectionPool(connect or server.connect, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@contextmanager
def held_elsewhere(pool: Pool) -> Iterator[FakeConn]:
    """Keep a connection checked out by another thread until the with block ends."""
    got, release = threading.Event(), threading.Event()
    held: list[FakeConn] = []

    def hold() -> None:
        with pool.connection() as conn:
            held.append(conn)
            got.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    assert got.wait(5)
    try:
        yield held[0]
    finally:
        release.set()
        thread.join()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until condition() holds, failing the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


def stats_subset(pool: Pool, *keys: str) -> dict[str, int]:
    """Return only the named figures from get_stats()."""
    stats = pool.get_stats()
    return {key: stats[key] for key in keys}


def test_the_pool_opens_nothing_until_asked(server: FakeServer, make_pool: MakePool) -> None:
    pool = make_pool(min_size=2)
    assert server.calls == 0
    assert stats_subset(pool, "open", "idle", "created") == {"open": 0, "idle": 0, "created": 0}


def test_threads_never_share_a_connection_or_exceed_max_size(
    server: FakeServer, make_pool: MakePool
) -> None:
    pool = make_pool(max_size=4, timeout=30.0)
    shared: list[int] = []

    def work() -> None:
        for _ in range(500):
            with pool.connection() as conn:
                if conn.in_use:
                    shared.append(conn.id)
                conn.in_use = True
                time.sleep(0)  # give other threads the GIL while this one holds conn
                conn.in_use = False

    threads = [threading.Thread(target=work) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = pool.get_stats()
    assert shared == []
    assert server.max_open <= 4
    assert stats["open"] <= 4
    assert stats["open"] == stats["created"] == server.open
    assert stats_subset(pool, "in_use", "waiting", "checkouts", "timeouts", "discarded") == {
        "in_use": 0,
        "waiting": 0,
        "checkouts": 16000,
        "timeouts": 0,
        "discarded": 0,
    }


def test_a_returned_connection_goes_to_the_oldest_waiter_not_to_a_later_caller(
    make_pool: MakePool,
) -> None:
    # The thread that returns a connection asks for one again at once, before the waiter it
    # served has even woken: it must queue behind that waiter (a pool that only wakes the
    # waiter lets it take the connection back, and the waiter times out while others run).
    # fair_after=0: served in order from the first instant of waiting, not after 1 ms.
    pool = make_pool(max_size=1, timeout=30.0, fair_after=0.0)
    order: list[str] = []
    got, release = threading.Event(), threading.Event()

    def oldest() -> None:
        with pool.connection():
            order.append("oldest waiter")

    def holder() -> None:
        with pool.connection():
            got.set()
            release.wait(30)
        # The waiter owns the connection from the return on: counted as lent, none idle.
        order.append(str(stats_subset(pool, "in_use", "idle", "waiting")))
        with pool.connection():
            order.append("later caller")

    holding = threading.Thread(target=holder)
    holding.start()
    assert got.wait(5)
    waiting = threading.Thread(target=oldest)
    waiting.start()
    wait_until(lambda: pool.get_stats()["waiting"] == 1)
    release.set()
    holding.join()
    waiting.join()
    assert order == [
        "{'in_use': 1, 'idle': 0, 'waiting': 0}",
        "oldest waiter",
        "later caller",
    ]
    assert stats_subset(pool, "checkouts", "timeouts", "in_use") == {
        "checkouts": 3,
        "timeouts": 0,
        "in_use": 0,
    }


def test_checkout_when_all_are_held_waits_the_timeout_then_raises_pool_timeout(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1)
    message = "no connection available after 0.2 s: 1 of 1 in use, 0 connecting"
    with held_elsewhere(pool):
        start = time.monotonic()
        with pytest.raises(PoolTimeout, match=re.escape(message)), pool.connection(timeout=0.2):
            pass
        elapsed = time.monotonic() - start
    assert elapsed >= 0.2
    assert stats_subset(pool, "timeouts", "waiting") == {"timeouts": 1, "waiting": 0}


def test_a_failed_connect_is_retried_in_the_background_while_the_request_waits(
    make_pool: MakePool,
) -> None:
    server = FakeServer(fail_first=1)
    pool = make_pool(server.connect, min_size=0, max_size=1)
    with pool.connection() as conn:
        assert not conn.closed
    assert stats_subset(pool, "open", "in_use", "created", "connect_failures") == {
        "open": 1,
        "in_use": 0,
        "created": 1,
        "connect_failures": 1,
    }


def test_a_connection_broken_in_the_block_is_closed_and_not_lent_again(
    make_pool: MakePool,
) -> None:
    pool = make_pool(is_broken=lambda exc: isinstance(exc, ConnectionLost))
    with pytest.raises(ConnectionLost), pool.connection() as broken:
        raise ConnectionLost
    with pool.connection() as conn:
        assert conn is not broken
    wait_until(lambda: broken.closed)
    assert pool.get_stats()["discarded"] == 1


def test_a_connection_whose_block_raised_a_harmless_error_is_reused(
    make_pool: MakePool,
) -> None:
    pool = make_pool(is_broken=lambda exc: isinstance(exc, ConnectionLost))
    with pytest.raises(ValueError, match="bad input"), pool.connection() as first:
        raise ValueError("bad input")
    with pool.connection() as second:
        assert second is first
    assert not first.closed
    assert pool.get_stats()["discarded"] == 0


def test_every_error_breaks_the_connection_by_default(make_pool: MakePool) -> None:
    pool = make_pool()
    with pytest.raises(ValueError, match="bad input"), pool.connection() as first:
        raise ValueError("bad input")
    wait_until(lambda: first.closed)
    assert pool.get_stats()["discarded"] == 1


def test_a_discarded_connection_is_replaced_up_to_min_size(make_pool: MakePool) -> None:
    pool = make_pool(min_size=2, max_size=2)
    pool.wait(timeout=5)
    with pytest.raises(ConnectionLost), pool.connection():
        raise ConnectionLost
    pool.wait(timeout=5)
    assert stats_subset(pool, "open", "idle", "created", "discarded") == {
        "open": 2,
        "idle": 2,
        "created": 3,
        "discarded": 1,
    }


def test_the_filler_retries_failed_connects_and_logs_only_the_error_type(
    make_pool: MakePool, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer(fail_first=2)
    pool = make_pool(server.connect, min_size=1, name="test")
    with caplog.at_level(logging.WARNING, logger="userservice.db.pool"):
        pool.wait(timeout=5)
    assert [record.getMessage() for record in caplog.records] == [
        "test: could not open a connection (ConnectionRefusedError)",
        "test: could not open a connection (ConnectionRefusedError)",
    ]
    assert stats_subset(pool, "open", "idle", "created", "connect_failures") == {
        "open": 1,
        "idle": 1,
        "created": 1,
        "connect_failures": 2,
    }


def test_wait_raises_pool_timeout_when_min_size_cannot_be_reached(
    make_pool: MakePool,
) -> None:
    server = FakeServer(fail_first=1_000_000)
    pool = make_pool(server.connect, min_size=1)
    with pytest.raises(PoolTimeout, match=re.escape("only 0 of 1 connections open after 0.2 s")):
        pool.wait(timeout=0.2)


def test_an_expired_connection_is_closed_on_return_and_replaced(
    make_pool: MakePool,
) -> None:
    pool = make_pool(min_size=0, max_lifetime=0.5)
    with pool.connection() as first:
        time.sleep(0.6)
    wait_until(lambda: first.closed)
    with pool.connection() as second:
        assert second is not first
    assert stats_subset(pool, "created", "discarded") == {"created": 2, "discarded": 1}


def test_a_connection_that_expired_while_idle_is_closed_not_lent(
    make_pool: MakePool,
) -> None:
    pool = make_pool(min_size=0, max_lifetime=0.5)
    with pool.connection() as first:
        pass
    time.sleep(0.6)
    with pool.connection() as second:
        assert second is not first
    wait_until(lambda: first.closed)
    assert stats_subset(pool, "open", "created", "discarded") == {
        "open": 1,
        "created": 2,
        "discarded": 1,
    }


def test_a_long_idle_connection_that_fails_its_check_is_swapped_for_a_new_one(
    make_pool: MakePool,
) -> None:
    checked: list[FakeConn] = []

    def check(conn: FakeConn) -> None:
        checked.append(conn)
        raise ConnectionLost

    pool = make_pool(min_size=0, max_idle=0.05, check=check)
    with pool.connection() as first:
        pass
    time.sleep(0.1)
    with pool.connection() as second:
        assert not second.closed
    assert second is not first
    wait_until(lambda: first.closed)
    assert checked == [first]
    assert stats_subset(pool, "open", "created", "discarded") == {
        "open": 1,
        "created": 2,
        "discarded": 1,
    }


def test_a_long_idle_connection_that_passes_its_check_is_reused(
    make_pool: MakePool,
) -> None:
    checked: list[FakeConn] = []
    pool = make_pool(min_size=0, max_idle=0.05, check=checked.append)
    with pool.connection() as first:
        pass
    time.sleep(0.1)
    with pool.connection() as second:
        assert second is first
    assert checked == [first]
    assert not first.closed


def test_close_wakes_waiters_and_closes_lent_connections_when_returned(
    make_pool: MakePool,
) -> None:
    pool = make_pool(max_size=1, timeout=30.0)
    outcomes: list[str] = []

    def try_checkout() -> None:
        try:
            with pool.connection():
                outcomes.append("got a connection")
        except PoolClosed:
            outcomes.append("PoolClosed")

    with held_elsewhere(pool) as held:
        waiter = threading.Thread(target=try_checkout)
        waiter.start()
        wait_until(lambda: pool.get_stats()["waiting"] == 1)
        pool.close()
        waiter.join()
        assert outcomes == ["PoolClosed"]
        closed_while_lent = held.closed
    assert not closed_while_lent
    wait_until(lambda: held.closed)
    assert stats_subset(pool, "open", "in_use", "waiting") == {"open": 0, "in_use": 0, "waiting": 0}


def test_close_closes_idle_connections_and_later_checkouts_raise_pool_closed(
    make_pool: MakePool,
) -> None:
    pool = make_pool()
    with pool.connection() as idle:
        pass
    pool.close()
    pool.close()
    assert idle.closed
    assert pool.closed
    with pytest.raises(PoolClosed, match="is closed"), pool.connection():
        pass


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"max_size": 0}, "max_size"),
        ({"min_size": -1}, "min_size"),
        ({"min_size": 5, "max_size": 4}, "min_size"),
        ({"timeout": 0}, "timeout"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"max_lifetime": -1.0}, "max_lifetime"),
        ({"max_idle": float("nan")}, "max_idle"),
        ({"fair_after": -0.001}, "fair_after"),
    ],
)
def test_an_invalid_argument_raises_value_error_naming_it(
    server: FakeServer, options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{argument} must"):
        ConnectionPool(server.connect, **options)


class Hanging:
    """A connect function that blocks, as against a black-holed database, until released."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.release = threading.Event()
        self.calls = 0

    def connect(self) -> FakeConn:
        """Block on the first call until released; connect at once afterwards."""
        self.calls += 1
        if self.calls == 1:
            self.release.wait(30)
        return self.server.connect()


def test_a_checkout_never_waits_past_its_timeout_while_connecting_hangs(
    make_pool: MakePool, server: FakeServer
) -> None:
    hanging = Hanging(server)
    pool = make_pool(hanging.connect, min_size=0, max_size=2, connect_timeout=30)
    start = time.monotonic()
    with pytest.raises(PoolTimeout, match="0 of 2 in use, 1 connecting"), pool.connection(0.3):
        pass
    assert time.monotonic() - start < 2.0
    assert stats_subset(pool, "connecting", "open", "timeouts") == {
        "connecting": 1,
        "open": 1,
        "timeouts": 1,
    }
    hanging.release.set()
    with pool.connection(5):
        pass


def test_a_hung_connect_is_abandoned_after_connect_timeout_and_another_opened(
    make_pool: MakePool, server: FakeServer
) -> None:
    hanging = Hanging(server)
    pool = make_pool(hanging.connect, min_size=0, max_size=1, connect_timeout=0.2)
    with pool.connection(5) as conn:
        assert stats_subset(pool, "abandoned", "connecting", "open") == {
            "abandoned": 1,
            "connecting": 0,
            "open": 1,
        }
        hanging.release.set()  # the hung connect succeeds now, with no slot left for it
        wait_until(lambda: server.open == 1 and server.max_open == 2)
    assert conn.id == 1
    assert stats_subset(pool, "open", "created") == {"open": 1, "created": 1}


def test_a_long_idle_connection_whose_check_hangs_costs_the_request_no_more_than_its_timeout(
    make_pool: MakePool,
) -> None:
    release = threading.Event()
    pool = make_pool(min_size=0, max_size=1, max_idle=0.05, check=lambda _conn: release.wait(30))
    with pool.connection():
        pass
    time.sleep(0.1)
    start = time.monotonic()
    with pytest.raises(PoolTimeout), pool.connection(0.3):
        pass
    assert time.monotonic() - start < 2.0
    assert stats_subset(pool, "checking", "open") == {"checking": 1, "open": 1}
    release.set()
    with pool.connection(5):
        pass


def test_probe_raises_pool_timeout_within_its_timeout_and_callers_share_one_check(
    make_pool: MakePool,
) -> None:
    release = threading.Event()
    checks: list[FakeConn] = []

    def check(conn: FakeConn) -> None:
        checks.append(conn)
        release.wait(30)

    pool = make_pool(check=check)
    for _ in range(3):
        start = time.monotonic()
        with pytest.raises(PoolTimeout, match=re.escape("took longer than 0.2 s")):
            pool.probe(0.2)
        assert time.monotonic() - start < 2.0
    assert len(checks) == 1
    release.set()
    wait_until(lambda: pool.get_stats()["in_use"] == 0)
    pool.probe(5)
    assert len(checks) == 2


def test_probe_raises_the_checks_error(make_pool: MakePool) -> None:
    def check(_conn: FakeConn) -> None:
        raise ConnectionLost("gone")

    pool = make_pool(check=check)
    with pytest.raises(ConnectionLost, match="gone"):
        pool.probe(5)
