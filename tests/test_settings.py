"""Settings: read once from the environment and .env, validated with named errors."""

from __future__ import annotations

import dataclasses

import pytest

from userservice.settings import Settings, SettingsError


def test_defaults_are_development_on_the_emulator():
    settings = Settings.from_env({}, env_file=None)

    assert settings.environment == "development"
    assert settings.use_emulator is True
    assert settings.docs_enabled is True
    assert (settings.db_pool_min_connections, settings.db_pool_max_connections) == (1, 8)


def test_the_environment_overrides_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9000\nDB_POOL_MAX_CONNECTIONS=3\n")

    settings = Settings.from_env({"PORT": "9100"}, env_file=env_file)

    assert (settings.port, settings.db_pool_max_connections) == (9100, 3)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be an integer, got 'eighty'"),
        ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT must be at least 0.01"),
        ({"DB_POOL_MAX_CONNECTIONS": "0"}, "DB_POOL_MAX_CONNECTIONS must be at least 1"),
        ({"ENVIRONMENT": "prod"}, "ENVIRONMENT must be one of development, staging, production"),
        ({"SNOWFLAKE_PROTOCOL": "ftp"}, "SNOWFLAKE_PROTOCOL must be one of https, http"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (
            {"DB_POOL_MIN_CONNECTIONS": "5", "DB_POOL_MAX_CONNECTIONS": "2"},
            "DB_POOL_MIN_CONNECTIONS must not exceed DB_POOL_MAX_CONNECTIONS",
        ),
    ],
)
def test_an_invalid_value_names_the_setting(environ, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ, env_file=None)

    assert str(caught.value) == message


NUMBERS = [f for f in dataclasses.fields(Settings) if type(f.default) in (int, float)]


@pytest.mark.parametrize("f", NUMBERS, ids=lambda f: f.metadata["env"])
def test_every_number_has_a_lower_and_an_upper_bound(f):
    assert f.metadata["minimum"] is not None
    assert f.metadata["maximum"] is not None
    assert f.metadata["minimum"] <= f.default <= f.metadata["maximum"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        # Each of these once passed the start and failed the first request that used it
        # (OverflowError in timedelta, an unbindable expiry, a port no socket takes).
        (
            {"IDEMPOTENCY_KEY_TTL_SECONDS": "999999999999"},
            "IDEMPOTENCY_KEY_TTL_SECONDS must be at most 2592000",
        ),
        (
            {"IDEMPOTENCY_LEASE_SECONDS": "999999999999"},
            "IDEMPOTENCY_LEASE_SECONDS must be at most 86400",
        ),
        ({"DB_RETRY_AFTER": "10" * 30}, "DB_RETRY_AFTER must be at most 86400"),
        ({"DB_POOL_TIMEOUT": "1e300"}, "DB_POOL_TIMEOUT must be at most 300"),
        ({"SNOWFLAKE_PORT": "70000"}, "SNOWFLAKE_PORT must be at most 65535"),
        ({"MAX_CONTENT_LENGTH": "9" * 25}, "MAX_CONTENT_LENGTH must be at most 1073741824"),
        ({"AUTH_LEEWAY": "99999999999999999999"}, "AUTH_LEEWAY must be at most 3600"),
        ({"DB_POOL_TIMEOUT": "inf"}, "DB_POOL_TIMEOUT must be a number, got 'inf'"),
        ({"AUTH_JWKS_TIMEOUT": "nan"}, "AUTH_JWKS_TIMEOUT must be a number, got 'nan'"),
    ],
)
def test_a_number_above_its_range_stops_the_start_naming_the_setting(environ, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ, env_file=None)

    assert str(caught.value) == message


@pytest.mark.parametrize("f", NUMBERS, ids=lambda f: f.metadata["env"])
def test_each_bound_itself_is_accepted(f, tmp_path):
    environ = {"EMULATOR_DATA_DIR": str(tmp_path)}
    # The cross-setting rules (min <= max pool, lock < statement, lease < TTL) need a partner.
    partners = {
        "DB_POOL_MIN_CONNECTIONS": {"DB_POOL_MAX_CONNECTIONS": "1000"},
        "SNOWFLAKE_LOCK_TIMEOUT": {"SNOWFLAKE_STATEMENT_TIMEOUT": "604800"},
        "IDEMPOTENCY_LEASE_SECONDS": {"IDEMPOTENCY_KEY_TTL_SECONDS": "2592000"},
        "IDEMPOTENCY_KEY_TTL_SECONDS": {"IDEMPOTENCY_LEASE_SECONDS": "11"},
    }
    env = f.metadata["env"]
    for bound in (f.metadata["minimum"], f.metadata["maximum"]):
        given = {**environ, **partners.get(env, {}), env: str(bound)}
        if env == "SNOWFLAKE_STATEMENT_TIMEOUT" and bound == 1:
            given["SNOWFLAKE_LOCK_TIMEOUT"] = "0"
        if env == "DB_POOL_MAX_CONNECTIONS" and bound == 1:
            given["DB_POOL_MIN_CONNECTIONS"] = "1"
        settings = Settings.from_env(given, env_file=None)
        assert getattr(settings, f.name) == bound


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_staging_and_production_without_snowflake_refuse_and_name_what_is_missing(environment):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ENVIRONMENT": environment, "SNOWFLAKE_USER": "svc"}, env_file=None)

    assert str(caught.value) == (
        f"ENVIRONMENT={environment} needs a Snowflake account; "
        "missing: SNOWFLAKE_ACCOUNT, SNOWFLAKE_WAREHOUSE"
    )


def test_production_with_snowflake_never_uses_the_emulator_and_has_no_docs():
    settings = Settings.from_env(
        {
            "ENVIRONMENT": "production",
            "AUTH_ISSUER": "https://issuer.example.com/",
            "AUTH_AUDIENCE": "userservice",
            "SNOWFLAKE_ACCOUNT": "org-acct",
            "SNOWFLAKE_USER": "svc",
            "SNOWFLAKE_WAREHOUSE": "wh",
        },
        env_file=None,
    )

    assert (settings.use_emulator, settings.docs_enabled) == (False, False)


def test_the_password_never_appears_in_the_repr():
    settings = Settings(snowflake_password="hunter2-secret")

    assert "hunter2-secret" not in repr(settings)
    assert "snowflake_password" not in repr(settings)


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]
