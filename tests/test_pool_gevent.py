"""Test the pool as the shipped worker runs it: gevent's monkey-patching after the import.

gunicorn.conf.py imports userservice.db (and so the pool) in gunicorn's master; gevent
patches the standard library only later, in each worker. Each test runs in a fresh
interpreter that does the same, so the patching is real and leaves this process alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Imported first, patched after: the order of gunicorn's master and its gevent worker.
PRELUDE = """
import itertools
from userservice.db import pool as pool_module
from gevent import monkey
monkey.patch_all()
import threading
import gevent
ConnectionPool = pool_module.ConnectionPool

class Conn:
    def close(self):
        pass

def make_pool(max_size=1):
    pool = ConnectionPool(Conn, min_size=max_size, max_size=max_size, timeout=5)
    pool.wait()
    return pool
"""


def run_patched(body: str) -> list[str]:
    """Run PRELUDE then body in a fresh interpreter; return the words it printed."""
    command = [sys.executable, "-c", PRELUDE + body]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_pools_events_are_gevents_when_the_pool_was_imported_before_patching():
    # A factory bound at import is the unpatched threading.Event class. Its instances
    # happened not to block the hub (threading.py looks Lock and Condition up when an Event
    # is made, and those were patched by then), but they were not gevent's Event either.
    out = run_patched("""
attempt, probe, pool = pool_module._Attempt(), pool_module._Probe(), make_pool()
print(type(attempt.done) is threading.Event, type(probe.done) is threading.Event,
      type(pool._closed) is threading.Event, threading.Event.__module__.startswith("gevent"))
""")

    assert out == ["True", "True", "True", "True"]


def test_the_pools_events_wait_cooperatively_and_are_woken_by_a_greenlet():
    # A thread's Event would block the hub in wait(): `other` would not run meanwhile.
    out = run_patched("""
ran = []
def other():
    for _ in range(3):
        ran.append(1)
        gevent.sleep(0.01)
gevent.spawn(other)
waited = pool_module._Attempt().done.wait(0.2)
later = pool_module._Probe()
gevent.spawn_later(0.01, later.done.set)
print(waited, len(ran), later.done.wait(1))
""")

    assert out == ["False", "3", "True"]


def test_a_checkin_with_no_one_waiting_does_not_switch_greenlets():
    # Condition.notify_all() checks ownership with a failed acquire(False), which gevent
    # answers with sleep(0): a switch to every runnable greenlet with the pool's lock held.
    out = run_patched("""
pool = make_pool()
ran = []
with pool.connection():
    gevent.spawn(ran.append, "ran")  # runnable: it runs at this greenlet's next switch
print(len(ran), pool.get_stats()["idle"])
gevent.sleep(0)
print(len(ran))
""")

    assert out == ["0", "1", "1"]


def test_a_connection_handed_to_a_waiter_is_in_its_hands_when_checkin_returns():
    # Handed over and woken, the waiter would otherwise run only at the releaser's next
    # switch, once its whole response is written, with the connection idle meanwhile.
    out = run_patched("""
pool = make_pool()
got = []
def waiter():
    with pool.connection() as conn:
        got.append(conn)
with pool.connection() as held:
    gevent.spawn(waiter)
    gevent.sleep(0.01)  # the waiter is in line, past fair_after
    print(pool.get_stats()["waiting"])
print(len(got), got[0] is held if got else None)
""")

    assert out == ["1", "1", "True"]
