"""Read the Snowflake credentials that an AWS Secrets Manager secret holds.

No secret value ever enters a message or a repr here: errors name keys, never values.
"""

from __future__ import annotations

import dataclasses
import json
import logging

from ..settings import Settings

# The keys a secret may hold, each standing in for the setting SNOWFLAKE_<KEY>.
SECRET_KEYS = (
    "account",
    "user",
    "private_key",
    "private_key_passphrase",
    "oauth_token",
    "pat",
    "password",
)


class SecretError(Exception):
    """The secret cannot be read or does not hold usable connection fields."""


class _NoResponseBodies(logging.Filter):
    """Drop botocore's DEBUG record of each response body, which here is the secret itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the response body (tested unformatted, so never rendered)."""
        return not str(record.msg).startswith("Response body")


_NO_RESPONSE_BODIES = _NoResponseBodies()


def fetch_secret(arn: str) -> str:
    """Return the string Secrets Manager holds under a secret's ARN."""
    # Imported here, like the connector: only a service with a secret should pay for boto3.
    import boto3  # type: ignore[import-untyped]
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    # Whoever turns the root logger to DEBUG (a Lambda's AWS_LAMBDA_LOG_LEVEL, say) must not
    # get the secret in their logs; adding the same filter again is a no-op.
    logging.getLogger("botocore.parsers").addFilter(_NO_RESPONSE_BODIES)
    region = arn.split(":")[3]
    try:
        client = boto3.client("secretsmanager", region_name=region)
        response = client.get_secret_value(SecretId=arn)
    except ClientError as exc:
        raise SecretError(f"{arn}: {exc.response['Error']['Code']}") from None
    except BotoCoreError as exc:
        raise SecretError(f"{arn}: {type(exc).__name__}") from None
    if "SecretString" not in response:
        raise SecretError(f"{arn}: holds binary data, not a JSON object")
    text: str = response["SecretString"]
    return text


def merge_secret(settings: Settings, text: str) -> Settings:
    """Return the settings with the secret's fields in place of the same-named settings."""
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise SecretError("the secret is not a JSON object")
    unknown = sorted(set(values) - set(SECRET_KEYS))
    if unknown:
        raise SecretError(f"the secret holds unknown keys {unknown}; known: {list(SECRET_KEYS)}")
    not_text = sorted(key for key, value in values.items() if not isinstance(value, str))
    if not_text:
        raise SecretError(f"the secret's values must be strings: {not_text}")
    found = {f"snowflake_{key}": value.strip() for key, value in values.items() if value.strip()}
    return dataclasses.replace(settings, **found)
