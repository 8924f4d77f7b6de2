"""The embedded emulator: persistence, a bounded results cache, serialized statements."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from userservice import db
from userservice.db import emulator
from userservice.settings import StartupError


def test_data_survives_a_new_app_on_the_same_data_dir(settings, make_app, make_user):
    first = make_app(settings)
    user = make_user(first.test_client())
    db.get_from(first).close()

    second = make_app(settings)

    assert second.test_client().get(f"/api/v1/users/{user['id']}").get_json() == user


def unusable_folders(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """EMULATOR_DATA_DIRs the service cannot keep its files in, and the reason each gives."""
    afile = tmp_path / "afile"
    afile.write_text("")
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root writes through a mode; sysfs takes no new file from anyone
        read_only = Path("/sys/kernel")
    return {
        "a file": (afile, "a file, not a folder"),
        "under a file": (afile / "sub", "Not a directory"),
        "read-only": (read_only, "Permission denied"),
    }


@pytest.mark.parametrize("case", ["a file", "under a file", "read-only"])
def test_an_unusable_data_dir_stops_the_start_with_one_line(tmp_path, make_app, settings, case):
    folder, why = unusable_folders(tmp_path)[case]
    unusable = dataclasses.replace(settings, emulator_data_dir=str(folder))

    with pytest.raises(StartupError) as caught:
        make_app(unusable)

    assert caught.value.message == (
        f"EMULATOR_DATA_DIR={folder} is not a folder the service can write ({why})"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_the_results_cache_stays_bounded(tmp_path):
    instance = emulator.Emulator(tmp_path, database="d", schema="s")
    conn = instance.connect()
    cursor = conn.cursor()

    for i in range(emulator.RESULTS_CACHE_SIZE * 3):
        cursor.execute("SELECT ? AS n", [i])
        cursor.fetchall()

    assert len(conn.results_cache) == emulator.RESULTS_CACHE_SIZE
    instance.close()


@pytest.mark.slow  # races 8 threads through 56 writes: seconds on a loaded machine
def test_concurrent_updates_of_one_table_never_fail(app, make_user):
    client = app.test_client()
    ids = [make_user(client, f"u{i}@example.com", f"U{i}")["id"] for i in range(8)]
    statuses: list[int] = []
    barrier = threading.Barrier(len(ids))

    def churn(user_id: int) -> None:
        c = app.test_client()
        barrier.wait()
        for n in range(5):
            statuses.append(c.patch(f"/api/v1/users/{user_id}", json={"name": f"N{n}"}).status_code)
        statuses.append(c.delete(f"/api/v1/users/{user_id}").status_code)

    threads = [threading.Thread(target=churn, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [200] * 40 + [204] * 8
    assert client.get("/api/v1/users").get_json() == []


def test_a_data_dir_from_before_email_key_is_upgraded_at_start(settings, make_app):
    first = make_app(settings)
    with first.app_context(), db.connection() as conn:
        cursor = conn.cursor()
        cursor.execute("ALTER TABLE users DROP COLUMN email_key")
        cursor.execute(
            "INSERT INTO users VALUES (7, 'Ada@Example.com', 'Ada', '2026-01-01', '2026-01-01', 1)"
        )
    db.get_from(first).close()

    client = make_app(settings).test_client()

    assert [u["id"] for u in client.get("/api/v1/users?email=ada@EXAMPLE.com").get_json()] == [7]
    assert (
        client.post("/api/v1/users", json={"email": "ADA@example.com", "name": "A"}).status_code
        == 409
    )


# Under gevent (as gunicorn's worker runs it), a greenlet ticks while one long statement runs.
UNDER_GEVENT = """
from gevent import monkey
monkey.patch_all()
import sys, tempfile, time, gevent
from userservice.db.emulator import Emulator
conn = Emulator(tempfile.mkdtemp(), database="D", schema="S").connect()
ticks = []
def tick():
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0.001)
gevent.spawn(tick)
gevent.sleep(0.01)
cursor = conn.cursor()
began = time.monotonic()
cursor.execute("SELECT COUNT(*) FROM TABLE(GENERATOR(ROWCOUNT => 30000000))")
ended = time.monotonic()
print(cursor.fetchall()[0][0], sum(began < t < ended for t in ticks))
"""


@pytest.mark.slow
def test_a_statement_under_gevent_lets_other_greenlets_run():
    # DuckDB never yields to gevent's hub: on the hub's thread this statement would stop the
    # ticker (0 ticks while it runs); on gevent's threadpool the ticker keeps going.
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", UNDER_GEVENT], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()

    assert out[0] == "30000000"
    assert int(out[1]) > 0
