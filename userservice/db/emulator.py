"""Run the embedded Snowflake emulator (fakesnow on DuckDB) for development and tests.

fakesnow's `FakeSnow` class is internal API, so its version is pinned exactly and every use
of it lives here.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

RESULTS_CACHE_SIZE = 64
# fakesnow cannot run these Snowflake statements; they change nothing the emulator needs.
NOP_STATEMENTS = [r"(?i)^\s*alter\s+session\s+set\s+query_tag\b"]
# fakesnow cannot parse CREATE HYBRID TABLE. DuckDB's plain table enforces PRIMARY KEY and
# UNIQUE as a hybrid table does, which is all the service relies on.
HYBRID_TABLE = re.compile(r"\bCREATE\s+HYBRID\s+TABLE\b", re.IGNORECASE)


class _BoundedCache(OrderedDict[str, tuple[Any, ...]]):
    """Keep only the newest results: fakesnow caches every result and never evicts."""

    def __setitem__(self, key: str, value: tuple[Any, ...]) -> None:
        super().__setitem__(key, value)
        if len(self) > RESULTS_CACHE_SIZE:
            self.popitem(last=False)


class _SerialCursor:
    """Run one statement at a time across the emulator.

    DuckDB raises a raw TransactionException on concurrent UPDATE/DELETE of one table;
    Snowflake serializes them itself, so the emulator does too.
    """

    def __init__(self, cursor: Any, lock: threading.Lock) -> None:
        self._cursor = cursor
        self._lock = lock

    def execute(self, command: str, params: Any = None) -> _SerialCursor:
        """Run a statement under the emulator's lock, failing as Snowflake would."""
        with self._lock:
            try:
                self._cursor.execute(HYBRID_TABLE.sub("CREATE TABLE", command), params)
            except Exception as exc:
                refused = _as_unique_violation(exc)
                if refused is None:
                    raise
                raise refused from exc
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _as_unique_violation(exc: Exception) -> Exception | None:
    """Turn DuckDB's raw duplicate-key error into the connector's error Snowflake raises."""
    import duckdb
    from snowflake.connector.errors import IntegrityError

    from .connector import DUPLICATE_KEY, DUPLICATE_KEY_MESSAGE

    if not (isinstance(exc, duckdb.ConstraintException) and "Duplicate key" in str(exc)):
        return None
    return IntegrityError(msg=DUPLICATE_KEY_MESSAGE, errno=DUPLICATE_KEY, sqlstate="22000")


class _SerialConnection:
    """Hand out cursors that share the emulator's statement lock."""

    def __init__(self, conn: Any, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def cursor(self) -> _SerialCursor:
        """Open a cursor whose statements run one at a time."""
        return _SerialCursor(self._conn.cursor(), self._lock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class Emulator:
    """One emulator instance on a data directory; only one process may open it at a time."""

    def __init__(self, data_dir: str | Path, *, database: str, schema: str) -> None:
        from fakesnow.instance import FakeSnow

        # fakesnow reads every result through DuckDB's Arrow path, which warns each time.
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self._instance = FakeSnow(db_path=path, nop_regexes=NOP_STATEMENTS)
        self._instance.results_cache = _BoundedCache()
        self._database = database
        self._schema = schema
        self._lock = threading.Lock()

    def connect(self) -> _SerialConnection:
        """Open a connection whose statements run one at a time across the emulator."""
        with self._lock:
            conn = self._instance.connect(
                database=self._database, schema=self._schema, paramstyle="qmark"
            )
        return _SerialConnection(conn, self._lock)

    def close(self) -> None:
        """Release the data files, so another instance may open them."""
        with self._lock:
            self._instance.duck_conn.close()
