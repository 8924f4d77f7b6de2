"""A read/write mix for the emulator: in every 50 requests, 1 POST, 1 PATCH, 1 list, 47 GETs."""

from __future__ import annotations

import http.client
import itertools
import json
import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

CLIENTS = 16
# Mostly reads, as a users API sees. On the emulator a GET costs about 8 ms, a list or PATCH
# about 27 ms and a POST about 48 ms, so more writes would not fit `make bench`'s budget.
# P: POST, G: GET /users/{id}, L: list page, U: PATCH.
CYCLE = "P" + "G" * 15 + "L" + "G" * 16 + "U" + "G" * 16
NONCE = uuid.uuid4().hex[:8]


class Mix:
    """Send an exact number of mixed requests from CLIENTS keep-alive connections."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ids: list[int] = []
        self.failures = 0
        self.sent = 0
        self._serial = itertools.count()
        self._lock = threading.Lock()

    def send(self, count: int) -> None:
        """Send `count` more requests, CLIENTS at a time, and return when all are answered."""
        tickets = iter(range(self.sent, self.sent + count))
        threads = [threading.Thread(target=self._client, args=(tickets,)) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.sent += count

    def _client(self, tickets: Iterator[int]) -> None:
        """Work through tickets on one keep-alive connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while (ticket := self._take(tickets)) is not None:
                try:
                    self._one(conn, ticket)
                except (http.client.HTTPException, OSError):
                    self._fail()
                    conn.close()  # the next request reconnects
        finally:
            conn.close()

    def _take(self, tickets: Iterator[int]) -> int | None:
        with self._lock:
            return next(tickets, None)

    def _fail(self) -> None:
        with self._lock:
            self.failures += 1

    def _one(self, conn: http.client.HTTPConnection, ticket: int) -> None:
        """Make the request that this ticket's place in CYCLE calls for."""
        step = CYCLE[ticket % len(CYCLE)]
        if step == "P" or not self.ids:
            email = f"mix-{NONCE}-{next(self._serial)}@example.com"
            user = _request(conn, "POST", "/api/v1/users", {"email": email, "name": "Mix"})
            if user is None:
                self._fail()
            else:
                self.ids.append(user["id"])
            return
        path, method, body = f"/api/v1/users/{random.choice(self.ids)}", "GET", None
        if step == "L":
            path = f"/api/v1/users?page={random.randint(1, 5)}"
        elif step == "U":
            method, body = "PATCH", {"name": f"Mix {ticket}"}
        if _request(conn, method, path, body) is None:
            self._fail()


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, body: Any = None
) -> Any | None:
    """Make one request and return its JSON body, or None unless it answered 2xx."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    raw = response.read()
    if not 200 <= response.status < 300:
        return None
    return json.loads(raw) if raw else {}


if __name__ == "__main__":
    import sys

    mix = Mix(int(sys.argv[1]))
    mix.send(int(sys.argv[2]))
    print(f"{mix.sent} requests, {mix.failures} failures")
