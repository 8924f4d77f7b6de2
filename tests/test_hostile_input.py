"""Hostile input: each case gets its documented 4xx problem document and changes nothing."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from werkzeug.test import EnvironBuilder

from userservice import create_app, db
from userservice.settings import Settings

# The whole catalogue: some 800 cases, each on the shared app.
pytestmark = pytest.mark.slow

USERS = "/api/v1/users"
VALID = {"email": "new@example.com", "name": "New"}
SQL_NAMES = [
    "Robert'); DROP TABLE users; --",
    "' OR '1'='1",
    '"; DELETE FROM users WHERE "1"="1',
    "1; UPDATE users SET email = NULL",
    "' UNION SELECT id, email, name, created_at, updated_at, version FROM users --",
    "$$; DROP TABLE users; $$",
    "/* */ :id ? %s {email} \\",
    "%_%",
]
# Valid addresses (marshmallow's rules) that are also SQL metacharacters: data, not code.
SQL_EMAILS = [
    "o'brien@example.com",
    "'or'1'='1@example.com",
    "x'--@example.com",
    "x'/**/or/**/'1'='1@example.com",
    "$$@example.com",
    "%@example.com",
    "_@example.com",
]
SQL_FILTERS = [
    "' OR '1'='1",
    "ada@example.com' OR '1'='1",
    "ada@example.com' --",
    "'; DROP TABLE users; --",
    "%",
    "%@example.com",
    "_da@example.com",
    "ada@example.com\\",
]


def everything(client):
    """Every user and the total, as the API shows them."""
    response = client.get(f"{USERS}?page_size=100")
    assert response.status_code == 200
    return json.loads(response.headers["X-Pagination"])["total"], response.get_json()


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory, make_user):
    """One app, seeded with two users, for the cases that must change nothing.

    Those cases can share a database because each checks that it is left as it was; a
    fresh one per case would cost a fifth of a second each, hundreds of times.
    """
    folder = tmp_path_factory.mktemp("emulator")
    app = create_app(Settings(emulator_data_dir=str(folder), log_level="WARNING"))
    make_user(app.test_client(), "ada@example.com", "Ada")
    make_user(app.test_client(), "bob@example.com", "Bob")
    yield app
    db.get_from(app).close()


@pytest.fixture
def api(shared_app):
    """A client of the shared app."""
    return shared_app.test_client()


@pytest.fixture(scope="module")
def before(shared_app):
    """Everything the shared app shows before any hostile request."""
    return everything(shared_app.test_client())


@pytest.fixture(scope="module")
def ada(before):
    """The first seeded user of the shared app."""
    return before[1][0]


@pytest.fixture
def seeded(client, make_user):
    """Two users on this test's own database, for cases that store something."""
    make_user(client, "ada@example.com", "Ada")
    make_user(client, "bob@example.com", "Bob")
    return everything(client)


def send(client, method, ada, **kwargs):
    """Send a request to the collection (POST) or to Ada (any other method)."""
    path = USERS if method == "POST" else f"{USERS}/{ada['id']}"
    return client.open(path, method=method, **kwargs)


def call_wsgi(app, environ):
    """Call the app as a WSGI server would; return status, headers and body."""
    started = []
    response = app.wsgi_app(environ, lambda status, headers, *_: started.append((status, headers)))
    try:
        body = b"".join(response)
    finally:
        response.close()
    return int(started[0][0].split()[0]), started[0][1], body


def streamed(body):
    """A POST environ as gunicorn builds it for a chunked body: no Content-Length."""
    builder = EnvironBuilder(path=USERS, method="POST", content_type="application/json")
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True})
    return environ


def email_of(length):
    """A valid address of exactly `length` characters (labels stay within 63)."""
    local = "a" * 64
    domain_tail = length - len(local) - 1 - 64 - 64 - 3
    address = f"{local}@{'b' * 63}.{'c' * 63}.{'d' * domain_tail}.io"
    assert len(address) == length
    return address


