"""Lend connections from a thread-safe pool, modelled on psycopg_pool."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["ConnectionPool", "PoolClosed", "PoolTimeout"]

log = logging.getLogger(__name__)

# Backoff between failed background connects: quick to recover from a blip, yet not
# hammering a database that is down.
_RETRY_FIRST = 0.1
_RETRY_MAX = 5.0


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


class ConnectionPool(Generic[ConnT]):
    """Keep between min_size and max_size connections and lend them to threads."""

    def __init__(
        self,
        connect: Callable[[], ConnT],
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 5.0,
        max_lifetime: float = 3600.0,
        max_idle: float = 300.0,
        check: Callable[[ConnT], None] | None = None,
        is_broken: Callable[[BaseException], bool] | None = None,
        name: str = "pool",
    ) -> None:
        _validate(min_size, max_size, timeout=timeout, max_lifetime=max_lifetime, max_idle=max_idle)
        self._connect = connect
        self._min_size, self._max_size = min_size, max_size
        self._timeout, self._max_lifetime, self._max_idle = timeout, max_lifetime, max_idle
        self._check = check
        # Reusing a broken connection hurts more than opening a new one, so by default
        # any error escaping the block retires the connection.
        self._is_broken: Callable[[BaseException], bool] = is_broken or (lambda _exc: True)
        self._name = name
        self._lock = threading.Lock()
        # Two conditions on one lock, so that wait() never swallows a notify() that was
        # meant for a thread waiting to check out.
        self._slot_free = threading.Condition(self._lock)
        self._filled = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._filling = False
        self._idle: list[_Entry[ConnT]] = []
        # _open counts slots: idle, in use, and being opened or checked (open - idle - in_use).
        self._open = self._in_use = self._waiting = 0
        self._created = self._discarded = self._timeouts = self._checkouts = 0

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
                "waiting": self._waiting,
                "created": self._created,
                "discarded": self._discarded,
                "timeouts": self._timeouts,
                "checkouts": self._checkouts,
            }

    def wait(self, timeout: float = 30.0) -> None:
        """Block until min_size connections are open, or raise PoolTimeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._fill_if_needed()
            while len(self._idle) + self._in_use < self._min_size:
                self._raise_if_closed()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeout(
                        f"only {len(self._idle) + self._in_use} of {self._min_size} connections"
                        f" open after {timeout} s (check that the database is reachable)"
                    ) from None
                self._filled.wait(remaining)

    def close(self) -> None:
        """Close idle connections now and the rest as they come back; wake all waiters."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._slot_free.notify_all()
            self._filled.notify_all()
        for entry in idle:
            self._close_conn(entry.conn)

    def _checkout(self, timeout: float) -> _Entry[ConnT]:
        """Return a sound idle entry, or a new connection in the slot just reserved."""
        entry = self._reserve(timeout)
        if entry is not None and not self._usable(entry):
            self._close_conn(entry.conn)
            with self._lock:
                self._discarded += 1
            entry = None
        fresh = entry is None
        if entry is None:
            entry = self._open_reserved()
        with self._lock:
            self._in_use += 1
            self._checkouts += 1
            if fresh:
                self._created += 1
                self._filled.notify_all()
        return entry

    def _reserve(self, timeout: float) -> _Entry[ConnT] | None:
        """Pop the most recently used idle entry, or reserve an empty slot and return None."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                self._raise_if_closed()
                # LIFO, so a small working set stays warm and the rest can expire.
                if self._idle:
                    return self._idle.pop()
                if self._open < self._max_size:
                    self._open += 1
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._timeouts += 1
                    raise PoolTimeout(
                        f"no connection available after {timeout} s: all {self._max_size}"
                        " connections are in use (raise max_size or timeout)"
                    ) from None
                self._waiting += 1
                try:
                    self._slot_free.wait(remaining)
                finally:
                    self._waiting -= 1

    def _usable(self, entry: _Entry[ConnT]) -> bool:
        """Tell whether an idle entry may be lent, checking it if it sat idle too long."""
        now = time.monotonic()
        if now >= entry.expires:
            return False
        if self._check is None or now - entry.last_used <= self._max_idle:
            return True
        try:
            self._check(entry.conn)
        except Exception as exc:
            log.info("%s: idle connection failed its check (%s)", self._name, type(exc).__name__)
            return False
        return True

    def _open_reserved(self) -> _Entry[ConnT]:
        """Open a connection in a reserved slot, giving the slot back if connect fails."""
        try:
            conn = self._connect()
        except BaseException:
            with self._lock:
                self._release_slot()
            raise
        now = time.monotonic()
        # Jittered, so connections opened together do not all expire together.
        lifetime = self._max_lifetime * random.uniform(0.9, 1.0)  # noqa: S311 - not crypto
        return _Entry(conn, expires=now + lifetime, last_used=now)

    def _checkin(self, entry: _Entry[ConnT], broken: bool) -> None:
        """Put a returned entry back on the idle stack, or close it and free its slot."""
        now = time.monotonic()
        retire = broken or now >= entry.expires
        if not retire:
            with self._lock:
                if not self._closed.is_set():
                    self._in_use -= 1
                    entry.last_used = now
                    self._idle.append(entry)
                    self._slot_free.notify()
                    return
        # Closed before the slot is freed, so no more than max_size are ever open at once.
        self._close_conn(entry.conn)
        with self._lock:
            self._in_use -= 1
            self._discarded += retire
            self._release_slot()

    def _release_slot(self) -> None:
        """Give a slot back and top the pool up if it fell below min_size (lock held)."""
        self._open -= 1
        self._slot_free.notify()
        self._fill_if_needed()

    def _fill_if_needed(self) -> None:
        """Start the background filler if fewer than min_size slots are taken (lock held)."""
        if self._filling or self._closed.is_set() or self._open >= self._min_size:
            return
        self._filling = True
        threading.Thread(target=self._fill, name=f"{self._name}-filler", daemon=True).start()

    def _fill(self) -> None:
        """Open connections until min_size slots are taken or the pool is closed."""
        delay = _RETRY_FIRST
        while self._reserve_for_filler():
            try:
                entry = self._open_reserved()
            except Exception as exc:
                # The type only: connect errors can quote the connection string.
                log.warning(
                    "%s: could not open a connection (%s); retrying in %.1f s",
                    self._name,
                    type(exc).__name__,
                    delay,
                )
                self._closed.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            delay = _RETRY_FIRST
            self._add_filled(entry)

    def _reserve_for_filler(self) -> bool:
        """Reserve a slot for the filler, or mark the filler stopped and return False."""
        with self._lock:
            if self._closed.is_set() or self._open >= self._min_size:
                self._filling = False
                return False
            self._open += 1
            return True

    def _add_filled(self, entry: _Entry[ConnT]) -> None:
        """Make a connection the filler opened available, unless the pool closed meanwhile."""
        with self._lock:
            self._created += 1
            if not self._closed.is_set():
                self._idle.append(entry)
                self._slot_free.notify()
                self._filled.notify_all()
                return
        self._close_conn(entry.conn)
        with self._lock:
            self._release_slot()

    def _raise_if_closed(self) -> None:
        """Raise PoolClosed if close() has been called."""
        if self._closed.is_set():
            raise PoolClosed(f"{self._name} is closed (create a new pool to get connections)")

    def _close_conn(self, conn: ConnT) -> None:
        """Close a connection the pool is done with, logging rather than raising on failure."""
        try:
            conn.close()
        except Exception as exc:
            # It is being thrown away either way; a failed close changes nothing for callers.
            log.debug("%s: closing a connection failed (%s)", self._name, type(exc).__name__)


def _validate(min_size: int, max_size: int, **timeouts: float) -> None:
    """Raise ValueError naming the first pool argument that is out of range."""
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    if not 0 <= min_size <= max_size:
        raise ValueError(f"min_size must be between 0 and max_size ({max_size}), got {min_size}")
    for name, value in timeouts.items():
        if not value > 0:  # written so that NaN fails too
            raise ValueError(f"{name} must be greater than 0, got {value}")
