"""Swagger UI, ReDoc and the OpenAPI spec, served from local assets."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from conftest import fresh_database
from openapi_spec_validator import validate

EVERY_RESPONSE = {"X-Request-ID", "X-Process-Time", "Server-Timing"}
PROBLEM_JSON = "application/problem+json"
USERS = "/api/v1/users"


@pytest.fixture
def app(module_app):
    """The module's one app, on a fresh database for each test."""
    return fresh_database(module_app)


def test_the_spec_documents_every_operation_and_its_problem_responses(shared_client):
    spec = shared_client.get("/openapi.json").get_json()

    operations = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert operations == {
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{user_id}", "get"),
        ("/api/v1/users/{user_id}", "put"),
        ("/api/v1/users/{user_id}", "patch"),
        ("/api/v1/users/{user_id}", "delete"),
        ("/health", "get"),
        ("/health/ready", "get"),
    }
    put = spec["paths"]["/api/v1/users/{user_id}"]["put"]["responses"]
    assert set(put) == {"200", "400", "404", "409", "412", "413", "415", "422", "503", "default"}
    not_found = spec["components"]["responses"]["NOT_FOUND"]
    assert list(not_found["content"]) == ["application/problem+json"]
    post = spec["paths"]["/api/v1/users"]["post"]["responses"]["201"]
    assert set(post["headers"]) == {"ETag", "Location", "Idempotent-Replayed", *EVERY_RESPONSE}
    assert set(post["links"]) == {"GetUser", "ReplaceUser", "UpdateUser", "DeleteUser"}


def test_every_documented_response_has_the_request_id_and_timing_headers(shared_client):
    spec = shared_client.get("/openapi.json").get_json()

    def resolve(response):
        name = response.get("$ref", "").rpartition("/")[2]
        return spec["components"]["responses"][name] if name else response

    documented = {
        (path, method, status): set(resolve(response).get("headers", {}))
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
        for status, response in operation["responses"].items()
    }
    assert {key: names for key, names in documented.items() if not names >= EVERY_RESPONSE} == {}
    assert "Retry-After" in documented[("/health/ready", "get", "503")]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_their_assets_from_this_server(shared_client, page):
    html = shared_client.get(page).get_data(as_text=True)

    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    for source in sources:
        assert not source.startswith(("http:", "https:", "//"))
        asset = shared_client.get("/" + source)
        assert asset.status_code == 200, source
        assert len(asset.data) > 1000
        asset.close()


def test_docs_are_off_in_production(make_app, production_settings):
    app = make_app(production_settings)
    client = app.test_client()

    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404


def test_request_bodies_ask_only_for_what_a_client_sends(shared_client):
    spec = shared_client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]

    def body(method, path=f"{USERS}/{{user_id}}"):
        return spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    assert body("post", USERS) == body("put") == {"$ref": "#/components/schemas/UserInput"}
    assert body("patch") == {"$ref": "#/components/schemas/UserPatch"}
    create = schemas["UserInput"]
    assert (set(create["properties"]), set(create["required"])) == (
        {"email", "name"},
        {"email", "name"},
    )
    patch = schemas["UserPatch"]
    assert (set(patch["properties"]), "required" in patch, patch["minProperties"]) == (
        {"email", "name"},
        False,
        1,
    )
    user = schemas["User"]
    assert set(user["required"]) == {"id", "email", "name", "created_at", "updated_at"}
    read_only = {name for name, field in user["properties"].items() if field.get("readOnly")}
    assert read_only == {"id", "created_at", "updated_at"}


def test_every_operation_has_the_operation_id_a_generated_client_names_it_by(shared_client):
    spec = shared_client.get("/openapi.json").get_json()

    operation_ids = {
        (path, method): operation.get("operationId")
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }
    assert operation_ids == {
        ("/api/v1/users", "get"): "listUsers",
        ("/api/v1/users", "post"): "createUser",
        ("/api/v1/users/{user_id}", "get"): "getUser",
        ("/api/v1/users/{user_id}", "put"): "replaceUser",
        ("/api/v1/users/{user_id}", "patch"): "updateUser",
        ("/api/v1/users/{user_id}", "delete"): "deleteUser",
        ("/health", "get"): "getHealth",
        ("/health/ready", "get"): "getReadiness",
    }


def test_the_spec_is_valid_openapi(shared_client):
    validate(shared_client.get("/openapi.json").get_json())


def test_every_problem_example_carries_its_own_status_title_and_code(shared_client):
    responses = shared_client.get("/openapi.json").get_json()["components"]["responses"]

    seen = set()
    for name, response in responses.items():
        status = HTTPStatus.INTERNAL_SERVER_ERROR if name == "DEFAULT_ERROR" else HTTPStatus[name]
        examples = response["content"][PROBLEM_JSON]["examples"]
        assert examples, name
        for code, example in examples.items():
            value = example["value"]
            assert (value["status"], value["title"], value["code"]) == (status, status.phrase, code)
            seen.add((status.value, code))
    assert {
        (404, "USER_NOT_FOUND"),
        (409, "EMAIL_TAKEN"),
        (412, "PRECONDITION_FAILED"),
        (422, "VALIDATION_ERROR"),
        (500, "INTERNAL_ERROR"),
        (503, "DATABASE_UNAVAILABLE"),
    } <= seen


def _answers(client, user):
    """Return requests that draw each documented problem, keyed by status."""
    one = f"{USERS}/{user['id']}"
    return {
        400: lambda: client.post(USERS, data="{", content_type="application/json"),
        404: lambda: client.get(f"{USERS}/999"),
        409: lambda: client.post(USERS, json={"email": user["email"], "name": "Twin"}),
        412: lambda: client.delete(one, headers={"If-Match": '"v999"'}),
        413: lambda: client.post(USERS, data="x" * (2 << 20), content_type="application/json"),
        415: lambda: client.post(USERS, data="x", content_type="text/plain"),
        422: lambda: client.post(USERS, json={"email": "not an email", "name": "Ada"}),
    }


@pytest.mark.parametrize("status", [400, 404, 409, 412, 413, 415, 422])
def test_the_problem_example_is_what_the_service_answers(client, status, make_user):
    answer = _answers(client, make_user(client))[status]()
    name = HTTPStatus(status).name
    component = client.get("/openapi.json").get_json()["components"]["responses"][name]

    body = answer.get_json()
    example = component["content"][PROBLEM_JSON]["examples"][body["code"]]["value"]
    assert (answer.status_code, answer.mimetype) == (status, PROBLEM_JSON)
    unlike = {"instance", "request_id"}
    assert {k: v for k, v in body.items() if k not in unlike} == {
        k: v for k, v in example.items() if k not in unlike
    }