# --- bodies that are not JSON, or not the JSON we take -------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    "body",
    [
        b"{bad",
        b'{"email": "a@x.io",',
        b'{"email": "a@x.io", "name": "A"} trailing',
        b"{'email': 'a@x.io', 'name': 'A'}",
        b"   ",
        b'\xef\xbb\xbf{"email": "a@x.io", "name": "A"}',
        '{"email": "a@x.io", "name": "A"}'.encode("utf-16"),
        b"\xff\xfe",
        b'{"email": "a@x.io", "name": "\xff"}',
        b'{"email": "a@x.io", "name": "\xc0\xaf"}',
        b'{"email": "a@x.io", "name": "\xed\xa0\x80"}',
        b'{"email": "a@x.io", "name": "A\x00B"}',
        b'{"email": "a@x.io", "name": "A"}\x00',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a": ' * 10_000 + b"1" + b"}" * 10_000,
        b'{"email": "a@x.io", "name": "A", "n": ' + b"9" * 5000 + b"}",
    ],
    ids=[
        "unclosed",
        "truncated",
        "trailing-garbage",
        "single-quotes",
        "whitespace-only",
        "utf8-bom",
        "utf16",
        "not-utf8",
        "not-utf8-in-a-string",
        "overlong-utf8",
        "utf8-encoded-surrogate",
        "raw-nul-in-a-string",
        "trailing-nul",
        "arrays-10000-deep",
        "objects-10000-deep",
        "integer-of-5000-digits",
    ],
)
def test_a_body_that_is_not_json_is_400_and_changes_nothing(
    api, before, ada, method, body, assert_problem
):
    response = send(api, method, ada, data=body, content_type="application/json")

    assert_problem(response, 400, "MALFORMED_JSON")
    assert everything(api) == before


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "text/json",
        "application/jsonx",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_body_sent_as_another_type_is_415_and_changes_nothing(
    api, before, ada, method, content_type, assert_problem
):
    response = send(api, method, ada, data=json.dumps(VALID), content_type=content_type)

    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert everything(api) == before


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    "body",
    [b"null", b"[]", b'[{"email": "a@x.io", "name": "A"}]', b'"a@x.io"', b"42", b"-1.5e3", b"true"],
)
def test_json_that_is_not_an_object_is_422_and_changes_nothing(
    api, before, ada, method, body, assert_problem
):
    response = send(api, method, ada, data=body, content_type="application/json")

    problem = assert_problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"] == {"_schema": ["Invalid input type."]}
    assert everything(api) == before


@pytest.mark.parametrize(
    ("method", "errors"),
    [
        (
            "POST",
            {
                "email": ["Missing data for required field."],
                "name": ["Missing data for required field."],
            },
        ),
        (
            "PUT",
            {
                "email": ["Missing data for required field."],
                "name": ["Missing data for required field."],
            },
        ),
        ("PATCH", {"_schema": ["Send at least one of email, name."]}),
    ],
)
def test_an_empty_json_body_is_422_and_changes_nothing(
    api, before, ada, method, errors, assert_problem
):
    response = send(api, method, ada, data=b"", content_type="application/json")

    assert assert_problem(response, 422, "VALIDATION_ERROR")["errors"] == errors
    assert everything(api) == before


# --- fields: types, presence, lengths, contents ----------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", 5, "Not a valid email address."),
        ("email", 1.5, "Not a valid email address."),
        ("email", True, "Not a valid email address."),
        ("email", [], "Not a valid email address."),
        ("email", ["a@x.io"], "Not a valid email address."),
        ("email", {"email": "a@x.io"}, "Not a valid email address."),
        ("email", None, "Field may not be null."),
        ("name", 5, "Not a valid string."),
        ("name", 1.5, "Not a valid string."),
        ("name", False, "Not a valid string."),
        ("name", ["A"], "Not a valid string."),
        ("name", {"name": "A"}, "Not a valid string."),
        ("name", None, "Field may not be null."),
    ],
)
def test_a_field_of_the_wrong_type_is_422_and_changes_nothing(
    api, before, ada, method, field, value, message, assert_problem
):
    body = {field: value} if method == "PATCH" else {**VALID, field: value}

    response = send(api, method, ada, json=body)

    assert assert_problem(response, 422, "VALIDATION_ERROR")["errors"] == {field: [message]}
    assert everything(api) == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {},
            {
                "email": ["Missing data for required field."],
                "name": ["Missing data for required field."],
            },
        ),
        ({"email": "new@example.com"}, {"name": ["Missing data for required field."]}),
        ({"name": "New"}, {"email": ["Missing data for required field."]}),
        ({**VALID, "id": 1}, {"id": ["Unknown field."]}),
        ({**VALID, "version": 9}, {"version": ["Unknown field."]}),
        ({**VALID, "created_at": "2000-01-01T00:00:00Z"}, {"created_at": ["Unknown field."]}),
        ({**VALID, "role": "admin"}, {"role": ["Unknown field."]}),
        ({**VALID, "EMAIL": "x@x.io"}, {"EMAIL": ["Unknown field."]}),
        ({**VALID, "": 1}, {"": ["Unknown field."]}),
        ({**VALID, "\u0000": 1}, {"\u0000": ["Unknown field."]}),
        ({**VALID, "\ud800": 1}, {"\ud800": ["Unknown field."]}),
        ({**VALID, "email; DROP TABLE users": 1}, {"email; DROP TABLE users": ["Unknown field."]}),
    ],
)
def test_a_missing_or_unknown_field_is_422_and_changes_nothing(
    api, before, body, errors, assert_problem
):
    response = api.post(USERS, json=body)

    assert assert_problem(response, 422, "VALIDATION_ERROR")["errors"] == errors
    assert everything(api) == before


