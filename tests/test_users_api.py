"""The users API contract, through Flask's test client on the embedded emulator."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest
from conftest import fresh_database

USERS = "/api/v1/users"


@pytest.fixture
def app(module_app):
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


def test_create_answers_201_with_the_user_location_and_etag(client):
    response = client.post(USERS, json={"email": "ada@example.com", "name": "Ada"})

    assert response.status_code == 201
    body = response.get_json()
    assert list(body) == ["id", "email", "name", "created_at", "updated_at"]
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada"
    assert body["created_at"] == body["updated_at"]
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0
    assert response.headers["Location"] == f"{USERS}/{body['id']}"
    assert response.headers["ETag"] == '"v1"'


def test_created_user_reads_back_identically(client, make_user):
    created = make_user(client)

    response = client.get(f"{USERS}/{created['id']}")

    assert response.status_code == 200
    assert response.get_json() == created
    assert response.headers["ETag"] == '"v1"'


@pytest.mark.parametrize("second", ["ada@example.com", "ADA@Example.COM"])
def test_create_with_a_taken_email_in_any_case_is_409(client, second, make_user):
    make_user(client, "ada@example.com")

    response = client.post(USERS, json={"email": second, "name": "Other"})

    assert response.status_code == 409
    assert response.get_json()["code"] == "EMAIL_TAKEN"
    assert client.get(USERS).headers["X-Pagination"] == json.dumps(
        {"total": 1, "total_pages": 1, "first_page": 1, "last_page": 1, "page": 1}
    )


def test_get_unknown_user_is_404_user_not_found(shared_client):
    response = shared_client.get(f"{USERS}/999")

    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "USER_NOT_FOUND"


def test_list_pages_in_id_order_with_x_pagination(client, make_user):
    ids = [make_user(client, f"u{i}@example.com", f"U{i}")["id"] for i in range(5)]

    response = client.get(f"{USERS}?page=2&page_size=2")

    assert response.status_code == 200
    assert [u["id"] for u in response.get_json()] == ids[2:4]
    assert json.loads(response.headers["X-Pagination"]) == {
        "total": 5,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 2,
        "previous_page": 1,
        "next_page": 3,
    }


def test_list_defaults_to_page_1_of_20(client, make_user):
    ids = [make_user(client, f"u{i}@example.com", f"U{i}")["id"] for i in range(21)]

    response = client.get(USERS)

    assert [u["id"] for u in response.get_json()] == ids[:20]
    assert json.loads(response.headers["X-Pagination"])["last_page"] == 2


def test_list_past_the_last_page_is_empty_with_the_total(client, make_user):
    make_user(client)

    response = client.get(f"{USERS}?page=3")

    assert response.status_code == 200
    assert response.get_json() == []
    assert json.loads(response.headers["X-Pagination"])["total"] == 1


def test_list_filters_by_email_ignoring_case(client, make_user):
    make_user(client, "ada@example.com")
    bob = make_user(client, "bob@example.com", "Bob")

    response = client.get(f"{USERS}?email=BOB@EXAMPLE.com")

    assert response.get_json() == [bob]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page=x", "page"),
    ],
)
def test_list_with_out_of_range_paging_is_422(shared_client, query, field):
    response = shared_client.get(f"{USERS}?{query}")

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [field]


def test_put_replaces_email_and_name_and_bumps_the_etag(client, make_user):
    user = make_user(client)

    response = client.put(f"{USERS}/{user['id']}", json={"email": "a@x.io", "name": "A"})

    assert response.status_code == 200
    body = response.get_json()
    assert (body["email"], body["name"], body["created_at"]) == ("a@x.io", "A", user["created_at"])
    assert body["updated_at"] > user["updated_at"]
    assert response.headers["ETag"] == '"v2"'
    assert client.get(f"{USERS}/{user['id']}").get_json() == body


def test_put_requires_every_field(client, make_user):
    user = make_user(client)

    response = client.put(f"{USERS}/{user['id']}", json={"name": "A"})

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"email": ["Missing data for required field."]}


def test_patch_changes_only_the_fields_sent(client, make_user):
    user = make_user(client)

    response = client.patch(f"{USERS}/{user['id']}", json={"name": "Ada L."})

    assert response.status_code == 200
    assert response.get_json()["email"] == "ada@example.com"
    assert response.get_json()["name"] == "Ada L."


def test_patch_with_no_fields_is_422(client, make_user):
    user = make_user(client)

    response = client.patch(f"{USERS}/{user['id']}", json={})

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"_schema": ["Send at least one of email, name."]}


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_to_another_users_email_in_any_case_is_409(client, method, make_user):
    make_user(client, "ada@example.com")
    bob = make_user(client, "bob@example.com", "Bob")

    response = getattr(client, method)(
        f"{USERS}/{bob['id']}", json={"email": "ADA@example.com", "name": "Bob"}
    )

    assert response.status_code == 409
    assert response.get_json()["code"] == "EMAIL_TAKEN"
    assert client.get(f"{USERS}/{bob['id']}").get_json() == bob


def test_update_keeping_ones_own_email_in_another_case_is_allowed(client, make_user):
    ada = make_user(client, "ada@example.com")

    response = client.patch(f"{USERS}/{ada['id']}", json={"email": "ADA@example.com"})

    assert response.status_code == 200
    assert response.get_json()["email"] == "ADA@example.com"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_write_to_unknown_user_is_404(shared_client, method):
    response = getattr(shared_client, method)(
        f"{USERS}/12345", json={"email": "a@x.io", "name": "A"}
    )

    assert response.status_code == 404
    assert response.get_json()["code"] == "USER_NOT_FOUND"


def test_delete_answers_204_and_the_user_is_gone(client, make_user):
    user = make_user(client)

    response = client.delete(f"{USERS}/{user['id']}")

    assert (response.status_code, response.data, response.content_type) == (204, b"", None)
    assert client.get(f"{USERS}/{user['id']}").status_code == 404


def test_if_none_match_with_the_current_etag_is_304(client, make_user):
    user = make_user(client)

    response = client.get(f"{USERS}/{user['id']}", headers={"If-None-Match": '"v1"'})

    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == '"v1"'


@pytest.mark.parametrize("header", ['W/"v1"', '"v9", "v1"', "*"])
def test_if_none_match_compares_weakly_and_takes_lists(client, header, make_user):
    user = make_user(client)

    response = client.get(f"{USERS}/{user['id']}", headers={"If-None-Match": header})

    assert response.status_code == 304


def test_if_none_match_with_an_old_etag_is_200(client, make_user):
    user = make_user(client)
    client.patch(f"{USERS}/{user['id']}", json={"name": "New"})

    response = client.get(f"{USERS}/{user['id']}", headers={"If-None-Match": '"v1"'})

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v2"'


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_with_a_matching_if_match_succeeds(client, method, make_user):
    user = make_user(client)

    response = getattr(client, method)(
        f"{USERS}/{user['id']}", json={"email": "a@x.io", "name": "A"}, headers={"If-Match": '"v1"'}
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == '"v2"'


@pytest.mark.parametrize("if_match", ['"v2"', 'W/"v1"', "garbage", '"v1x"'])
@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_with_a_stale_or_unusable_if_match_is_412_and_changes_nothing(
    client, method, if_match, make_user
):
    user = make_user(client)

    response = getattr(client, method)(
        f"{USERS}/{user['id']}",
        json={"email": "a@x.io", "name": "A"},
        headers={"If-Match": if_match},
    )

    assert response.status_code == 412
    assert response.get_json()["code"] == "PRECONDITION_FAILED"
    assert client.get(f"{USERS}/{user['id']}").get_json() == user


def test_delete_with_a_stale_if_match_is_412_and_keeps_the_user(client, make_user):
    user = make_user(client)

    response = client.delete(f"{USERS}/{user['id']}", headers={"If-Match": '"v7"'})

    assert response.status_code == 412
    assert client.get(f"{USERS}/{user['id']}").status_code == 200


def test_delete_with_the_current_if_match_deletes(client, make_user):
    user = make_user(client)

    response = client.delete(f"{USERS}/{user['id']}", headers={"If-Match": '"v1"'})

    assert response.status_code == 204


def test_delete_unknown_user_with_if_match_is_404(shared_client):
    response = shared_client.delete(f"{USERS}/777", headers={"If-Match": '"v1"'})

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"email": "not-an-email", "name": "A"}, {"email": ["Not a valid email address."]}),
        ({"email": "a@x.io", "name": ""}, {"name": ["Length must be between 1 and 255."]}),
        ({"email": "a@x.io", "name": "n" * 256}, {"name": ["Length must be between 1 and 255."]}),
        ({"email": "a@x.io", "name": "A", "role": "admin"}, {"role": ["Unknown field."]}),
        ({"email": "a@x.io", "name": "A", "id": 5}, {"id": ["Unknown field."]}),
        ({"email": "a@x.io", "name": 5}, {"name": ["Not a valid string."]}),
        ({"email": "a@x.io", "name": "A\x00B"}, {"name": ["Must not contain control characters."]}),
        ({"name": "A"}, {"email": ["Missing data for required field."]}),
        ([1, 2], {"_schema": ["Invalid input type."]}),
    ],
)
def test_invalid_user_is_422_with_field_errors_and_stores_nothing(shared_client, body, errors):
    response = shared_client.post(USERS, json=body)

    assert response.status_code == 422
    problem = response.get_json()
    assert (problem["code"], problem["errors"]) == ("VALIDATION_ERROR", errors)
    assert shared_client.get(USERS).get_json() == []


def test_name_of_255_characters_is_accepted(client):
    response = client.post(USERS, json={"email": "a@x.io", "name": "n" * 255})

    assert response.status_code == 201
    assert response.get_json()["name"] == "n" * 255


def test_sql_in_values_is_stored_and_read_back_verbatim(client, make_user):
    name = "Robert'); DROP TABLE users; --"

    user = make_user(client, "bobby@example.com", name)

    assert client.get(f"{USERS}/{user['id']}").get_json()["name"] == name
    assert client.get(f"{USERS}?email=' OR '1'='1").get_json() == []


def test_concurrent_creates_of_one_email_in_different_cases_make_one_user(app):
    emails = [
        f"{'ada'.upper() if i % 2 else 'ada'}{'@EXAMPLE.com' if i % 3 else '@example.com'}"
        for i in range(10)
    ]
    statuses: list[int] = []
    barrier = threading.Barrier(len(emails))

    def create(email: str) -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post(USERS, json={"email": email, "name": "A"}).status_code)

    threads = [threading.Thread(target=create, args=(e,)) for e in emails]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [201] + [409] * 9
    assert len(app.test_client().get(USERS).get_json()) == 1


def test_statements_per_request_stay_within_budget(client, access_log, make_user):
    user = make_user(client)
    uid = user["id"]
    calls = [
        ("GET", f"{USERS}/{uid}", None),
        ("GET", USERS, None),
        ("PUT", f"{USERS}/{uid}", {"email": "b@x.io", "name": "B"}),
        ("PATCH", f"{USERS}/{uid}", {"name": "C"}),
        ("DELETE", f"{USERS}/{uid}", None),
    ]
    for method, path, body in calls:
        client.open(path, method=method, json=body)

    counts = [(r.method, r.db_statements) for r in access_log]
    assert counts == [("POST", 2), ("GET", 1), ("GET", 1), ("PUT", 2), ("PATCH", 2), ("DELETE", 1)]


def test_failed_writes_decide_from_their_own_statements_within_budget(
    client, access_log, make_user
):
    ada = make_user(client)
    bob = make_user(client, "bob@example.com", "Bob")
    calls = [
        ("PUT", f"{USERS}/999", {"email": "c@x.io", "name": "C"}, {}, 404),
        ("PUT", f"{USERS}/{bob['id']}", {"email": "ADA@example.com", "name": "B"}, {}, 409),
        ("PATCH", f"{USERS}/{bob['id']}", {"name": "B"}, {"If-Match": '"v9"'}, 412),
        ("DELETE", f"{USERS}/{ada['id']}", None, {"If-Match": '"v9"'}, 412),
        ("DELETE", f"{USERS}/999", None, {"If-Match": '"v1"'}, 404),
        ("DELETE", f"{USERS}/999", None, {}, 404),
    ]
    for method, path, body, headers, status in calls:
        assert client.open(path, method=method, json=body, headers=headers).status_code == status

    counts = [(r.method, r.status, r.db_statements) for r in access_log[2:]]
    assert counts == [
        ("PUT", 404, 1),
        ("PUT", 409, 1),
        ("PATCH", 412, 1),
        ("DELETE", 412, 1),
        ("DELETE", 404, 1),
        ("DELETE", 404, 1),
    ]
    assert client.get(USERS).get_json() == [ada, bob]
