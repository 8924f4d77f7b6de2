"""Racing writers, on real threads through the app, on both table kinds.

Emails stay unique, a write's answer is what that write stored, and a PATCH that sends no
email never gets 409. A write that loses a race (another write landed between its read and
its write) answers 412 when it sent If-Match, else 503 WRITE_CONFLICT.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable

import pytest
from conftest import use_hybrid_table
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

pytestmark = pytest.mark.slow

USERS = "/api/v1/users"
RACERS = 20
# A loser of a race for an email: it read the email free, then found it taken (409), or its
# write found that another landed first (503).
LOST = {(409, "EMAIL_TAKEN"), (503, "WRITE_CONFLICT")}
# One racer: a request sent on its own thread's client.
Racer = Callable[[FlaskClient], TestResponse]


def race(app: Flask, calls: list[Racer]) -> list[TestResponse]:
    """Run each call on its own thread and client, all released at once; return responses."""
    barrier = threading.Barrier(len(calls), timeout=30)
    responses: list[TestResponse | None] = [None] * len(calls)

    def run(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        responses[index] = calls[index](client)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in responses), "a racer raised or hung"
    return [r for r in responses if r is not None]


def puts(user: dict[str, object], headers: dict[str, str]) -> list[Racer]:
    """RACERS PUTs of one user with these headers, racer i sending put{i}@example.com, "Put {i}"."""
    return [
        lambda c, i=i: c.put(
            f"{USERS}/{user['id']}",
            json={"email": f"put{i}@example.com", "name": f"Put {i}"},
            headers=headers,
        )
        for i in range(RACERS)
    ]


def casings(address: str, count: int) -> list[str]:
    """The first `count` letter cases of one address: bit b of i uppercases its b-th letter."""
    letters = [k for k, c in enumerate(address) if c.isalpha()]
    variants = []
    for i in range(count):
        chars = list(address)
        for bit, k in enumerate(letters):
            if i >> bit & 1:
                chars[k] = chars[k].upper()
        variants.append("".join(chars))
    return variants


def outcome(responses: list[TestResponse]) -> list[tuple[int, str | None]]:
    """Each response's status and problem code, sorted."""
    return sorted(
        (r.status_code, r.get_json()["code"] if r.status_code >= 400 else None) for r in responses
    )


def holders(client: FlaskClient, email: str) -> list[dict[str, object]]:
    """The users whose email is `email`, ignoring case."""
    response = client.get(USERS, query_string={"email": email})
    assert response.status_code == 200
    return list(response.get_json())


@pytest.fixture(params=["standard", "hybrid"])
def table_kind(request) -> str:
    """The kind of users table: standard (uniqueness from the SQL) or hybrid (enforced)."""
    return str(request.param)


@pytest.fixture(params=[8, RACERS], ids=["default-pool", "a-connection-each"])
def racing_app(request, settings, make_app, table_kind) -> Flask:
    """The app with the default pool (racers queue for connections), or one per racer."""
    app = make_app(dataclasses.replace(settings, db_pool_max_connections=request.param))
    if table_kind == "hybrid":
        use_hybrid_table(app)
    return app


def test_parallel_creates_of_one_email_in_any_case_make_exactly_one_user(racing_app):
    emails = casings("ada@example.com", RACERS)

    responses = race(
        racing_app,
        [lambda c, e=e: c.post(USERS, json={"email": e, "name": "Ada"}) for e in emails],
    )

    assert outcome(responses) == [(201, None)] + [(409, "EMAIL_TAKEN")] * (RACERS - 1)
    [winner] = [r.get_json() for r in responses if r.status_code == 201]
    client = racing_app.test_client()
    assert holders(client, "ADA@EXAMPLE.COM") == [winner]
    assert json.loads(client.get(USERS).headers["X-Pagination"])["total"] == 1


def test_parallel_creates_with_one_idempotency_key_make_one_user_and_one_answer(racing_app):
    body = {"email": "ada@example.com", "name": "Ada"}
    headers = {"Idempotency-Key": '"one-key"'}

    responses = race(racing_app, [lambda c: c.post(USERS, json=body, headers=headers)] * RACERS)

    created = [r for r in responses if r.status_code == 201]
    in_flight = [r for r in responses if r.status_code != 201]
    assert {(r.status_code, r.get_json()["code"]) for r in in_flight} <= {
        (409, "IDEMPOTENCY_KEY_IN_FLIGHT")
    }
    [first] = [r for r in created if "Idempotent-Replayed" not in r.headers]
    assert {(r.get_data(), r.headers["Location"], r.headers["ETag"]) for r in created} == {
        (first.get_data(), first.headers["Location"], first.headers["ETag"])
    }
    client = racing_app.test_client()
    assert holders(client, "ada@example.com") == [first.get_json()]
    replay = client.post(USERS, json=body, headers=headers)
    assert (replay.status_code, replay.get_data()) == (201, first.get_data())