@pytest.mark.parametrize(
    ("method", "change"),
    [
        ("POST", {"email": email_of(255)}),
        ("PUT", {"email": email_of(255)}),
        ("PATCH", {"email": email_of(255)}),
        ("POST", {"name": "n" * 255}),
        ("PATCH", {"name": "n" * 255}),
        ("POST", {"name": "é" * 255}),
        ("PUT", {"name": "😀" * 255}),
    ],
)
def test_values_of_255_characters_are_stored_and_read_back(client, seeded, method, change):
    body = change if method == "PATCH" else {**VALID, **change}

    response = send(client, method, seeded[1][0], json=body)

    assert response.status_code == (201 if method == "POST" else 200)
    user = response.get_json()
    assert {key: user[key] for key in change} == change
    assert client.get(f"{USERS}/{user['id']}").get_json() == user
    assert client.get(USERS, query_string={"email": user["email"]}).get_json() == [user]


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"email": email_of(256)}, {"email": ["Longer than maximum length 255."]}),
        ({"name": "n" * 256}, {"name": ["Length must be between 1 and 255."]}),
        ({"name": "😀" * 256}, {"name": ["Length must be between 1 and 255."]}),
        ({"name": ""}, {"name": ["Length must be between 1 and 255."]}),
        ({"email": ""}, {"email": ["Not a valid email address."]}),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_values_out_of_length_are_422_and_change_nothing(
    api, before, ada, method, change, errors, assert_problem
):
    body = change if method == "PATCH" else {**VALID, **change}

    response = send(api, method, ada, json=body)

    assert assert_problem(response, 422, "VALIDATION_ERROR")["errors"] == errors
    assert everything(api) == before


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "a@",
        "@example.com",
        "a@@example.com",
        "a b@example.com",
        " a@example.com",
        "a@example..com",
        "a..b@example.com",
        "a@example",
        "a@-example.com",
        "<script>@example.com",
        "' OR 1=1 --",
        "a@example.com' OR '1'='1",
        "a@example.com; DROP TABLE users",
        '"; DROP TABLE users; --"@example.com',
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_an_invalid_email_is_422_and_changes_nothing(
    api, before, ada, method, email, assert_problem
):
    body = {"email": email} if method == "PATCH" else {**VALID, "email": email}

    response = send(api, method, ada, json=body)

    assert assert_problem(response, 422, "VALIDATION_ERROR")["errors"] == {
        "email": ["Not a valid email address."]
    }
    assert everything(api) == before


