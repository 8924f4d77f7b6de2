"""Lend connections from a thread-safe pool, modelled on psycopg_pool.

Requesting threads only ever wait on the pool's queue; every call that may block on the
database (connect, check, close) runs on a background thread. So a checkout never takes longer
than its timeout, whatever the database does.

Waiters are served in arrival order once they have waited `fair_after` (1 ms): a connection
that comes back (or is opened) is then handed straight to the oldest waiter, which owns it
before it even wakes, so a thread that arrives meanwhile cannot take it past the line and no
waiter is starved into a timeout while others are served (gevent runs a woken waiter only a
hub turn later; under gevent the returning greenlet yields at once, so that turn comes before
its own response is written, not after). Before that, the oldest waiters are only woken to
try, and a caller already running may take the connection first: between threads that is
much cheaper than a hand-off, which costs a thread switch each (Go's sync.Mutex has the same
two modes, for the same reason).

Longer than the house's 200 lines, on purpose: every counter here is read and written under
one lock, and the rules that keep them consistent (slots, waiters, connects in flight) read
best side by side (psycopg_pool's own pool module runs to some 900 lines).
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["ConnectionPool", "PoolClosed", "PoolTimeout"]

log = logging.getLogger(__name__)

# Backoff between failed connects: quick to recover from a blip, yet not hammering a
# database that is down, and short enough that recovery follows the database within seconds.
_RETRY_FIRST = 0.1
_RETRY_MAX = 2.0


class _Closeable(Protocol):
    def close(self) -> object: ...


ConnT = TypeVar("ConnT", bound=_Closeable)


class PoolTimeout(Exception):
    """Signal that no connection could be had within the timeout."""


class PoolClosed(Exception):
    """Signal that the pool was closed."""


@dataclass(slots=True, eq=False)
class _Entry(Generic[ConnT]):
    conn: ConnT
    expires: float
    last_used: float


@dataclass(slots=True, eq=False)
class _Waiter(Generic[ConnT]):
    """One thread waiting to check out: the entry it was handed, and the lock that wakes it."""

    # Held by the waiter while it waits; released to wake it (a hand-over, a try, a close).
    # Made per wait with threading.Lock looked up then, so gevent's patched lock is the one.
    wake: Any
    since: float
    entry: _Entry[ConnT] | None = None
    woken: bool = False  # released and not yet taken back: release it no second time


def _event() -> threading.Event:
    """Return a new Event, threading.Event looked up now rather than at import.

    gunicorn.conf.py imports this module in gunicorn's master, before the gevent worker
    patches threading: `default_factory=threading.Event` would keep the unpatched class.
    """
    return threading.Event()


@dataclass(slots=True, eq=False)
class _Attempt:
    """One background connect; abandoned once it overruns connect_timeout."""

    abandoned: bool = False
    done: threading.Event = field(default_factory=_event)
    watchdog: threading.Timer | None = None


@dataclass(slots=True, eq=False)
class _Probe:
    """One background readiness check, shared by every caller that arrives while it runs."""

    done: threading.Event = field(default_factory=_event)
    error: BaseException | None = None


class ConnectionPool(Generic[ConnT]):
    """Keep between min_size and max_size connections and lend them to threads."""

    def __init__(
        self,
        connect: Callable[[], ConnT],
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 5.0,
        connect_timeout: float = 30.0,
        max_lifetime: float = 3600.0,
        max_idle: float = 300.0,
        fair_after: float = 0.001,
        check: Callable[[ConnT], None] | None = None,
        is_closed: Callable[[ConnT], bool] | None = None,
        is_broken: Callable[[BaseException], bool] | None = None,
        close: Callable[[ConnT], object] | None = None,
        name: str = "pool",
    ) -> None:
        _validate(
            min_size,
            max_size,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_lifetime=max_lifetime,
            max_idle=max_idle,
        )
        self._connect = connect
        self._min_size, self._max_size = min_size, max_size
        self._timeout, self._connect_timeout = timeout, connect_timeout
        self._max_lifetime, self._max_idle = max_lifetime, max_idle
        if not fair_after >= 0:  # written so that NaN fails too
            raise ValueError(f"fair_after must be at least 0, got {fair_after}")
        self._fair_after = fair_after
        self._cooperative = _threads_are_greenlets()
        self._check = check
        # Asked of every idle connection before it is lent: a local look, no round trip.
        self._is_closed: Callable[[ConnT], bool] = is_closed or (lambda _conn: False)
        # Reusing a broken connection hurts more than opening a new one, so by default
        # any error escaping the block retires the connection.
        self._is_broken: Callable[[BaseException], bool] = is_broken or (lambda _exc: True)
        self._close: Callable[[ConnT], object] = close or (lambda conn: conn.close())
        self._name = name
        self._lock = threading.Lock()
        # wait() waits on this; checkouts wait in _waiters, each woken by its own lock.
        self._filled = threading.Condition(self._lock)
        # Callers in wait(): only they are notified. Under gevent, Condition.notify_all()
        # yields to the hub with the lock held (its ownership check is a failed
        # acquire(False), which gevent answers with a sleep(0)): every checkin would stall
        # every other checkin and checkout for a hub turn.
        self._filling = 0
        self._closed = threading.Event()
        self._idle: list[_Entry[ConnT]] = []
        # Threads waiting to check out, oldest first.
        self._waiters: deque[_Waiter[ConnT]] = deque()
        # _open counts slots: idle, in use, being checked, and the connect in flight.
        self._open = self._in_use = self._connecting = self._checking = 0
        self._delay = 0.0
        self._last_error: Exception | None = None
        self._probe: _Probe | None = None
        self._stats = dict.fromkeys(
            ("created", "discarded", "timeouts", "checkouts", "connect_failures", "abandoned"), 0
        )

    @property
    def closed(self) -> bool:
        """Tell whether close() has been called."""
        return self._closed.is_set()

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[ConnT]:
        """Lend a connection for the length of a with block, waiting up to timeout seconds."""
        entry = self._checkout(self._timeout if timeout is None else timeout)
        broken = True  # stays so if is_broken itself fails
        try:
            yield entry.conn
            broken = False
        except BaseException as exc:
            broken = self._is_broken(exc)
            raise
        finally:
            self._checkin(entry, broken)

    def get_stats(self) -> dict[str, int]:
        """Return a consistent snapshot of the pool's sizes and counters."""
        with self._lock:
            return {
                "min_size": self._min_size,
                "max_size": self._max_size,
                "open": self._open,
                "idle": len(self._idle),
                "in_use": self._in_use,
                "waiting": len(self._waiters),
                "connecting": self._connecting,
                "checking": self._checking,
                **self._stats,
            }

    def wait(self, timeout: float = 30.0) -> None:
        """Block until min_size connections are open, or raise PoolTimeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._grow()
            self._filling += 1
            try:
                while len(self._idle) + self._in_use < self._min_size:
                    self._raise_if_closed()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolTimeout(
                            f"only {len(self._idle) + self._in_use} of {self._min_size}"
                            f" connections open after {timeout} s (check that the database is"
                            " reachable)"
                        ) from None
                    self._filled.wait(remaining)
            finally:
                self._filling -= 1

    def probe(self, timeout: float) -> None:
        """Check out a connection and check it, raising within timeout whatever the database does.

        The check runs in the background; callers that arrive while one runs share it, so a
        stalled database holds one thread and one connection, however often it is probed.
        """
        with self._lock:
            self._raise_if_closed()
            probe = self._probe
            if probe is None or probe.done.is_set():
                probe = self._probe = _Probe()
                _spawn(self._run_probe, probe, timeout, name=f"{self._name}-probe")
        if not probe.done.wait(timeout):
            raise PoolTimeout(f"the check of a connection took longer than {timeout} s") from None
        if probe.error is not None:
            raise probe.error

    def close(self, timeout: float = 5.0) -> None:
        """Close idle connections (waiting up to timeout) and the rest as they come back."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            waiters, self._waiters = self._waiters, deque()
            for waiter in waiters:
                _wake(waiter)
            self._notify_filled()
        closers = [self._close_in_background(entry.conn) for entry in idle]
        deadline = time.monotonic() + timeout
        for closer in closers:
            closer.join(max(0.0, deadline - time.monotonic()))

    def _checkout(self, timeout: float) -> _Entry[ConnT]:
        """Return a sound entry: an idle one, or one handed over while waiting in line."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._raise_if_closed()
            entry = self._pop_usable()
            if entry is not None:
                return self._lend(entry)
            waiter: _Waiter[ConnT] = _Waiter(threading.Lock(), since=time.monotonic())
            waiter.wake.acquire()
            self._waiters.append(waiter)
            self._grow()
        while True:
            woken = waiter.wake.acquire(timeout=max(0.0, deadline - time.monotonic()))
            with self._lock:
                waiter.woken = False
                entry = self._take(waiter)
                if entry is not None:
                    return entry
                # Woken to try, but a running caller took it first: wait on, keeping its place.
                if woken and time.monotonic() < deadline:
                    continue
                self._waiters.remove(waiter)
                self._stats["timeouts"] += 1
                # Chained to the last failed connect, so the caller can say why.
                raise PoolTimeout(
                    f"no connection available after {timeout} s: {self._in_use} of"
                    f" {self._max_size} in use, {self._connecting} connecting"
                    " (check the database, or raise max_size or timeout)"
                ) from self._last_error

    def _take(self, waiter: _Waiter[ConnT]) -> _Entry[ConnT] | None:
        """Return the entry a woken waiter gets, if any; raise PoolClosed (lock held)."""
        entry = waiter.entry
        if self._closed.is_set():  # close() emptied the line
            if entry is not None:  # handed over, then the pool closed before this woke
                self._in_use -= 1
                self._retire(entry)
            self._raise_if_closed()
        if entry is None and (entry := self._pop_usable()) is not None:
            self._waiters.remove(waiter)
            self._lend(entry)
        # A handed-over entry is this thread's even if the timeout ran out as it was handed.
        return entry

    def _lend(self, entry: _Entry[ConnT]) -> _Entry[ConnT]:
        """Count an entry as lent (lock held)."""
        self._in_use += 1
        self._stats["checkouts"] += 1
        return entry

    def _pop_usable(self) -> _Entry[ConnT] | None:
        """Pop the most recent idle entry fit to lend; retire or check the rest (lock held)."""
        while self._idle:
            # LIFO, so a small working set stays warm and the rest can expire.
            entry = self._idle.pop()
            now = time.monotonic()
            if now >= entry.expires or self._is_closed(entry.conn):
                self._retire(entry)
            elif self._check is not None and now - entry.last_used > self._max_idle:
                # It may have died while idle (a frozen Lambda sends no heartbeats): check it
                # in the background and keep waiting, so a stalled check costs no deadline.
                self._checking += 1
                _spawn(self._run_check, entry, name=f"{self._name}-check")
            else:
                return entry
        return None

    def _run_check(self, entry: _Entry[ConnT]) -> None:
        """Check a long-idle connection; put it back if sound, else retire it."""
        assert self._check is not None
        try:
            self._check(entry.conn)
            sound = True
        except Exception as exc:
            log.info("%s: idle connection failed its check (%s)", self._name, type(exc).__name__)
            sound = False
        with self._lock:
            self._checking -= 1
            if sound and not self._closed.is_set():
                entry.last_used = time.monotonic()
                self._add_idle(entry)
            else:
                self._retire(entry)

    def _run_probe(self, probe: _Probe, timeout: float) -> None:
        try:
            with self.connection(timeout) as conn:
                if self._check is not None:
                    self._check(conn)
        except BaseException as exc:  # handed to the waiting callers, who raise it
            probe.error = exc
        finally:
            probe.done.set()

    def _checkin(self, entry: _Entry[ConnT], broken: bool) -> None:
        """Put a returned entry back on the idle stack, or retire it."""
        now = time.monotonic()
        with self._lock:
            self._in_use -= 1
            if broken or now >= entry.expires or self._closed.is_set():
                self._retire(entry)
                return
            entry.last_used = now
            handed = self._add_idle(entry)
        if handed and self._cooperative:
            # The waiter owns the connection now, but a greenlet runs only when the running
            # one blocks: once this one had written its whole response, the connection idle
            # meanwhile. Yielding lets the waiter start its statement first. Between OS
            # threads the waiter runs as soon as this thread lets go of the GIL, and a yield
            # would only add a thread switch per return (half figure c's rate).
            time.sleep(0)

    def _add_idle(self, entry: _Entry[ConnT]) -> bool:
        """Make an entry available, to the oldest waiter first; tell if one was handed over.

        Lock held.
        """
        self._idle.append(entry)
        now = time.monotonic()
        trying = 0
        handed = False
        # Oldest first; each of them can take at most one of the idle entries.
        for waiter in list(islice(self._waiters, len(self._idle))):
            if trying >= len(self._idle):
                break
            if now - waiter.since < self._fair_after:
                trying += 1  # woken to try for one of the idle entries
            # Through _pop_usable, so a handed-over entry passes the same checks as a taken one.
            elif (usable := self._pop_usable()) is not None:
                self._waiters.remove(waiter)
                waiter.entry = self._lend(usable)
                handed = True
            _wake(waiter)
        self._notify_filled()
        return handed

    def _notify_filled(self) -> None:
        """Wake the callers of wait(), if there are any (lock held)."""
        if self._filling:
            self._filled.notify_all()

    def _retire(self, entry: _Entry[ConnT]) -> None:
        """Free an entry's slot, close it in the background and top the pool up (lock held)."""
        self._open -= 1
        self._stats["discarded"] += not self._closed.is_set()
        self._close_in_background(entry.conn)
        self._grow()

    def _grow(self) -> None:
        """Start a background connect if threads wait or min_size is not met (lock held)."""
        if self._closed.is_set() or self._connecting or self._open >= self._max_size:
            return
        # Idle connections not yet taken by the waiters they woke, and connections being
        # checked (they may come back), each stand for one waiter.
        unserved = len(self._waiters) - len(self._idle) - self._checking
        if unserved <= 0 and self._open >= self._min_size:
            return
        self._open += 1
        self._connecting += 1
        attempt = _Attempt()
        attempt.watchdog = threading.Timer(self._connect_timeout, self._abandon, (attempt,))
        attempt.watchdog.daemon = True
        attempt.watchdog.start()
        _spawn(self._run_connect, attempt, self._delay, name=f"{self._name}-connect")

    def _run_connect(self, attempt: _Attempt, delay: float) -> None:
        """Open one connection after delay, and hand it to the pool."""
        conn: ConnT | None = None
        error: Exception | None = None
        if not self._closed.wait(delay):
            try:
                conn = self._connect()
            except Exception as exc:
                error = exc
                # The type only: connect errors can quote the connection string.
                log.warning("%s: could not open a connection (%s)", self._name, type(exc).__name__)
        attempt.done.set()
        if attempt.watchdog is not None:
            attempt.watchdog.cancel()
        with self._lock:
            if not attempt.abandoned:
                self._connecting -= 1
                self._open -= 1
            self._last_error = error
            if conn is None:
                self._stats["connect_failures"] += not self._closed.is_set()
                self._delay = min(max(delay * 2, _RETRY_FIRST), _RETRY_MAX)
            elif self._closed.is_set() or self._open >= self._max_size:
                self._close_in_background(conn)  # abandoned, and replaced meanwhile
            else:
                self._delay = 0.0
                self._open += 1
                self._stats["created"] += 1
                now = time.monotonic()
                # Jittered, so connections opened together do not all expire together.
                lifetime = self._max_lifetime * random.uniform(0.9, 1.0)  # noqa: S311 - not crypto
                self._add_idle(_Entry(conn, expires=now + lifetime, last_used=now))
            self._grow()

    def _abandon(self, attempt: _Attempt) -> None:
        """Stop counting a connect that overran connect_timeout, so another can start."""
        with self._lock:
            if attempt.done.is_set() or self._closed.is_set():
                return
            attempt.abandoned = True
            self._connecting -= 1
            self._open -= 1
            self._stats["abandoned"] += 1
            log.warning(
                "%s: a connect overran %s s; opening another", self._name, self._connect_timeout
            )
            self._grow()

    def _raise_if_closed(self) -> None:
        """Raise PoolClosed if close() has been called."""
        if self._closed.is_set():
            raise PoolClosed(f"{self._name} is closed (create a new pool to get connections)")

    def _close_in_background(self, conn: ConnT) -> threading.Thread:
        """Close a connection on a thread of its own: closing can block on a stalled database."""
        return _spawn(self._close_conn, conn, name=f"{self._name}-close")

    def _close_conn(self, conn: ConnT) -> None:
        try:
            self._close(conn)
        except Exception as exc:
            # It is being thrown away either way; a failed close changes nothing for callers.
            log.debug("%s: closing a connection failed (%s)", self._name, type(exc).__name__)


def _wake(waiter: _Waiter[Any]) -> None:
    """Wake a waiter, unless it is woken already (lock held)."""
    if not waiter.woken:
        waiter.woken = True
        waiter.wake.release()


def _threads_are_greenlets() -> bool:
    """Tell whether gevent has patched threading in this process (as its gunicorn worker does)."""
    monkey = sys.modules.get("gevent.monkey")  # never imported here: loaded if it patched
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def _spawn(target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def _validate(min_size: int, max_size: int, **timeouts: float) -> None:
    """Raise ValueError naming the first pool argument that is out of range."""
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    if not 0 <= min_size <= max_size:
        raise ValueError(f"min_size must be between 0 and max_size ({max_size}), got {min_size}")
    for name, value in timeouts.items():
        if not value > 0:  # written so that NaN fails too
            raise ValueError(f"{name} must be greater than 0, got {value}")
