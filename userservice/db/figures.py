"""Count what one request spends on the database: statements, their time, pool waits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RequestFigures:
    """What one request spent on the database: made by the request hook, read by its end."""

    statements: int = 0
    db_seconds: float = 0.0
    pool_wait: float = 0.0
    pool_timeouts: int = 0

    def add_statement(self, seconds: float) -> None:
        """Count one statement and the seconds it took."""
        self.statements += 1
        self.db_seconds += seconds

    def add_wait(self, seconds: float, *, timed_out: bool = False) -> None:
        """Count seconds spent waiting for a connection, and whether the wait gave up."""
        self.pool_wait += seconds
        self.pool_timeouts += timed_out