CONTROL = "Must not contain control characters."


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (b'{"email": "new@example.com", "name": "A\\u0000B"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "\\u0000"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "\\ud800"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "A\\udfffB"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "\\udfff\\ud800"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "\\u001b[31mred"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "A\\u007fB"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "A\\u0085B"}', {"name": [CONTROL]}),
        (b'{"email": "new@example.com", "name": "A\\r\\nB"}', {"name": [CONTROL]}),
        # One reason per field, the first check's: the cheap ones run first.
        (b'{"email": "new\\u0000@example.com", "name": "A"}', {"email": [CONTROL]}),
        (b'{"email": "new\\ud800@example.com", "name": "A"}', {"email": [CONTROL]}),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_nul_control_characters_and_lone_surrogates_are_422_and_change_nothing(
    api, before, ada, method, body, errors, assert_problem
):
    response = send(api, method, ada, data=body, content_type="application/json")

    assert assert_problem(response, 422, "VALIDATION_ERROR")["errors"] == errors
    assert everything(api) == before


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_10_mb_body_is_413_and_changes_nothing(api, before, ada, method, assert_problem):
    body = json.dumps({**VALID, "name": "n" * (10 * 1024 * 1024)})

    response = send(api, method, ada, data=body, content_type="application/json")

    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert everything(api) == before


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({**VALID, "name": "n" * (10 * 1024 * 1024)}).encode(),
        json.dumps(VALID).encode() + b" " * (2 * 1024 * 1024),
    ],
    ids=["10-mb", "valid-json-then-2-mb-of-spaces"],
)
def test_a_streamed_body_past_the_limit_is_413_and_changes_nothing(shared_app, api, before, body):
    status, _, problem = call_wsgi(shared_app, streamed(body))

    assert (status, json.loads(problem)["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert everything(api) == before


def test_a_streamed_body_within_the_limit_is_read(app, client):
    status, _, body = call_wsgi(app, streamed(json.dumps(VALID).encode()))

    assert status == 201
    assert client.get(USERS).get_json() == [json.loads(body)]


# --- SQL in values and query parameters --------------------------------------------------------


@pytest.mark.parametrize("name", SQL_NAMES)
def test_sql_in_a_name_is_stored_and_read_back_verbatim(client, seeded, name):
    created = client.post(USERS, json={"email": "new@example.com", "name": name}).get_json()

    assert created["name"] == name
    assert client.get(f"{USERS}/{created['id']}").get_json() == created
    assert everything(client) == (3, [*seeded[1], created])


@pytest.mark.parametrize("email", SQL_EMAILS)
def test_sql_in_a_valid_email_is_stored_and_found_verbatim(client, seeded, email):
    created = client.post(USERS, json={"email": email, "name": "New"}).get_json()

    assert created["email"] == email
    assert client.get(USERS, query_string={"email": email.upper()}).get_json() == [created]
    assert everything(client) == (3, [*seeded[1], created])


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_sql_in_an_update_is_stored_verbatim_and_touches_only_that_user(client, seeded, method):
    body = {"email": SQL_EMAILS[1], "name": SQL_NAMES[0]}

    response = send(client, method, seeded[1][0], json=body)

    assert response.status_code == 200
    updated = response.get_json()
    assert (updated["email"], updated["name"]) == (body["email"], body["name"])
    assert everything(client) == (2, [updated, seeded[1][1]])


@pytest.mark.parametrize("email", SQL_FILTERS)
def test_sql_in_the_email_filter_matches_nothing_and_changes_nothing(api, before, email):
    response = api.get(USERS, query_string={"email": email})

    assert response.status_code == 200
    assert response.get_json() == []
    assert json.loads(response.headers["X-Pagination"])["total"] == 0
    assert everything(api) == before


@pytest.mark.parametrize("field", ["page", "page_size"])
@pytest.mark.parametrize(
    "value", ["1 OR 1=1", "1; DROP TABLE users", "1)--", "1'", "(SELECT 1)", "1 UNION SELECT 1"]
)
def test_sql_in_paging_parameters_is_422_and_changes_nothing(
    api, before, field, value, assert_problem
):
    response = api.get(USERS, query_string={field: value})

    problem = assert_problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"] == {field: ["Not a valid integer."]}
    assert everything(api) == before


# --- paths and query strings -------------------------------------------------------------------

BAD_IDS = [
    ("0", "USER_NOT_FOUND"),
    ("9223372036854775807", "USER_NOT_FOUND"),
    ("-1", "NOT_FOUND"),
    ("abc", "NOT_FOUND"),
    ("99999999999999999999999", "NOT_FOUND"),
    ("9223372036854775808", "NOT_FOUND"),
    ("9" * 40, "NOT_FOUND"),
    ("9" * 5000, "NOT_FOUND"),
    ("1.5", "NOT_FOUND"),
    ("0x1", "NOT_FOUND"),
    ("1e3", "NOT_FOUND"),
    ("1%20OR%201=1", "NOT_FOUND"),
    ("1;DROP%20TABLE%20users", "NOT_FOUND"),
    ("1'--", "NOT_FOUND"),
    ("%00", "NOT_FOUND"),
]


@pytest.mark.parametrize(
    ("method", "user_id", "code"),
    [("GET", user_id, code) for user_id, code in BAD_IDS]
    + [
        (method, user_id, code)
        for method in ("PUT", "PATCH", "DELETE")
        for user_id, code in BAD_IDS
        if user_id in ("0", "-1", "abc", "99999999999999999999999", "9" * 40)
    ],
    ids=lambda value: f"{len(value)}-digits" if len(value) > 100 else None,
)
def test_an_id_that_names_no_user_is_404_and_changes_nothing(
    api, before, method, user_id, code, assert_problem
):
    response = api.open(f"{USERS}/{user_id}", method=method, json=VALID)

    assert_problem(response, 404, code)
    assert everything(api) == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=-0", "page"),
        ("page=", "page"),
        ("page=x", "page"),
        ("page=1.5", "page"),
        ("page=1e3", "page"),
        ("page=0x1", "page"),
        ("page=%00", "page"),
        ("page=" + "9" * 5000, "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=-1", "page_size"),
        ("page_size=", "page_size"),
        ("page_size=x", "page_size"),
        ("page_size=1e2", "page_size"),
        ("page_size=" + "9" * 5000, "page_size"),
        ("email=" + "a" * 256, "email"),
        ("email=a%00@example.com", "email"),
    ],
    ids=lambda value: value if len(value) < 40 else f"{value[:12]}...({len(value)})",
)
def test_query_parameters_out_of_range_are_422_and_change_nothing(
    api, before, query, field, assert_problem
):
    response = api.get(f"{USERS}?{query}")

    assert list(assert_problem(response, 422, "VALIDATION_ERROR")["errors"]) == [field]
    assert everything(api) == before


