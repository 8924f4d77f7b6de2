"""Time the service's answers to database faults, against the emulator's server (`fakesnow -s`).

The settings of tests/test_faults.py (1 s login, network and socket timeouts; a 1 s pool
timeout): time to a 503 with the server down at start, paused (SIGSTOP) and killed, and the
time from the server listening again to the first 200. Median of ROUNDS, in milliseconds.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import EmulatorServer, free_port  # noqa: E402
from test_faults import server_settings  # noqa: E402

from userservice import create_app, db  # noqa: E402
from userservice.errors import DatabaseUnavailable  # noqa: E402

ROUNDS = 5


def timed_get(client, path: str = "/api/v1/users") -> tuple[int, float]:
    """Return the status of one GET and how long it took, in ms."""
    started = time.monotonic()
    status = client.get(path).status_code
    return status, (time.monotonic() - started) * 1000


def create_schema_again(app) -> None:
    """Create the table on the restarted server; stale pooled sessions answer 503 first."""
    for _ in range(200):
        try:
            with app.app_context():
                db.create_schema()
            return
        except DatabaseUnavailable:
            time.sleep(0.05)
    raise AssertionError("the restarted server never took the schema")


def one_round() -> dict[str, float]:
    """Measure each fault once, on a fresh server and app."""
    server = EmulatorServer(free_port())
    app = create_app(server_settings(server.port))
    client = app.test_client()
    figures = {}
    try:
        status, figures["down at start"] = timed_get(client)
        assert status == 503
        server.start()
        with app.app_context():
            db.create_schema()
        assert timed_get(client)[0] == 200
        server.pause()
        status, figures["paused (SIGSTOP)"] = timed_get(client)
        assert status == 503
        server.resume()
        assert timed_get(client)[0] == 200
        server.kill()
        status, figures["killed (SIGKILL)"] = timed_get(client)
        assert status == 503
        server.start()
        back = time.monotonic()
        create_schema_again(app)  # the restarted server is empty
        for _ in range(200):
            if client.get("/api/v1/users").status_code == 200:
                break
            time.sleep(0.05)
        figures["back: listening to first 200"] = (time.monotonic() - back) * 1000
    finally:
        db.get_from(app).close()
        server.kill()
    return figures


def main() -> None:
    rounds = [one_round() for _ in range(ROUNDS)]
    print(f"| fault (1 s timeouts), median of {ROUNDS} | ms | min | max |\n|---|---|---|---|")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        print(
            f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |"
        )


if __name__ == "__main__":
    main()
