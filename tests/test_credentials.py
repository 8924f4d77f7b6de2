"""Logging in to Snowflake: exactly one method, the connector's real arguments, real RSA keys."""

from __future__ import annotations

import dataclasses
import json
import traceback
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from keys import new_key, pem
from snowflake.connector.auth import AuthByKeyPair
from snowflake.connector.connection import DEFAULT_CONFIGURATION

from userservice import create_app
from userservice.db import credentials
from userservice.db.connector import snowflake_connector
from userservice.settings import Settings, SettingsError

PASSPHRASE = "correct horse battery staple"
ACCOUNT = {"snowflake_account": "myorg-myacct", "snowflake_user": "USERSERVICE_SVC"}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


def der(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def connect_arguments(settings: Settings) -> dict[str, Any]:
    """The keyword arguments the service hands the connector's connect()."""
    calls: list[dict[str, Any]] = []
    snowflake_connector(settings, connector=lambda **kwargs: calls.append(kwargs))()
    (arguments,) = calls
    return arguments


def login_of(arguments: dict[str, Any]) -> dict[str, Any]:
    """The login part of the connector's arguments."""
    login_keys = {"authenticator", "password", "token", "private_key"}
    login_keys |= {"workload_identity_provider", "private_key_file", "private_key_file_pwd"}
    return {k: v for k, v in arguments.items() if k in login_keys}


def test_a_key_file_logs_in_with_the_decrypted_key(tmp_path, key):
    path = tmp_path / "rsa_key.p8"
    path.write_text(pem(key, PASSPHRASE))
    settings = Settings(
        **ACCOUNT,
        snowflake_private_key_file=str(path),
        snowflake_private_key_passphrase=PASSPHRASE,
    )

    login = login_of(connect_arguments(settings))

    assert set(login) == {"authenticator", "private_key"}
    assert login["authenticator"] == "SNOWFLAKE_JWT"
    assert isinstance(login["private_key"], rsa.RSAPrivateKey)
    assert der(login["private_key"]) == der(key)


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE], ids=["plain", "encrypted"])
def test_pem_text_logs_in_with_the_key(key, passphrase):
    settings = Settings(
        **ACCOUNT,
        snowflake_private_key=pem(key, passphrase),
        snowflake_private_key_passphrase=passphrase or "",
    )

    login = login_of(connect_arguments(settings))

    assert login["authenticator"] == "SNOWFLAKE_JWT"
    assert der(login["private_key"]) == der(key)


def test_pem_text_on_one_line_with_backslash_n_escapes_is_read(key):
    one_line = pem(key).replace("\n", "\\n")

    login = login_of(connect_arguments(Settings(**ACCOUNT, snowflake_private_key=one_line)))

    assert der(login["private_key"]) == der(key)


def test_the_connector_4_8_signs_its_login_jwt_with_the_key_object(key):
    private_key = credentials.load_private_key(Settings(snowflake_private_key=pem(key)))

    token = AuthByKeyPair(private_key=private_key).prepare(account="myorg-myacct", user="svc")

    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"])
    assert claims["sub"] == "MYORG-MYACCT.SVC"


@pytest.mark.parametrize(
    ("setting", "login"),
    [
        ("snowflake_oauth_token", {"authenticator": "OAUTH", "token": "the-value"}),
        (
            "snowflake_pat",
            {"authenticator": "PROGRAMMATIC_ACCESS_TOKEN", "token": "the-value"},
        ),
        ("snowflake_password", {"authenticator": "SNOWFLAKE", "password": "the-value"}),
    ],
)
def test_a_token_or_a_password_is_handed_to_its_authenticator(setting, login):
    arguments = connect_arguments(Settings(**ACCOUNT, **{setting: "the-value"}))

    assert login_of(arguments) == login


def test_workload_identity_on_aws_needs_no_secret_and_no_user():
    settings = Settings.from_env(
        {
            "ENVIRONMENT": "production",
            "AUTH_ISSUER": "https://issuer.example.com/",
            "AUTH_AUDIENCE": "userservice",
            "SNOWFLAKE_ACCOUNT": "myorg-myacct",
            "SNOWFLAKE_WAREHOUSE": "USERSERVICE_WH",
            "SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER": "aws",
        },
        env_file=None,
    )

    arguments = connect_arguments(settings)

    assert login_of(arguments) == {
        "authenticator": "WORKLOAD_IDENTITY",
        "workload_identity_provider": "AWS",
    }
    assert "user" not in arguments