def test_parallel_moves_of_users_to_one_email_leave_exactly_one_holder(racing_app, make_user):
    client = racing_app.test_client()
    users = [make_user(client, f"u{i}@example.com", f"U{i}") for i in range(RACERS)]
    emails = casings("shared@example.com", RACERS)

    responses = race(
        racing_app,
        [
            lambda c, u=u, e=e: c.patch(f"{USERS}/{u['id']}", json={"email": e})
            for u, e in zip(users, emails, strict=True)
        ],
    )

    results = outcome(responses)
    assert results[0] == (200, None)
    assert set(results[1:]) <= LOST
    [winner] = [r.get_json() for r in responses if r.status_code == 200]
    assert holders(client, "shared@example.com") == [winner]
    after = client.get(f"{USERS}?page_size=100").get_json()
    assert after == [winner if u["id"] == winner["id"] else u for u in users]


def test_creates_and_moves_racing_for_one_email_leave_exactly_one_holder(racing_app, make_user):
    client = racing_app.test_client()
    users = [make_user(client, f"u{i}@example.com", f"U{i}") for i in range(RACERS // 2)]
    emails = casings("prize@example.com", RACERS)
    moves = [
        lambda c, u=u, e=e: c.patch(f"{USERS}/{u['id']}", json={"email": e})
        for u, e in zip(users, emails, strict=False)
    ]
    creates = [
        lambda c, e=e: c.post(USERS, json={"email": e, "name": "New"}) for e in emails[len(users) :]
    ]

    responses = race(racing_app, moves + creates)

    wins = [r for r in responses if r.status_code in (200, 201)]
    assert len(wins) == 1
    assert set(outcome([r for r in responses if r not in wins])) <= LOST
    assert holders(client, "PRIZE@example.com") == [wins[0].get_json()]


def test_parallel_puts_with_one_if_match_let_exactly_one_through(racing_app, make_user):
    client = racing_app.test_client()
    user = make_user(client)

    responses = race(racing_app, puts(user, {"If-Match": '"v1"'}))

    assert outcome(responses) == [(200, None)] + [(412, "PRECONDITION_FAILED")] * (RACERS - 1)
    [winner] = [r for r in responses if r.status_code == 200]
    final = client.get(f"{USERS}/{user['id']}")
    assert final.headers["ETag"] == winner.headers["ETag"] == '"v2"'
    assert final.get_json() == winner.get_json()


def test_parallel_deletes_with_one_if_match_delete_once(racing_app, make_user):
    client = racing_app.test_client()
    user = make_user(client)
    keep = make_user(client, "bob@example.com", "Bob")

    responses = race(
        racing_app,
        [
            lambda c: c.delete(f"{USERS}/{user['id']}", headers={"If-Match": '"v1"'})
            for _ in range(RACERS)
        ],
    )

    assert outcome(responses) == [(204, None)] + [(404, "USER_NOT_FOUND")] * (RACERS - 1)
    assert client.get(USERS).get_json() == [keep]


def test_parallel_patches_without_email_answer_with_their_own_write_and_never_409(
    racing_app, make_user
):
    client = racing_app.test_client()
    user = make_user(client)
    racers = 24
    # Half unconditional; half naming, with If-Match, versions that do not exist yet.
    calls = [
        lambda c, i=i: c.patch(
            f"{USERS}/{user['id']}",
            json={"name": f"N{i}"},
            headers={"If-Match": f'"v{i // 2 + 2}"'} if i % 2 else {},
        )
        for i in range(racers)
    ]

    responses = race(racing_app, calls)

    conditional = [r for i, r in enumerate(responses) if i % 2]
    assert {r.status_code for r in responses} <= {200, 412, 503}
    assert all(r.status_code != 503 for r in conditional)
    assert all(r.get_json()["code"] == "WRITE_CONFLICT" for r in responses if r.status_code == 503)
    wins = {i: r for i, r in enumerate(responses) if r.status_code == 200}
    assert wins, "no PATCH landed"
    for i, r in wins.items():
        body = r.get_json()
        assert (body["name"], body["email"], body["id"]) == (f"N{i}", user["email"], user["id"])
    versions = sorted(int(r.headers["ETag"][2:-1]) for r in wins.values())
    assert versions == list(range(2, 2 + len(wins)))
    last = next(r for r in wins.values() if r.headers["ETag"] == f'"v{versions[-1]}"')
    final = client.get(f"{USERS}/{user['id']}")
    assert (final.get_json(), final.headers["ETag"]) == (last.get_json(), last.headers["ETag"])


def test_parallel_puts_without_if_match_answer_with_their_own_write(racing_app, make_user):
    client = racing_app.test_client()
    user = make_user(client)

    responses = race(racing_app, puts(user, {}))

    wins = {i: r for i, r in enumerate(responses) if r.status_code == 200}
    assert len(wins) >= 1
    assert set(outcome([r for r in responses if r.status_code != 200])) <= {(503, "WRITE_CONFLICT")}
    for i, r in wins.items():
        assert (r.get_json()["email"], r.get_json()["name"]) == (f"put{i}@example.com", f"Put {i}")
    etags = sorted(r.headers["ETag"] for r in wins.values())
    assert len(set(etags)) == len(wins)
    last = max(wins.values(), key=lambda r: int(r.headers["ETag"][2:-1]))
    assert client.get(f"{USERS}/{user['id']}").get_json() == last.get_json()
