"""Setting tokens up: the settings' rules, the development issuer and its token, the spec."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import subprocess
from pathlib import Path

import click
import jwt
import pytest
from click.testing import CliRunner
from flask.cli import FlaskGroup, ScriptInfo, run_command
from issuer import CHALLENGE, ROUTES, bearer

from bench.servers import BIN, ROOT, call, emulator_env, free_port, gunicorn
from userservice import create_app, db
from userservice.settings import Settings, SettingsError

SNOWFLAKE = {
    "SNOWFLAKE_ACCOUNT": "org-acct",
    "SNOWFLAKE_USER": "svc",
    "SNOWFLAKE_WAREHOUSE": "wh",
}


@pytest.mark.parametrize("environment", ["staging", "production"])
@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, "AUTH_ISSUER, AUTH_AUDIENCE"),
        ({"AUTH_ISSUER": "https://id.example.com/"}, "AUTH_AUDIENCE"),
        ({"AUTH_AUDIENCE": "userservice"}, "AUTH_ISSUER"),
    ],
)
def test_staging_and_production_refuse_to_start_without_issuer_and_audience(
    environment, given, missing
):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ENVIRONMENT": environment, **SNOWFLAKE, **given}, env_file=None)

    assert str(caught.value) == (
        f"ENVIRONMENT={environment} needs bearer-token settings; missing: {missing}"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"ENVIRONMENT": "production", **SNOWFLAKE, "AUTH_ISSUER": "dev"},
            "AUTH_ISSUER=dev is for development only",
        ),
        (
            {"AUTH_ALGORITHMS": "RS256,HS256"},
            "AUTH_ALGORITHMS must list some of RS256, RS384, RS512, PS256, PS384, PS512, "
            "ES256, ES384, ES512, EdDSA",
        ),
        (
            {"AUTH_ALGORITHMS": "none"},
            "AUTH_ALGORITHMS must list some of RS256, RS384, RS512, PS256, PS384, PS512, "
            "ES256, ES384, ES512, EdDSA",
        ),
        (
            {"AUTH_ISSUER": "id.example.com", "AUTH_AUDIENCE": "a"},
            "AUTH_ISSUER must be an http(s) URL, got 'id.example.com'",
        ),
        (
            {"AUTH_ISSUER": "https://id.example.com/"},
            "ENVIRONMENT=development needs bearer-token settings; missing: AUTH_AUDIENCE",
        ),
        ({"AUTH_READ_SCOPE": "users read"}, "AUTH_READ_SCOPE must be one scope name"),
        ({"AUTH_JWKS_COOLDOWN": "0"}, "AUTH_JWKS_COOLDOWN must be at least 0.1"),
    ],
)
def test_token_settings_are_validated_with_a_message_that_names_them(environ, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ, env_file=None)

    assert str(caught.value).startswith(message)


def test_development_without_an_issuer_serves_open_and_says_so_first(tmp_path, make_app, capsys):
    app = make_app(Settings(emulator_data_dir=str(tmp_path), log_level="INFO"))

    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (first["level"], first["logger"]) == ("WARNING", "userservice.auth.setup")
    assert first["message"].startswith("authentication is off: AUTH_ISSUER is empty")
    assert app.test_client().get("/api/v1/users").status_code == 200
    assert "securitySchemes" not in app.test_client().get("/openapi.json").get_json()["components"]


OPEN = "authentication is off"


def test_a_flask_command_builds_the_open_app_without_the_warning_and_flask_run_with_it(
    tmp_path, make_app, capsys
):
    settings = Settings(emulator_data_dir=str(tmp_path / "cli"), log_level="INFO")
    # What `flask --app userservice init-db` runs: flask's group builds the app for the command.
    group = FlaskGroup(create_app=lambda: make_app(settings))

    result = CliRunner().invoke(group, ["init-db"])

    assert (result.exit_code, result.output.splitlines()[-1]) == (
        0,
        "Created the users and idempotency_keys tables (standard, unless they existed) "
        "and the sequence.",
    )
    assert '"logger":"userservice.db.database"' in result.output  # its logs are in the output
    assert OPEN not in result.output + capsys.readouterr().out
    # `flask run` serves the app it builds: that one warns (and logs to stdout again).
    with click.Context(run_command, obj=ScriptInfo()):
        make_app(dataclasses.replace(settings, emulator_data_dir=str(tmp_path / "run")))
    assert capsys.readouterr().out.count(OPEN) == 1


def dev_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "development",
        "SNOWFLAKE_ACCOUNT": "",
        "EMULATOR_DATA_DIR": str(data_dir),
        "AUTH_ISSUER": "dev",
        "LOG_LEVEL": "WARNING",
        # The token command asks the service on PORT whether it trusts the token: a port
        # nothing listens on, so another server on this machine cannot answer.
        "PORT": str(free_port()),
        **extra,
    }


def run_in_repo(argv: list[str], data_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository as a newcomer does, with this emulator folder."""
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=dev_env(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def make_token(data_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `make -s token` as a newcomer does, with this emulator folder."""
    return run_in_repo(["make", "-s", "token"], data_dir, MAKEFLAGS="", **extra)


def test_flask_dev_token_prints_a_token_the_dev_issuer_trusts(tmp_path, make_app):
    command = ["dev-token", "--scope", "users:read", "--expires-in", "120"]
    run = run_in_repo([str(BIN / "flask"), "--app", "userservice", *command], tmp_path)
    token = run.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["scope"]) == ("dev", "userservice", "users:read")
    assert claims["exp"] - claims["iat"] == 120
    assert (tmp_path / "dev-token-key.pem").stat().st_mode & 0o777 == 0o600

    app = make_app(Settings(emulator_data_dir=str(tmp_path), auth_issuer="dev"))
    client = app.test_client()
    assert client.get("/api/v1/users", headers=bearer(token)).status_code == 200
    assert client.delete("/api/v1/users/1", headers=bearer(token)).status_code == 403
    assert client.get("/api/v1/users").headers["WWW-Authenticate"] == CHALLENGE


def test_make_token_works_while_the_service_holds_the_emulator(tmp_path, make_app):
    app = make_app(Settings(emulator_data_dir=str(tmp_path), auth_issuer="dev"))

    token = make_token(tmp_path).stdout.strip()
    statuses = [
        app.test_client().open(p, method=m, json=b, headers=bearer(token)).status_code
        for m, p, b in ROUTES
    ]
    assert statuses == [200, 201, 200, 200, 200, 204]


def test_the_dev_issuer_trusts_exactly_its_own_key(tmp_path, make_app):
    from userservice.auth import devkey

    elsewhere = Settings(emulator_data_dir=str(tmp_path / "elsewhere"), auth_issuer="dev")
    stranger = devkey.mint(elsewhere, ["users:read"], 60)
    app = make_app(Settings(emulator_data_dir=str(tmp_path / "here"), auth_issuer="dev"))

    response = app.test_client().get("/api/v1/users", headers=bearer(stranger))

    assert (response.status_code, response.get_json()["detail"]) == (
        401,
        "The token's key (kid) is not in the issuer's key set.",
    )


def test_the_spec_declares_the_bearer_scheme_and_each_operations_scope(tmp_path):
    app = create_app(Settings(emulator_data_dir=str(tmp_path), auth_issuer="dev"))
    try:
        spec = app.test_client().get("/openapi.json").get_json()
    finally:
        db.get_from(app).close()

    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT from the issuer; `users:read` to read, `users:write` to write.",
        }
    }
    assert "security" not in spec
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            if path.startswith("/health"):
                assert "security" not in operation
                assert not {"401", "403"} & set(operation["responses"])
                continue
            scope = "users:read" if method == "get" else "users:write"
            assert operation["security"] == [{"bearerAuth": [scope]}], (method, path)
            assert {
                status: operation["responses"][status]["$ref"] for status in ("401", "403", "503")
            } == {
                "401": "#/components/responses/TOKEN_REFUSED",
                "403": "#/components/responses/SCOPE_MISSING",
                "503": "#/components/responses/UNAVAILABLE",
            }
    assert "AUTH_UNAVAILABLE" in spec["components"]["responses"]["UNAVAILABLE"]["description"]
    assert spec["components"]["responses"]["UNAVAILABLE"]["headers"]["Retry-After"] == {
        "$ref": "#/components/headers/RETRY_AFTER"
    }


@pytest.mark.slow
def test_make_token_warns_and_keeps_no_key_when_the_server_trusts_another(tmp_path):
    served, other, port = tmp_path / "served", tmp_path / "other", free_port()
    kept = tmp_path / "kept"
    # Nothing serves on that port yet: the key is made, and kept.
    assert make_token(kept, PORT=str(free_port())).returncode == 0
    refused = "The token's key (kid) is not in the issuer's key set."

    env = emulator_env(served, AUTH_ISSUER="dev")
    with gunicorn(env, tmp_path / "gunicorn.log", port=port):
        assert call(port, "GET", "/health")[0] == 200
        mismatched = make_token(other, PORT=str(port))
        old_key = make_token(kept, PORT=str(port))
        matched = make_token(served, PORT=str(port))
        statuses = [read_user_zero(port, run.stdout.strip()) for run in (mismatched, matched)]

    # The warning names a key file only where one is: a key made for the token is removed.
    assert mismatched.stderr == (
        f"warning: the service on port {port} refuses this token ({refused}): it is signed "
        f"with a key made for it at {other}/dev-token-key.pem, removed again; run make token "
        "with the server's EMULATOR_DATA_DIR\n"
    )
    assert old_key.stderr == (
        f"warning: the service on port {port} refuses this token ({refused}): it is signed "
        f"with {kept}/dev-token-key.pem; run make token with the server's EMULATOR_DATA_DIR\n"
    )
    assert (kept / "dev-token-key.pem").is_file()
    assert not other.exists()
    assert matched.stderr == ""
    assert statuses == [401, 404]


def read_user_zero(port: int, token: str) -> int:
    """Return the status of GET /api/v1/users/0 with this token, over HTTP."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/v1/users/0", headers=bearer(token))
        return conn.getresponse().status
    finally:
        conn.close()
