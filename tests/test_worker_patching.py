"""Under the gevent worker, the pool's waits are gevent's although pool.py is imported unpatched.

gunicorn loads gunicorn.conf.py in the master, which imports userservice.db (and so
userservice/db/pool.py) before the fork; the gevent worker patches the standard library only
in `init_process`, after it. So `field(default_factory=threading.Event)` in pool.py holds
the standard library's own Event class. The waits are gevent's all the same: that class
builds its Condition and locks from `threading.Lock` and `_allocate_lock` looked up at each
call, and those are gevent's once patched. A subprocess replays the order, since patching
this test process would change every other test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

_REPLAY = """
import json, threading, time
import userservice.db  # what gunicorn.conf.py imports, in the master
from userservice.db import pool
unpatched = threading.Event
from gevent import monkey
monkey.patch_all()  # GeventWorker.patch, from init_process, in the worker after the fork
import gevent

factory = pool._Attempt.__dataclass_fields__["done"].default_factory
ran = []
def other():
    for _ in range(3):
        ran.append(1)
        gevent.sleep(0.01)
gevent.spawn(other)
attempt, probe = pool._Attempt(), pool._Probe()
waited = attempt.done.wait(0.2)  # a thread's Event would block the hub: `other` would not run
later = pool._Attempt()
gevent.spawn_later(0.01, later.done.set)
print(json.dumps({
    "bound_unpatched": factory is unpatched,
    "patched_now": threading.Event is not unpatched,
    "waited": waited,
    "others_ran": len(ran),
    "woken": later.done.wait(1),
    "probe_is_the_same_class": type(probe.done) is type(attempt.done),
}))
"""


def test_the_pools_events_bound_before_patching_still_wait_cooperatively():
    result = subprocess.run(
        [sys.executable, "-c", _REPLAY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert json.loads(result.stdout.splitlines()[-1]) == {
        "bound_unpatched": True,
        "patched_now": True,
        "waited": False,
        "others_ran": 3,
        "woken": True,
        "probe_is_the_same_class": True,
    }
