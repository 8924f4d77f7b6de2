"""Load the named SQL statements in `sql/*.sql` and run them with server-side binding."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from flask import current_app, g

from ..proxies import unproxied
from . import budget, querytag, spans
from .figures import RequestFigures

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
EXTENSION_KEY = "userservice.queries"
# A sane request ID: the request hook takes the caller's only when it matches, and the spec
# documents it. It reaches Snowflake only inside the JSON of a QUERY_TAG, never the SQL text.
REQUEST_ID = re.compile(r"[A-Za-z0-9\-._:]{1,128}")

# One token at a time: quoted text and comments are skipped whole, so a colon inside them
# is never taken for a parameter, and `::` casts are kept as they are.
_TOKENS = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\$\$.*?\$\$|::)
      | (?P<param>(?<![\w:]):[A-Za-z_]\w*)
      | (?P<semicolon>;)
      | (?P<unclosed>['"]|/\*|\$\$)""",
    re.DOTALL | re.VERBOSE,
)


class QueryError(Exception):
    """A SQL file is malformed, or a call does not match its parameters."""


class Cursor(Protocol):
    """The part of a DB-API cursor that queries use."""

    description: Any

    def execute(self, command: str, params: Any = ..., **options: Any) -> Any: ...  # noqa: D102
    def fetchall(self) -> list[Any]: ...  # noqa: D102
    def close(self) -> Any: ...  # noqa: D102


class Connection(Protocol):
    """The part of a DB-API connection that queries use."""

    def cursor(self) -> Cursor: ...  # noqa: D102


@dataclass(frozen=True)
class Query:
    """One statement: its name, header, qmark SQL and the parameter behind each `?`."""

    name: str
    path: Path
    doc: str
    sql: str
    params: tuple[str, ...]

    @cached_property
    def names(self) -> frozenset[str]:
        """The parameters' names, once each."""
        return frozenset(self.params)

    def bind(self, values: Mapping[str, Any]) -> list[Any]:
        """Order the named values for the statement's placeholders, or raise QueryError."""
        if values.keys() != self.names:
            raise QueryError(
                f"{self.path.name} takes {_names(self.names)}; the call gave {_names(values)}"
            )
        return [values[name] for name in self.params]


def parse(path: Path) -> Query:
    """Read one SQL file into a Query, or raise QueryError naming the file."""
    text = path.read_text(encoding="utf-8")
    header = [line[2:].strip() for line in _leading_comments(text)]
    if not any(header):
        raise QueryError(f"{path.name}: starts with no '--' comment saying what it does")
    pieces: list[str] = []
    params: list[str] = []
    end = 0
    for token in _TOKENS.finditer(text):
        kind = token.lastgroup
        if kind == "unclosed":
            raise QueryError(f"{path.name}: unclosed quote or comment at offset {token.start()}")
        if kind == "semicolon" and text[token.end() :].strip():
            raise QueryError(f"{path.name}: holds more than one statement")
        if kind in ("param", "semicolon"):
            pieces.append(text[end : token.start()] + ("?" if kind == "param" else ""))
            end = token.end()
            if kind == "param":
                params.append(token.group()[1:])
    sql = ("".join(pieces) + text[end:]).strip()
    if not _strip_comments(sql):
        raise QueryError(f"{path.name}: holds no statement")
    return Query(path.stem, path, " ".join(header).strip(), sql, tuple(params))


def load(directory: Path = SQL_DIR) -> dict[str, Query]:
    """Parse every `*.sql` file in a directory; fail on the first bad one."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise QueryError(f"{directory}: holds no .sql files")
    return {path.stem: parse(path) for path in files}


def init_app(app: Any, directory: Path = SQL_DIR) -> None:
    """Load and check every statement at start-up, so a bad file stops the start."""
    app.extensions[EXTENSION_KEY] = load(directory)


def get(name: str) -> Query:
    """Return the current app's statement called `name`."""
    return _lookup(unproxied(current_app).extensions[EXTENSION_KEY], name)


def _lookup(catalogue: dict[str, Query], name: str) -> Query:
    try:
        return catalogue[name]
    except KeyError:
        raise QueryError(f"no statement named {name!r} in sql/") from None


def run(conn: Connection, name: str, /, **params: Any) -> list[dict[str, Any]]:
    """Run the statement `name` with bound parameters and return its rows as dicts."""
    app, state = unproxied(current_app), unproxied(g)  # once each (proxies.py)
    query = _lookup(app.extensions[EXTENSION_KEY], name)
    values = query.bind(params)
    budget.require(state)  # a statement that could not end within the request's budget never starts
    tag = querytag.query_tag(app, state)
    figures: RequestFigures | None = state.get("figures")
    if spans.recording():
        with spans.statement(query.path.name) as span:
            return _run(conn, query, values, tag, figures, span)
    return _run(conn, query, values, tag, figures, None)


def _run(
    conn: Connection,
    query: Query,
    values: list[Any],
    tag: str | None,
    figures: RequestFigures | None,
    span: Any,
) -> list[dict[str, Any]]:
    """Run a bound statement, count it in the request's figures, and add to its span."""
    started = time.perf_counter()
    cursor = conn.cursor()
    try:
        querytag.execute(cursor, query.sql, values, tag)
        columns = [column[0].lower() for column in cursor.description or ()]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        if span is not None:
            spans.returned(span, cursor, len(rows))
    finally:
        cursor.close()
        if figures is not None:
            figures.add_statement(time.perf_counter() - started)
    return rows


def affected(rows: list[dict[str, Any]]) -> int:
    """Read the count from a DML result row (number of rows inserted/updated/deleted)."""
    return int(next(iter(rows[0].values()))) if rows else 0


def _leading_comments(text: str) -> list[str]:
    lines = []
    for line in text.lstrip().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return lines


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL).strip()


def _names(names: Any) -> str:
    return ", ".join(sorted(names)) or "no parameters"
