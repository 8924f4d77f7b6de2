"""A client generated from the served spec works: openapi-python-client against gunicorn.

The generator reads /openapi.json over HTTP from the service under gunicorn (on the
emulator) and writes a package to the test's temporary folder; the test imports it and
walks a user's life through it over real HTTP, as a client's developer would.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from bench.servers import BIN, emulator_env, gunicorn

pytestmark = pytest.mark.slow

PACKAGE = "userservice_client"
# No post-generation hooks (the default runs ruff on the output): the test needs none.
CONFIG = {"project_name_override": PACKAGE, "package_name_override": PACKAGE, "post_hooks": []}
OPERATIONS = {
    "users": {
        "list_users",
        "create_user",
        "get_user",
        "replace_user",
        "update_user",
        "delete_user",
    },
    "health": {"get_health", "get_readiness"},
}


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[str]:
    """The service under gunicorn on a fresh emulator database; yields its base URL."""
    folder = tmp_path_factory.mktemp("gunicorn")
    with gunicorn(emulator_env(folder / "emulator"), folder / "gunicorn.log") as server:
        yield server.url("")


@pytest.fixture(scope="module")
def generated(service, tmp_path_factory) -> Iterator[ModuleType]:
    """Generate the client from the served spec into a temporary folder and import it."""
    folder = tmp_path_factory.mktemp("generated")
    config = folder / "generator.json"
    config.write_text(json.dumps(CONFIG))
    command = [
        str(BIN / "openapi-python-client"),
        "generate",
        f"--url={service}/openapi.json",
        f"--config={config}",
        "--meta=none",
        f"--output-path={folder / PACKAGE}",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert (run.returncode, "Warning" in run.stdout + run.stderr) == (0, False), run.stdout
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield importlib.import_module(PACKAGE)
    for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
        del sys.modules[name]


def connect(package: ModuleType, base_url: str, token: str | None = None) -> object:
    """Make the generated client; with a token, the one that sends it as a bearer token."""
    if token is None:
        return package.Client(base_url=base_url, raise_on_unexpected_status=True)
    return package.AuthenticatedClient(
        base_url=base_url, token=token, raise_on_unexpected_status=True
    )


def operation(tag: str, name: str) -> ModuleType:
    """Import one generated operation module, named after its operationId."""
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")


def test_the_generated_package_has_one_module_per_operation_id(generated):
    for tag, names in OPERATIONS.items():
        for name in names:
            assert callable(operation(tag, name).sync_detailed), name


def test_a_generated_client_creates_reads_updates_lists_and_deletes_a_user(generated, service):
    models = importlib.import_module(f"{PACKAGE}.models")
    users = {name: operation("users", name) for name in OPERATIONS["users"]}
    client = connect(generated, service)

    created = users["create_user"].sync_detailed(
        client=client, body=models.UserInput(email="Ada@Example.com", name="Ada")
    )
    assert created.status_code == 201
    user = created.parsed
    assert (user.email, user.name) == ("Ada@Example.com", "Ada")
    assert created.headers["Location"].endswith(f"/api/v1/users/{user.id}")

    got = users["get_user"].sync_detailed(user.id, client=client)
    assert (got.status_code, got.parsed, got.headers["ETag"]) == (
        200,
        user,
        created.headers["ETag"],
    )
    first_etag = got.headers["ETag"]

    patched = users["update_user"].sync_detailed(
        user.id, client=client, body=models.UserPatch(name="Ada Lovelace"), if_match=first_etag
    )
    assert (patched.status_code, patched.parsed.name, patched.parsed.email) == (
        200,
        "Ada Lovelace",
        "Ada@Example.com",
    )
    assert patched.headers["ETag"] != first_etag

    listed = users["list_users"].sync_detailed(client=client, email="ada@example.COM")
    assert (listed.status_code, listed.parsed) == (200, [patched.parsed])
    assert json.loads(listed.headers["X-Pagination"])["total"] == 1

    stale = users["delete_user"].sync_detailed(user.id, client=client, if_match=first_etag)
    assert (stale.status_code, stale.parsed.status, stale.parsed.code) == (
        412,
        412,
        "PRECONDITION_FAILED",
    )
    assert users["get_user"].sync_detailed(user.id, client=client).parsed == patched.parsed

    deleted = users["delete_user"].sync_detailed(
        user.id, client=client, if_match=patched.headers["ETag"]
    )
    assert deleted.status_code == 204
    gone = users["get_user"].sync_detailed(user.id, client=client)
    assert (gone.status_code, gone.parsed.code) == (404, "USER_NOT_FOUND")


def test_a_generated_client_sends_an_idempotency_key_and_gets_the_first_answer_back(
    generated, service
):
    models = importlib.import_module(f"{PACKAGE}.models")
    create = operation("users", "create_user")
    client = connect(generated, service)
    body = models.UserInput(email="grace@example.com", name="Grace")

    first = create.sync_detailed(client=client, body=body, idempotency_key='"create-grace"')
    again = create.sync_detailed(client=client, body=body, idempotency_key='"create-grace"')

    assert (first.status_code, "Idempotent-Replayed" in first.headers) == (201, False)
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed == first.parsed
