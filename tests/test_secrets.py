"""The Snowflake secret in AWS Secrets Manager (moto's, in-process): read once, again on refusal.

Snowflake itself is not needed to refuse a login: the connect function takes the connector's
`connect` as an argument, and the stand-in raises the connector's own DatabaseError with the
errno and SQLSTATE its login code raises for a refused JWT (390144, 28000). fakesnow's server
would not do: it accepts any credentials.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from keys import new_key, pem
from moto import mock_aws
from snowflake.connector.errors import DatabaseError

from userservice import db
from userservice.db import emulator, queries
from userservice.db.connector import snowflake_connector
from userservice.db.credentials import Credentials
from userservice.db.secrets_manager import SecretError, fetch_secret
from userservice.logs import JsonFormatter
from userservice.settings import Settings

# Secrets Manager (moto) and real logins to the emulator server: seconds per test.
pytestmark = pytest.mark.slow

REGION = "eu-west-2"
PASSPHRASE = "rotating passphrase 7"


def fresh_pem(passphrase: str | None = None) -> str:
    """A new RSA key as PKCS#8 PEM, encrypted when a passphrase is given."""
    return pem(new_key(), passphrase)


def refused() -> DatabaseError:
    """The error the connector 4.8.1 raises when Snowflake refuses a key-pair login."""
    return DatabaseError(
        msg="Failed to connect to DB: myorg-myacct.snowflakecomputing.com:443. "
        "JWT token is invalid. [7d1c0a2e-8f1b-4a4f-9d3e-1f6a5b2c3d4e]",
        errno=390144,
        sqlstate="28000",
    )


@pytest.fixture
def secrets(monkeypatch) -> Iterator[Any]:
    """Secrets Manager in moto, with fake AWS credentials and a default region elsewhere."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def create_secret(client: Any, values: dict[str, str]) -> str:
    return str(
        client.create_secret(Name="userservice/snowflake", SecretString=json.dumps(values))["ARN"]
    )


def secret_settings(arn: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        snowflake_secret_arn=arn,
        snowflake_warehouse="USERSERVICE_WH",
        emulator_data_dir=str(tmp_path / "emulator"),
        log_level="DEBUG",
        **overrides,
    )


class Counting:
    """fetch_secret, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, arn: str) -> str:
        self.calls += 1
        return fetch_secret(arn)


class Snowflake:
    """A stand-in for snowflake.connector.connect: refuses the keys it is told to refuse."""

    def __init__(self, data_dir: Path, refuse: set[str] | None = None) -> None:
        self.emulator = emulator.Emulator(data_dir, database="USERSERVICE", schema="PUBLIC")
        self.refuse = refuse
        self.logins: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.logins.append(kwargs)
        login = (
            plain_pem(kwargs.get("private_key")) or kwargs.get("password") or kwargs.get("token")
        )
        if self.refuse is None or login in self.refuse:
            raise refused()
        return self.emulator.connect()


def plain_pem(key: Any) -> str | None:
    """A key object as unencrypted PKCS#8 PEM, to compare with the PEM a secret held."""
    if key is None:
        return None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def snowflake(tmp_path) -> Iterator[Any]:
    made: list[Snowflake] = []

    def make(refuse: set[str] | None = None) -> Snowflake:
        made.append(Snowflake(tmp_path / "emulator", refuse))
        return made[-1]

    yield make
    for fake in made:
        fake.emulator.close()


def test_nothing_reads_the_secret_before_the_first_connect(secrets, tmp_path, make_app):
    arn = create_secret(secrets, {"account": "myorg-myacct", "user": "svc", "pat": "p"})
    fetch = Counting()
    settings = secret_settings(arn, tmp_path)
    connect = snowflake_connector(settings, credentials=Credentials(settings, fetch=fetch))

    make_app(settings, connect=connect).test_client().get("/health")

    assert fetch.calls == 0


def test_importing_the_service_imports_neither_boto3_nor_the_connector():
    code = (
        "import sys, userservice, userservice.db; "
        "print(sorted({'boto3', 'snowflake.connector', 'cryptography'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[1]

    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )

    assert imported.stdout.strip() == "[]"