@pytest.mark.parametrize("page", [10**6, 2**63, 10**40])
def test_a_page_far_past_the_last_is_empty_with_the_total(api, before, page):
    response = api.get(USERS, query_string={"page": page, "page_size": 100})

    assert response.status_code == 200
    assert response.get_json() == []
    assert json.loads(response.headers["X-Pagination"])["total"] == 2
    assert everything(api) == before


# --- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given", ["abc\r\nSet-Cookie: session=stolen", "abc\nX-Injected: 1", "\r\n", "ok\r"]
)
def test_a_request_id_with_cr_or_lf_is_replaced_at_the_wsgi_level(shared_app, api, before, given):
    environ = EnvironBuilder(path=f"{USERS}/999").get_environ()
    environ["HTTP_X_REQUEST_ID"] = given

    status, headers, body = call_wsgi(shared_app, environ)

    assert status == 404
    request_id = dict(headers)["X-Request-ID"]
    assert uuid.UUID(request_id).version == 4
    assert json.loads(body)["request_id"] == request_id
    assert not any("\r" in value or "\n" in value or "stolen" in value for _, value in headers)
    assert {"Set-Cookie", "X-Injected"}.isdisjoint(dict(headers))
    assert everything(api) == before


@pytest.mark.parametrize(
    "given",
    ["a" * 10 * 1024, "<script>alert(1)</script>", "x' OR '1'='1", "%0d%0aX: 1"],
    ids=["10-kb", "script", "sql", "encoded-cr-lf"],
)
def test_an_insane_request_id_is_never_echoed(api, before, access_log, given, assert_problem):
    response = api.get(f"{USERS}/999", headers={"X-Request-ID": given})

    request_id = assert_problem(response, 404, "USER_NOT_FOUND")["request_id"]
    assert uuid.UUID(request_id).version == 4
    assert given not in response.get_data(as_text=True)
    assert access_log[-1].request_id == request_id
    assert everything(api) == before


