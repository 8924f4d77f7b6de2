"""Database.restart_pool: what SnapStart's hooks use to leave no connection in the snapshot."""

from __future__ import annotations

import threading

from userservice import db
from userservice.db import queries


def test_a_restart_closes_the_pool_and_the_next_use_gets_a_fresh_one(app):
    database = db.get_from(app)
    old = database.pool
    borrowed, release, returned = threading.Event(), threading.Event(), threading.Event()
    held = []

    def hold() -> None:  # a request still running on another thread
        with old.connection() as conn:
            held.append(conn)
            borrowed.set()
            release.wait(10)
        returned.set()

    worker = threading.Thread(target=hold)
    worker.start()
    assert borrowed.wait(10)

    database.restart_pool()
    fresh = database.pool
    with app.app_context(), fresh.connection() as conn:
        rows = queries.run(conn, "ping")
    release.set()
    worker.join(10)

    assert (old.closed, fresh.closed, fresh is old) == (True, False, False)
    assert (rows, returned.is_set()) == ([{"ok": 1}], True)
    assert (old.get_stats()["open"], fresh.get_stats()["created"]) == (0, 1)
    assert conn is not held[0]