def test_the_secret_is_read_once_per_process_and_fills_the_connection(secrets, tmp_path, snowflake):
    key = fresh_pem(PASSPHRASE)
    arn = create_secret(
        secrets,
        {
            "account": "myorg-myacct",
            "user": "svc",
            "private_key": key,
            "private_key_passphrase": PASSPHRASE,
        },
    )
    fake = snowflake(refuse=set())
    fetch = Counting()
    settings = secret_settings(arn, tmp_path)
    connect = snowflake_connector(
        settings, credentials=Credentials(settings, fetch=fetch), connector=fake
    )

    connect().close()
    connect().close()

    assert fetch.calls == 1
    first, second = fake.logins
    assert (first["account"], first["user"], first["warehouse"]) == (
        "myorg-myacct",
        "svc",
        "USERSERVICE_WH",
    )
    assert first["authenticator"] == "SNOWFLAKE_JWT"
    assert plain_pem(first["private_key"]) == plain_pem(
        serialization.load_pem_private_key(key.encode(), PASSPHRASE.encode())
    )
    assert second["private_key"] is first["private_key"]


def test_the_region_comes_from_the_arn_not_the_environment(secrets, monkeypatch):
    arn = create_secret(secrets, {"pat": "p"})
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")

    assert json.loads(fetch_secret(arn)) == {"pat": "p"}


def test_a_refused_login_reads_the_rotated_secret_and_logs_in_with_the_new_key(
    secrets, tmp_path, snowflake, make_app
):
    old, new = fresh_pem(), fresh_pem()
    arn = create_secret(secrets, {"account": "myorg-myacct", "user": "svc", "private_key": old})
    fake = snowflake(refuse={old})
    fetch = Counting()
    settings = secret_settings(arn, tmp_path)
    creds = Credentials(settings, fetch=fetch, refresh_every=0)
    creds.current()  # the process read the secret before the key was rotated
    secrets.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps({"account": "myorg-myacct", "user": "svc", "private_key": new}),
    )
    app = make_app(
        settings, connect=snowflake_connector(settings, credentials=creds, connector=fake)
    )
    with app.app_context():  # the table, made on the emulator without logging in
        for name in db.SCHEMA:
            queries.run(fake.emulator.connect(), name)

    response = app.test_client().get("/api/v1/users")

    assert response.status_code == 200
    assert [plain_pem(login["private_key"]) for login in fake.logins] == [old, new]
    assert fetch.calls == 2


@pytest.mark.parametrize(
    ("refresh_every", "attempts", "logins_and_reads"),
    [
        pytest.param(0, 1, (1, 2), id="a refusal with an unchanged secret is not retried"),
        pytest.param(60, 3, (3, 1), id="refusals read the secret again at most every interval"),
    ],
)
def test_a_refused_login_reads_the_secret_again_and_retries_only_a_changed_one(
    secrets, tmp_path, snowflake, refresh_every, attempts, logins_and_reads
):
    arn = create_secret(secrets, {"account": "a", "user": "u", "password": "pw"})
    fake = snowflake()
    fetch = Counting()
    settings = secret_settings(arn, tmp_path)
    credentials = Credentials(settings, fetch=fetch, refresh_every=refresh_every)
    connect = snowflake_connector(settings, credentials=credentials, connector=fake)

    for _ in range(attempts):
        with pytest.raises(DatabaseError):
            connect()

    assert (len(fake.logins), fetch.calls) == logins_and_reads


LEAKS = {
    "key pair": {"private_key": fresh_pem(PASSPHRASE), "private_key_passphrase": PASSPHRASE},
    "password": {"password": "hunter2-Tr0ub4dor&3"},
    "pat": {"pat": "pat-Zm9vYmFyYmF6cXV4"},
    "oauth": {"oauth_token": "ver:1-hint:123-ETMsDgAAAYoauthTOKEN"},
}