GARBAGE_TAGS = [
    "garbage",
    "",
    " ",
    ",,,",
    "v1",
    '"v1',
    'v1"',
    '"V1"',
    '"v01"',
    '"v1x"',
    '"v-1"',
    '"v%"',
    '"v_"',
    '"*"',
    '"v\u0661"',  # ARABIC-INDIC DIGIT ONE: isdigit(), yet no version
    '"v' + "9" * 40 + '"',
    "\"v1' OR '1'='1\"",
    '"v1); DELETE FROM users; --"',
]


@pytest.mark.parametrize(
    ("method", "if_match"),
    [("PATCH", tag) for tag in [*GARBAGE_TAGS, 'W/"v1"']]
    + [(method, tag) for method in ("PUT", "DELETE") for tag in ("garbage", "", '"v1x"', 'W/"v1"')],
)
def test_garbage_in_if_match_is_412_and_changes_nothing(
    api, before, ada, method, if_match, assert_problem
):
    response = send(api, method, ada, json=VALID, headers={"If-Match": if_match})

    assert_problem(response, 412, "PRECONDITION_FAILED")
    assert everything(api) == before


@pytest.mark.parametrize("if_none_match", GARBAGE_TAGS[::2])
def test_garbage_in_if_none_match_is_ignored(api, before, ada, if_none_match):
    response = api.get(f"{USERS}/{ada['id']}", headers={"If-None-Match": if_none_match})

    assert response.status_code == 200
    assert response.get_json() == ada
    assert response.headers["ETag"] == '"v1"'
    assert everything(api) == before


# --- one URL per user, one spelling per query integer ------------------------------------------

# Digits of other scripts, signs, spaces, underscores, leading zeros, empty segments, encoded
# slashes: spellings that int() or a lenient router would read as user 1 (or 206).
ID_ALIASES = [
    "%EF%BC%91",  # fullwidth 1
    "%EF%BC%92%EF%BC%90%EF%BC%96",  # fullwidth 206
    "%D9%A1",  # Arabic-Indic 1
    "%DB%B1",  # extended Arabic-Indic 1
    "%E0%A5%A7",  # Devanagari 1
    "%E0%A7%A7",  # Bengali 1
    "%E0%B9%91",  # Thai 1
    "%C2%B9",  # superscript 1
    "%F0%9D%9F%8F",  # mathematical bold 1
    "01",
    "001",
    "00",
    "+1",
    "-0",
    "1_0",
    "%201",
    "1%20",
    "%091",
    "1%0A",
    "1/",
    "/1",
    "1%2F",
    "1%2f",
]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("alias", ID_ALIASES)
def test_another_spelling_of_an_id_is_404_not_found_and_changes_nothing(
    api, before, method, alias, assert_problem
):
    response = api.open(f"{USERS}/{alias}", method=method, json=VALID)

    assert_problem(response, 404, "NOT_FOUND")
    assert everything(api) == before


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    "path", [f"{USERS}%2F1", f"{USERS}%2f1", "/api/v1//users/1", "//api/v1/users/1"]
)
def test_an_encoded_slash_or_empty_segment_before_the_id_is_404_and_changes_nothing(
    api, before, method, path, assert_problem
):
    response = api.open(path, method=method)

    assert_problem(response, 404, "NOT_FOUND")
    assert everything(api) == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=%EF%BC%91", "page"),
        ("page=%D9%A1", "page"),
        ("page=%E0%A5%A7", "page"),
        ("page=%C2%B9", "page"),
        ("page=01", "page"),
        ("page=+1", "page"),
        ("page=1_0", "page"),
        ("page=%201", "page"),
        ("page=1%20", "page"),
        ("page=1%09", "page"),
        ("page=1&page=2", "page"),
        ("page=1&page=1", "page"),
        ("page_size=%EF%BC%95", "page_size"),
        ("page_size=05", "page_size"),
        ("page_size=+5", "page_size"),
        ("page_size=1_0", "page_size"),
        ("page_size=5&page_size=6", "page_size"),
        ("email=a@example.com&email=b@example.com", "email"),
    ],
)
def test_another_spelling_of_a_query_integer_or_a_repeated_parameter_is_422(
    api, before, query, field, assert_problem
):
    response = api.get(f"{USERS}?{query}")

    assert list(assert_problem(response, 422, "VALIDATION_ERROR")["errors"]) == [field]
    assert everything(api) == before


