"""Under the gevent worker, the pool's waits are gevent's although pool.py is imported unpatched.

gunicorn loads gunicorn.conf.py in the master, which imports userservice.db (and so
userservice/db/pool.py) before the fork; the gevent worker patches the standard library only
in `init_process`, after it. pool.py therefore makes its Events through a function that looks
`threading.Event` up when called (`pool._event`), so an Event made in the worker is gevent's,
and its waits let other greenlets run. A subprocess replays the order, since patching this
test process would change every other test. (tests/test_pool_gevent.py checks the class;
this checks the waits.)
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
    "made_patched": type(attempt.done) is threading.Event,
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
        "made_patched": True,
        "patched_now": True,
        "waited": False,
        "others_ran": 3,
        "woken": True,
        "probe_is_the_same_class": True,
    }
