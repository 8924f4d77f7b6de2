"""The worker's loaded app is frozen out of the garbage collector's reach, in a real gunicorn."""

from __future__ import annotations

import json

import pytest

from bench.servers import ROOT, call, emulator_env, gunicorn

pytestmark = pytest.mark.slow

# The project's gunicorn.conf.py, with a hook that reports what the collector sees once the
# worker has loaded the app (gunicorn calls post_worker_init right after load_wsgi).
CONFIG = """
import gc, json, runpy

globals().update(runpy.run_path({conf!r}))


def post_worker_init(worker):
    scanned = gc.get_objects()
    seen = {{
        "app_scanned": any(obj is worker.wsgi for obj in scanned),
        "worker_scanned": any(obj is worker for obj in scanned),
        "frozen": gc.get_freeze_count() > 0,
    }}
    with open({out!r}, "w") as out:
        json.dump(seen, out)
"""


def test_the_loaded_app_is_frozen_before_the_worker_serves(tmp_path):
    seen, conf = tmp_path / "seen.json", tmp_path / "gunicorn.conf.py"
    conf.write_text(CONFIG.format(conf=str(ROOT / "gunicorn.conf.py"), out=str(seen)))
    args = (f"--config={conf}", "wsgi:app")
    with gunicorn(emulator_env(tmp_path / "emulator"), tmp_path / "gunicorn.log", args=args) as s:
        assert call(s.port, "GET", "/api/v1/users")[0] == 200

    assert json.loads(seen.read_text()) == {
        "app_scanned": False,
        "worker_scanned": False,
        "frozen": True,
    }