# --- ambiguous JSON ----------------------------------------------------------------------------

AMBIGUOUS_JSON = [
    b'{"email": "x@example.com", "email": "y@example.com", "name": "X"}',
    b'{"email": "x@example.com", "name": "X", "name": "Y"}',
    b'{"email": "x@example.com", "name": "X", "name": "X"}',
    b'{"email": "x@example.com", "name": "X", "na\\u006de": "Y"}',
    b'{"email": "x@example.com", "name": "X", "extra": {"a": 1, "a": 2}}',
    b'{"email": "x@example.com", "name": NaN}',
    b'{"email": "x@example.com", "name": Infinity}',
    b'{"email": "x@example.com", "name": -Infinity}',
    b'\xef\xbb\xbf{"email": "x@example.com", "name": "X"}',
    '{"email": "x@example.com", "name": "X"}'.encode("utf-16"),
    b'{"email": "x@example.com", "name": "X"} {}',
]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("body", AMBIGUOUS_JSON)
def test_ambiguous_json_is_400_malformed_json_and_changes_nothing(
    api, before, ada, method, body, assert_problem
):
    response = send(api, method, ada, data=body, content_type="application/json")

    assert_problem(response, 400, "MALFORMED_JSON")
    assert everything(api) == before


# --- names and addresses that mislead ---------------------------------------------------------

BLANK_NAMES = [
    " ",
    "   ",
    "\u00a0",
    "\u2003\u2009",
    "\u3000",
    "\u200b",
    "\u200b\u200c\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u180e",
    "\u3164",
    "\u115f\u1160",
    "\uffa0",
    "\u2800",
    " \u200b \u3164 ",
]
BIDI_NAMES = [
    "\u202eevil",
    "Ada\u202e",
    "a\u202ab",
    "a\u202bb",
    "a\u202cb",
    "a\u202db",
    "a\u2066b\u2069",
    "a\u2067b",
    "a\u2068b",
    "\u200fAda",
    "Ada\u200e",
    "Ada\u061c",
]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize(
    ("name", "message"),
    [(n, "Must contain a visible character.") for n in BLANK_NAMES]
    + [(n, "Must not contain bidirectional formatting characters.") for n in BIDI_NAMES],
)
def test_a_blank_name_or_one_with_bidi_controls_is_422_and_changes_nothing(
    api, before, ada, method, name, message, assert_problem
):
    response = send(api, method, ada, json={**VALID, "name": name})

    assert assert_problem(response, 422, "VALIDATION_ERROR")["errors"] == {"name": [message]}
    assert everything(api) == before


UNDEFINED = (
    "Must not contain unassigned, private-use, noncharacter, tag or line or paragraph "
    "separator characters."
)
# The probe's names that showed as nothing or broke a line, each with its reason.
UNSHOWN_NAMES = {
    "\U000e0001": UNDEFINED,
    "Ada\U000e0041": UNDEFINED,
    "\ufe0f": "Must contain a visible character.",
    "\U000e0100": "Must contain a visible character.",
    "\u17b4": "Must contain a visible character.",
    "\U0001bca0": "Must contain a visible character.",
    "\ufffc": "Must contain a visible character.",
    "\uffff": UNDEFINED,
    "Ada\ufdd0": UNDEFINED,
    "\u0378": UNDEFINED,
    "Ada\u2028Lovelace": UNDEFINED,
    "Ada\u2029": UNDEFINED,
    "\u0301\u0301": "Must contain a visible character.",
}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("name", UNSHOWN_NAMES)
def test_a_name_that_shows_nothing_or_breaks_a_line_is_422_and_changes_nothing(
    api, before, ada, method, name, assert_problem
):
    response = send(api, method, ada, json={**VALID, "name": name})

    errors = assert_problem(response, 422, "VALIDATION_ERROR")["errors"]
    assert errors == {"name": [UNSHOWN_NAMES[name]]}
    assert everything(api) == before


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("field", ["email", "name"])
def test_a_900000_character_field_is_refused_by_its_length_alone(
    api, before, ada, method, field, assert_problem
):
    value = "a" * 900_000 + ("@example.com" if field == "email" else "")
    response = send(api, method, ada, json={**VALID, field: value})

    message = {
        "email": "Longer than maximum length 255.",
        "name": "Length must be between 1 and 255.",
    }
    errors = assert_problem(response, 422, "VALIDATION_ERROR")["errors"]
    assert errors == {field: [message[field]]}
    assert everything(api) == before