def test_every_argument_is_one_the_connector_4_8_knows(key):
    settings = Settings(**ACCOUNT, snowflake_private_key=pem(key), snowflake_role="R")

    assert set(connect_arguments(settings)) <= set(DEFAULT_CONFIGURATION)


@pytest.mark.parametrize("method", ["password", "key pair", "pat", "oauth"])
def test_the_real_connector_logs_in_with_each_method_to_the_emulator_server(
    module_emulator_server, key, method
):
    # fakesnow's server accepts any credentials: this proves the connector 4.8.1 takes the
    # arguments as built and sends a login, not that Snowflake would accept them.
    logins = {
        "password": {"snowflake_password": "snow"},
        "key pair": {
            "snowflake_private_key": pem(key, PASSPHRASE),
            "snowflake_private_key_passphrase": PASSPHRASE,
        },
        "pat": {"snowflake_pat": "pat-value"},
        "oauth": {"snowflake_oauth_token": "oauth-value"},
    }
    settings = Settings(
        snowflake_account="fakesnow",
        snowflake_user="fake",
        snowflake_host="127.0.0.1",
        snowflake_port=module_emulator_server.port,
        snowflake_protocol="http",
        **logins[method],
    )

    conn = snowflake_connector(settings)()

    cursor = conn.cursor()
    cursor.execute("SELECT 1 AS ok")
    assert cursor.fetchall() == [(1,)]


def test_no_way_to_log_in_stops_the_start_naming_every_setting(tmp_path):
    settings = Settings(**ACCOUNT, emulator_data_dir=str(tmp_path))

    with pytest.raises(SettingsError) as caught:
        create_app(settings)

    assert str(caught.value) == (
        "no way to log in to Snowflake: set one of SNOWFLAKE_PRIVATE_KEY_FILE, "
        "SNOWFLAKE_PRIVATE_KEY, SNOWFLAKE_OAUTH_TOKEN, SNOWFLAKE_PAT, "
        "SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER, SNOWFLAKE_PASSWORD"
    )


@pytest.mark.parametrize(
    ("logins", "named"),
    [
        ({"snowflake_pat": "p", "snowflake_password": "w"}, "SNOWFLAKE_PAT, SNOWFLAKE_PASSWORD"),
        (
            {"snowflake_private_key_file": "k.p8", "snowflake_private_key": "-----BEGIN"},
            "SNOWFLAKE_PRIVATE_KEY_FILE, SNOWFLAKE_PRIVATE_KEY",
        ),
        (
            {"snowflake_workload_identity_provider": "AWS", "snowflake_oauth_token": "t"},
            "SNOWFLAKE_OAUTH_TOKEN, SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER",
        ),
    ],
)
def test_two_ways_to_log_in_stop_the_start_naming_both(tmp_path, logins, named):
    settings = Settings(**ACCOUNT, emulator_data_dir=str(tmp_path), **logins)

    with pytest.raises(SettingsError) as caught:
        create_app(settings)

    assert str(caught.value) == f"set only one way to log in to Snowflake, not {named}"
    assert "-----BEGIN" not in str(caught.value)


def test_a_passphrase_without_a_key_is_refused():
    settings = Settings(**ACCOUNT, snowflake_pat="p", snowflake_private_key_passphrase="x")

    with pytest.raises(SettingsError, match=r"^SNOWFLAKE_PRIVATE_KEY_PASSPHRASE is set, but no"):
        credentials.method(settings)


def test_a_wrong_passphrase_stops_the_start_without_showing_it(tmp_path, key):
    path = tmp_path / "rsa_key.p8"
    path.write_text(pem(key, PASSPHRASE))
    settings = Settings(
        **ACCOUNT,
        snowflake_private_key_file=str(path),
        snowflake_private_key_passphrase="wrong horse battery staple",
    )

    with pytest.raises(SettingsError) as caught:
        create_app(settings)

    message = str(caught.value)
    assert message == (
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE does not decrypt SNOWFLAKE_PRIVATE_KEY_FILE"
    )
    shown = "".join(traceback.format_exception(caught.value))
    assert "horse" not in shown
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


