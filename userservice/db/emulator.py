"""Run the embedded Snowflake emulator (fakesnow on DuckDB) for development and tests.

fakesnow's `FakeSnow` class is internal API, so its version is pinned exactly and every use
of it lives here.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..settings import StartupError

RESULTS_CACHE_SIZE = 64
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

    def execute(self, command: str, params: Any = None, **options: Any) -> _SerialCursor:
        """Run a statement under the emulator's lock, failing as Snowflake would.

        fakesnow takes the connector's options (a statement's QUERY_TAG) and ignores them.
        """
        with self._lock:
            try:
                off_hub(
                    self._cursor.execute,
                    HYBRID_TABLE.sub("CREATE TABLE", command),
                    params,
                    **options,
                )
            except Exception as exc:
                refused = _as_unique_violation(exc)
                if refused is None:
                    raise
                raise refused from exc
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def off_hub(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `function`, on a real thread of gevent's threadpool when gevent has patched threads.

    DuckDB (and fakesnow's translation before it) never yields to gevent's hub, so one long
    statement would stall every connection of the worker. The emulator's lock, a gevent lock
    there, still lets one statement run at a time. Without gevent (tests, the flask CLI) the
    call runs here.
    """
    monkey = sys.modules.get("gevent.monkey")  # imported only when gevent is in use
    if monkey is None or not monkey.is_module_patched("threading"):
        return function(*args, **kwargs)
    import gevent

    return gevent.get_hub().threadpool.apply(function, args, kwargs)


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


class EmulatorLocked(StartupError):
    """Another process holds the emulator's data files; the message names it."""

    def __init__(self, db_file: Path, pid: int | None) -> None:
        self.pid = _owner(pid) if pid else None
        holder, stop = "another process", "stop it"
        if pid and self.pid:
            worker = f", a worker of {self.pid}" if self.pid != pid else ""
            holder = f"process {pid} ({_proc(pid, 'comm')}){worker}"
            stop = f"stop it (kill {self.pid})"
        super().__init__(
            f"the emulator's data in {db_file.parent} is in use by {holder}: {stop}, "
            "or point EMULATOR_DATA_DIR at another folder"
        )


# DuckDB names the holder in its error: `Conflicting lock is held in /usr/bin/python (PID 42)`.
DUCKDB_HOLDER = re.compile(r"Conflicting lock is held in .*\(PID (\d+)\)")


def lock_holder(db_file: Path) -> int | None:
    """Return the PID of another process holding a POSIX lock on db_file (Linux's /proc/locks)."""
    try:
        st = db_file.stat()
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in locks.splitlines():
        fields = line.split()
        # `1: POSIX  ADVISORY  WRITE 17785 fe:00:2220509 0 EOF`
        if len(fields) > 5 and fields[5] == device and int(fields[4]) != os.getpid():
            return int(fields[4])
    return None


def writable_folder(data_dir: str | Path) -> Path:
    """Make the emulator's folder if need be; raise StartupError unless files can be made in it.

    A file where the folder should be, or a folder the process may not write, otherwise fails
    the first statement (a 503 for every request) or init-db with a traceback.
    """
    path = Path(data_dir)
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(0, "a file, not a folder")
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise StartupError(
            f"EMULATOR_DATA_DIR={path} is not a folder the service can write ({why})"
        ) from None
    return path


def check_free(data_dir: str | Path, database: str) -> None:
    """Raise StartupError for an unusable data_dir, EmulatorLocked when another process holds it."""
    db_file = _db_file(writable_folder(data_dir), database)
    pid = lock_holder(db_file)
    if pid is not None:
        raise EmulatorLocked(db_file, pid)


def _db_file(data_dir: Path, database: str) -> Path:
    """Return the file fakesnow keeps a database in."""
    return data_dir.resolve() / f"{database.upper()}.db"


def _proc(pid: int, name: str) -> str:
    """Return one of Linux's /proc/PID files (comm: the process's name); empty if unreadable."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace").strip()
    except OSError:
        return ""


def _owner(pid: int) -> int:
    """Return the process to stop: a gunicorn worker's master runs the same command line."""
    try:
        parent = int(_proc(pid, "stat").rpartition(")")[2].split()[1])
    except (IndexError, ValueError):
        return pid
    same = parent > 1 and _proc(parent, "cmdline") == _proc(pid, "cmdline") != ""
    return parent if same else pid


class Emulator:
    """One emulator instance on a data directory; only one process may open it at a time."""

    def __init__(self, data_dir: str | Path, *, database: str, schema: str) -> None:
        import duckdb
        from fakesnow.instance import FakeSnow

        # fakesnow reads every result through DuckDB's Arrow path, which warns each time.
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        path = writable_folder(data_dir)
        self._instance = FakeSnow(db_path=path)
        self._instance.results_cache = _BoundedCache()
        self._database = database
        self._schema = schema
        self._lock = threading.Lock()
        # Open the files now, in the caller's thread: a lock another process holds fails here
        # in one line, not as the pool's connect retries and a 503 three seconds later.
        try:
            self.connect().close()
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            self._instance.duck_conn.close()
            held = DUCKDB_HOLDER.search(str(exc))
            db_file = _db_file(path, database)
            raise EmulatorLocked(
                db_file, int(held.group(1)) if held else lock_holder(db_file)
            ) from None

    def connect(self) -> _SerialConnection:
        """Open a connection whose statements run one at a time across the emulator."""
        with self._lock:
            conn = off_hub(self._connect)
        return _SerialConnection(conn, self._lock)

    def _connect(self) -> Any:
        return self._instance.connect(
            database=self._database, schema=self._schema, paramstyle="qmark"
        )

    def close(self) -> None:
        """Release the data files, so another instance may open them."""
        with self._lock:
            self._instance.duck_conn.close()