@pytest.mark.parametrize("name", ["Ada\u00a0Lovelace", " Ada ", "\u200bAda", "Ada\u0301"])
def test_a_name_with_visible_characters_among_invisible_ones_is_stored_verbatim(
    client, seeded, name, make_user
):
    created = make_user(client, "n@example.com", name)

    assert client.get(f"{USERS}/{created['id']}").get_json()["name"] == name


UNDELIVERABLE = [
    "a" * 65 + "@example.com",
    "a@localhost",
    "a@[127.0.0.1]",
    "a@127.0.0.10",
    "a@10.0.0.256",
    "a@[IPv6:::1]",
    "a@localhost.",
    "λ" * 65 + "@example.gr",
]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("email", UNDELIVERABLE)
def test_a_long_local_part_localhost_or_an_address_literal_is_422_and_changes_nothing(
    api, before, ada, method, email, assert_problem
):
    response = send(api, method, ada, json={**VALID, "email": email})

    assert list(assert_problem(response, 422, "VALIDATION_ERROR")["errors"]) == ["email"]
    assert everything(api) == before


@pytest.mark.parametrize(
    "email", ["λογος.x@example.gr", "bücher@bücher.de", "a" * 64 + "@example.com"]
)
def test_an_internationalized_or_64_character_local_part_is_stored_and_read_back(
    client, seeded, email, make_user
):
    created = make_user(client, email, "I")

    assert client.get(f"{USERS}/{created['id']}").get_json()["email"] == email


def test_the_spec_declares_internationalized_addresses(api):
    spec = api.get("/openapi.json").get_json()

    assert spec["components"]["schemas"]["User"]["properties"]["email"]["format"] == "idn-email"


# --- the size of a 422 -------------------------------------------------------------------------


def test_40000_unknown_fields_name_at_most_20_in_a_small_422(api, before, assert_problem):
    body = {**VALID, **{f"k{n}": 1 for n in range(40_000)}}

    response = api.post(USERS, json=body)

    errors = assert_problem(response, 422, "VALIDATION_ERROR")["errors"]
    assert len(errors) == 20
    assert len(response.get_data()) < 4096
    assert everything(api) == before


def test_a_900_kb_unknown_field_name_is_cut_to_64_characters(api, before, assert_problem):
    response = api.post(USERS, json={**VALID, "k" * 900_000: 1})

    errors = assert_problem(response, 422, "VALIDATION_ERROR")["errors"]
    assert errors == {"k" * 64: ["Unknown field."]}
    assert len(response.get_data()) < 1024
    assert everything(api) == before


# --- If-None-Match on writes -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    "headers",
    [
        {"If-None-Match": "*"},
        {"If-None-Match": '"v1"'},
        {"If-None-Match": 'W/"v1"'},
        {"If-None-Match": '"v7", "v1"'},
        {"If-None-Match": '"v1"', "If-Match": '"v1"'},
        {"If-None-Match": '"v7"', "If-Match": '"v7"'},
    ],
)
def test_if_none_match_naming_the_user_on_a_write_is_412_and_changes_nothing(
    api, before, ada, method, headers, assert_problem
):
    response = send(api, method, ada, json=VALID, headers=headers)

    problem = assert_problem(response, 412, "PRECONDITION_FAILED")
    stale = headers.get("If-Match") == '"v7"'
    assert ("changed" in problem["detail"]) == stale, problem["detail"]
    assert everything(api) == before


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_if_none_match_naming_another_version_lets_the_write_through(client, seeded, method):
    ada = seeded[1][0]

    response = send(client, method, ada, json=VALID, headers={"If-None-Match": '"v7"'})

    assert response.status_code == 200
    assert (response.get_json()["email"], response.headers["ETag"]) == (VALID["email"], '"v2"')


def test_if_none_match_on_a_missing_user_is_404(api, before, assert_problem):
    response = api.put(f"{USERS}/999", json=VALID, headers={"If-None-Match": "*"})

    assert_problem(response, 404, "USER_NOT_FOUND")
    assert everything(api) == before