@pytest.mark.parametrize(
    ("key_passphrase", "given", "message"),
    [
        (
            PASSPHRASE,
            "",
            "SNOWFLAKE_PRIVATE_KEY is encrypted: set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
        ),
        (
            None,
            PASSPHRASE,
            "SNOWFLAKE_PRIVATE_KEY is not encrypted: unset SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
        ),
    ],
)
def test_a_passphrase_that_does_not_fit_the_key_is_named(key, key_passphrase, given, message):
    settings = Settings(
        **ACCOUNT,
        snowflake_private_key=pem(key, key_passphrase),
        snowflake_private_key_passphrase=given,
    )

    with pytest.raises(SettingsError) as caught:
        credentials.load_private_key(settings)

    assert str(caught.value) == message


def test_text_that_is_not_a_key_is_refused_without_being_quoted():
    settings = Settings(**ACCOUNT, snowflake_private_key="not-a-key-but-a-secret")

    with pytest.raises(SettingsError) as caught:
        credentials.load_private_key(settings)

    assert str(caught.value) == "SNOWFLAKE_PRIVATE_KEY is not a PEM PKCS#8 private key"


def test_a_missing_key_file_is_named(tmp_path):
    settings = Settings(**ACCOUNT, snowflake_private_key_file=str(tmp_path / "nope.p8"))

    with pytest.raises(SettingsError) as caught:
        credentials.load_private_key(settings)

    assert str(caught.value) == (
        "SNOWFLAKE_PRIVATE_KEY_FILE cannot be read (No such file or directory)"
    )


def test_an_ec_key_is_accepted_as_the_connector_4_8_signs_with_it():
    ec_key = ec.generate_private_key(ec.SECP256R1())

    loaded = credentials.load_private_key(Settings(snowflake_private_key=pem(ec_key)))

    assert der(loaded) == der(ec_key)


@pytest.mark.parametrize("missing", ["snowflake_account", "snowflake_user"])
def test_a_key_pair_login_needs_an_account_and_a_user(key, missing):
    settings = dataclasses.replace(
        Settings(**ACCOUNT, snowflake_private_key=pem(key)), **{missing: ""}
    )

    with pytest.raises(SettingsError, match=f"^{missing.upper()} is empty"):
        credentials.resolve(settings)


def test_a_password_in_production_warns_at_start_without_the_password(
    make_app, production_settings, capsys
):
    settings = dataclasses.replace(
        production_settings, **ACCOUNT, snowflake_pat="", snowflake_password="hunter2-secret"
    )

    make_app(settings)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert [w["logger"] for w in warnings] == ["userservice.db.credentials"]
    assert "SNOWFLAKE_PASSWORD" in warnings[0]["message"]
    assert "hunter2-secret" not in json.dumps(lines)


def test_a_password_in_development_does_not_warn(tmp_path, make_app, capsys):
    make_app(Settings(**ACCOUNT, snowflake_password="pw", emulator_data_dir=str(tmp_path)))

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The one warning is that tokens are off (no AUTH_ISSUER), not about the password.
    assert [(line["level"], line["logger"]) for line in lines if line["level"] != "INFO"] == [
        ("WARNING", "userservice.auth.setup")
    ]


SECRET_FIELDS = [
    "snowflake_password",
    "snowflake_private_key",
    "snowflake_private_key_passphrase",
    "snowflake_oauth_token",
    "snowflake_pat",
]


@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_no_secret_setting_appears_in_the_repr(field):
    settings = Settings(**{field: "s3cr3t-value"})

    assert "s3cr3t-value" not in repr(settings)
    assert f"{field}=" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER": "gcp"},
            "SNOWFLAKE_WORKLOAD_IDENTITY_PROVIDER must be AWS or empty",
        ),
        (
            {"SNOWFLAKE_SECRET_ARN": "my-secret"},
            "SNOWFLAKE_SECRET_ARN must be a secret's ARN "
            "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)",
        ),
    ],
)
def test_invalid_login_settings_name_the_setting(environ, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ, env_file=None)

    assert str(caught.value) == message
