"""represent.py writes a user exactly as flask-smorest would through UserSchema's dump."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import fresh_database
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from userservice import represent
from userservice.schemas import UserSchema

USERS = "/api/v1/users"
NAMES = [
    "Ada",
    "",
    "Zoë Ñandú",
    "名前 テスト",
    "emoji \U0001f600 and \U0001d11e",
    'quote " backslash \\ slash /',
    "tab\tnewline\ncr\r nul\x00 del\x7f c1\x85",
    "lone \ud800 surrogate",
    "\u2028\u2029 separators",
    "x" * 255,
]
EMAILS = ["ada@example.com", "ünï@exämple.de", "a+b@x.io", "\u0101@\u0101.com"]
TIMES = [
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2038, 1, 19, 3, 14, 8, tzinfo=timezone(timedelta(hours=-8))),
]
IDS = [1, 0, 2**63 - 1, 123456789]


def users() -> list[dict[str, object]]:
    """Users in every mix of the values above, as users.py returns them, and some odd ones."""
    made = [
        {
            "id": user_id,
            "email": email,
            "name": name,
            "created_at": created,
            "updated_at": updated,
            "version": 3,
        }
        for (user_id, email, name, created, updated) in itertools.islice(
            itertools.product(IDS, EMAILS, NAMES, TIMES, TIMES[::-1]), 0, None, 7
        )
    ]
    odd = [
        {"id": None, "email": None, "name": None, "created_at": None, "updated_at": None},
        {"id": 5, "email": "a@x.io"},  # keys left out are left out of the dump too
        {"id": True, "email": b"bytes@x.io", "name": 42, "created_at": TIMES[0]},
        {},
    ]
    return made + odd


@pytest.fixture
def app(module_app):
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


def expected(app: Flask, user: dict[str, object], status: int, headers: dict[str, str]):
    """Build the response the way flask-smorest's `@blp.response(status, UserSchema)` does."""
    response = app.json.response(UserSchema().dump(user))
    response.headers.extend(headers)
    response.status_code = status
    return response


def assert_same(made, wanted) -> None:
    assert (made.status_code, list(made.headers.items()), made.get_data()) == (
        wanted.status_code,
        list(wanted.headers.items()),
        wanted.get_data(),
    )


def outcome(make, *args):
    """Return a response's status, headers and body, or the exception building it raised."""
    try:
        made = make(*args, 200, {})
    except Exception as error:  # a lone surrogate cannot be UTF-8 without ensure_ascii
        return type(error)
    return made.status_code, list(made.headers.items()), made.get_data()


def test_many_users_are_written_byte_for_byte_as_the_schema_dumps_them(app):
    checked = users()
    assert len(checked) > 200
    with app.test_request_context():
        for user in checked:
            headers = {"ETag": '"v3"', "Location": f"{USERS}/1"}
            assert_same(
                represent.user_response(user, 201, headers), expected(app, user, 201, headers)
            )


def test_the_dump_is_the_schemas_for_each_user():
    for user in users():
        assert represent.dump(user) == UserSchema().dump(user)


def test_in_debug_mode_the_answer_is_indented_as_flask_indents_it(app):
    app.debug = True
    try:
        with app.test_request_context():
            user = users()[0]
            made = represent.user_response(user, 200, {"ETag": '"v3"'})
            assert_same(made, expected(app, user, 200, {"ETag": '"v3"'}))
            assert made.get_data().startswith(b'{\n  "id": ')
    finally:
        app.debug = False


@pytest.mark.parametrize("option", ["sort_keys", "ensure_ascii", "compact"])
def test_the_providers_options_are_honoured(app, option):
    provider = app.json
    assert type(provider) is DefaultJSONProvider
    before = getattr(provider, option)
    setattr(provider, option, not before if option != "compact" else False)
    try:
        with app.test_request_context():
            for user in users():
                assert outcome(represent.user_response, user) == outcome(expected, app, user)
    finally:
        setattr(provider, option, before)


def test_a_provider_of_its_own_gets_the_schemas_dump(app):
    class Upper(DefaultJSONProvider):
        def dumps(self, obj, **kwargs):
            return super().dumps(obj, **kwargs).upper()

    provider = app.json
    app.json = Upper(app)
    try:
        with app.test_request_context():
            made = represent.user_response(users()[0], 200, {})
            assert made.get_data() == app.json.response(UserSchema().dump(users()[0])).get_data()
            assert made.get_data().startswith(b'{"CREATED_AT":')  # sorted, upper-cased
    finally:
        app.json = provider


def test_a_field_it_cannot_write_is_refused_at_import():
    with pytest.raises(TypeError, match="does not know how Float dumps"):
        represent._converter("score", represent.fields.Float())
    with pytest.raises(TypeError, match="plain keys only"):
        represent._converter("id", represent.fields.Integer(data_key="ID"))


def test_the_users_routes_answer_what_the_schema_dumps(client):
    created = client.post(USERS, json={"email": "zoë@example.com", "name": "Zoë \U0001f600"})
    user = created.get_json()
    with client.application.test_request_context():
        stored = {
            **user,
            "created_at": datetime.fromisoformat(user["created_at"]),
            "updated_at": datetime.fromisoformat(user["updated_at"]),
        }
        wanted = client.application.json.response(UserSchema().dump(stored)).get_data()
    assert created.status_code == 201
    assert created.get_data() == wanted
    got = client.get(f"{USERS}/{user['id']}")
    assert (got.status_code, got.get_data(), got.content_type) == (200, wanted, "application/json")
    assert got.get_data().decode("ascii").endswith('"}\n')
    assert json.loads(got.get_data())["name"] == "Zoë \U0001f600"


def test_each_single_user_answer_is_documented_as_the_user_schema(shared_client):
    spec = shared_client.get("/openapi.json").get_json()
    documented = {
        (path, method): spec["paths"][path][method]["responses"][status]["content"]
        for path, method, status in [
            (USERS, "post", "201"),
            (f"{USERS}/{{user_id}}", "get", "200"),
            (f"{USERS}/{{user_id}}", "put", "200"),
            (f"{USERS}/{{user_id}}", "patch", "200"),
        ]
    }
    user = {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}
    assert documented == dict.fromkeys(documented, user)


@pytest.mark.parametrize("code", range(128), ids=hex)
def test_each_ascii_character_is_written_as_the_schema_dumps_it(app, code):
    user = {"id": 2**63 - 1, "email": "a@x.io", "name": f"a{chr(code)}b", "version": 1}
    with app.test_request_context():
        assert_same(represent.user_response(user, 200, {}), expected(app, user, 200, {}))