def secret_fragments(values: dict[str, str]) -> list[str]:
    """Every secret value, and every base64 line of a PEM, as it could appear in a log."""
    fragments = []
    for value in values.values():
        fragments.append(value)
        fragments += [line for line in value.splitlines() if line and not line.startswith("-----")]
    return fragments


@pytest.fixture
def every_log(caplog) -> Iterator[Any]:
    """Every record written during the test at DEBUG: the service's (which does not propagate
    to caplog's root handler) and every library's."""
    caplog.set_level(logging.DEBUG)
    service = logging.getLogger("userservice")
    service.addHandler(caplog.handler)
    yield caplog
    service.removeHandler(caplog.handler)


@pytest.mark.parametrize("method", list(LEAKS))
def test_a_refused_login_leaks_no_secret_value_to_logs_or_the_response(
    secrets, tmp_path, snowflake, make_app, capsys, every_log, method
):
    arn = create_secret(secrets, {"account": "myorg-myacct", "user": "svc", **LEAKS[method]})
    settings = secret_settings(arn, tmp_path)
    creds = Credentials(settings, refresh_every=0)
    connect = snowflake_connector(settings, credentials=creds, connector=snowflake())
    app = make_app(settings, connect=connect)
    every_log.clear()  # botocore logged the test's own CreateSecret call, secret and all

    response = app.test_client().get("/api/v1/users/1", headers={"X-Request-ID": "leak-check"})
    time.sleep(0.3)  # the pool's filler retries (and logs) in the background as well

    assert response.status_code == 503
    assert response.get_json()["code"] == "DATABASE_UNAVAILABLE"
    stdout = capsys.readouterr().out
    assert '"request_id":"leak-check"' in stdout  # the service's JSON lines were captured
    assert "last connect: DatabaseError 390144 (28000)" in stdout  # codes, not values
    assert any(
        r.name == "botocore.endpoint" for r in every_log.records
    )  # and botocore's DEBUG ones
    seen = "\n".join(
        [stdout, response.get_data(as_text=True), str(response.headers)]
        + [repr(creds), repr(creds.current()[0])]
        + [JsonFormatter().format(record) for record in every_log.records]
    )
    for fragment in secret_fragments(LEAKS[method]):
        assert fragment not in seen


def test_a_secret_that_cannot_be_read_is_503_and_logged_by_its_code(
    secrets, tmp_path, make_app, capsys
):
    arn = create_secret(secrets, {"pat": "p"}).replace(
        "userservice/snowflake", "userservice/missing"
    )
    settings = secret_settings(arn, tmp_path)
    app = make_app(settings, connect=snowflake_connector(settings, connector=lambda **kw: None))

    response = app.test_client().get("/api/v1/users/1")

    assert response.status_code == 503
    assert "ResourceNotFoundException" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "the secret is not a JSON object"),
        (
            json.dumps({"account": "a", "privateKey": "k"}),
            "the secret holds unknown keys ['privateKey']",
        ),
        (json.dumps({"account": "a", "pat": 7}), "the secret's values must be strings: ['pat']"),
        (
            json.dumps(
                {
                    "account": "a",
                    "user": "u",
                    "private_key": fresh_pem(PASSPHRASE),
                    "private_key_passphrase": "wrong-pass",
                }
            ),
            "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE does not decrypt SNOWFLAKE_PRIVATE_KEY",
        ),
        (
            json.dumps({"account": "a", "pat": "p", "password": "pw"}),
            "set only one way to log in to Snowflake, not SNOWFLAKE_PAT, SNOWFLAKE_PASSWORD",
        ),
        (json.dumps({"user": "u", "pat": "p"}), "SNOWFLAKE_ACCOUNT is empty"),
    ],
)
def test_a_secret_that_cannot_log_in_says_why_without_its_values(
    secrets, tmp_path, secret, message
):
    arn = str(secrets.create_secret(Name="bad", SecretString=secret)["ARN"])
    creds = Credentials(secret_settings(arn, tmp_path))

    with pytest.raises(SecretError) as caught:
        creds.current()

    assert message in str(caught.value)
    assert "wrong-pass" not in str(caught.value)
