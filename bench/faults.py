"""Time the service's answers to database faults on the DEFAULT settings, against `fakesnow -s`.

Only the endpoint is set (host, port, protocol and the emulator's login): every timeout is the
default a user gets. For each fault, the time to the 503 of `GET /api/v1/users` and of
`GET /health/ready`, and the time from the server listening again to the first 200.
Median of ROUNDS (first argument, default 3), in milliseconds: `python -m bench.faults [ROUNDS]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from bench.servers import EmulatorServer, server_settings
from bench.standins import black_hole
from userservice import create_app, db
from userservice.errors import ServiceError


def timed(client: Any, path: str) -> tuple[int, float]:
    """Return the status of one GET and how long it took, in ms."""
    started = time.monotonic()
    status = client.get(path).status_code
    return status, (time.monotonic() - started) * 1000


def until_ok(app: Any, seconds: float = 120) -> float:
    """Create the schema and poll the list until it answers 200; return the ms that took."""
    client = app.test_client()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            with app.app_context():
                db.create_schema()  # a restarted server is empty
            if client.get("/api/v1/users").status_code == 200:
                return (time.monotonic() - started) * 1000
        except ServiceError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no recovery within {seconds} s")


def fault(name: str, figures: dict[str, float], client: Any) -> None:
    """Time the list and the readiness probe while a fault lasts."""
    for label, path in (("GET /api/v1/users", "/api/v1/users"), ("/health/ready", "/health/ready")):
        status, ms = timed(client, path)
        assert status == 503, (name, path, status)
        figures[f"{name}: {label} -> 503"] = ms


def one_round() -> dict[str, float]:
    """Measure each fault once, on a fresh server and app."""
    figures: dict[str, float] = {}
    with black_hole() as port:
        app = create_app(server_settings(port))
        try:
            fault("black-holed", figures, app.test_client())
        finally:
            db.get_from(app).close()
    server = EmulatorServer()
    app = create_app(server_settings(server.port))
    client = app.test_client()
    try:
        fault("down at start", figures, client)
        server.start()
        figures["down at start: listening -> first 200"] = until_ok(app)
        server.pause()
        fault("paused (SIGSTOP)", figures, client)
        server.resume()
        figures["paused: resumed -> first 200"] = until_ok(app)
        server.kill()
        fault("killed (SIGKILL)", figures, client)
        server.start()
        figures["killed: listening -> first 200"] = until_ok(app)
    finally:
        db.get_from(app).close()
        server.kill()
    return figures


def main() -> None:
    """Measure ROUNDS rounds and print the medians as a Markdown table."""
    rounds_wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rounds = [one_round() for _ in range(rounds_wanted)]
    print(f"| fault, default settings, median of {rounds_wanted} | ms | min | max |")
    print("|---|---|---|---|")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {min(values):.0f} | {max(values):.0f} |")


if __name__ == "__main__":
    main()
