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
