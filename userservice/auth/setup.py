"""Ask for bearer tokens on the users routes when AUTH_ISSUER is set; say so loudly when not.

The verifier (auth/verifier.py: PyJWT and cryptography) is imported only when tokens are required,
so importing the service stays as cheap as before (tests/test_secrets.py).
"""

from __future__ import annotations

import logging

import click
from flask import Flask, current_app, has_app_context
from flask.cli import ScriptInfo, run_command

from ..settings import DEV_ISSUER, Settings

EXTENSION_KEY = "userservice.auth"
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Build the verifier from the settings, or say loudly that a service to be served is open."""
    settings: Settings = app.config["SETTINGS"]
    app.cli.add_command(dev_token_command)
    if not settings.auth_enabled:
        if _built_for_a_command():
            return  # `flask init-db` and the like take no requests: no one to warn about
        log.warning(
            "authentication is off: AUTH_ISSUER is empty, so anyone who reaches the service "
            "may read and change every user (development only; see the README)"
        )
        return
    from . import verifier

    app.extensions[EXTENSION_KEY] = verifier.build(settings)
    log.info(
        "bearer tokens required on /api/v1: issuer %s, audience %s",
        settings.auth_issuer,
        settings.auth_expected_audience,
    )


def _built_for_a_command() -> bool:
    """Whether the `flask` command line builds the app to run one of its commands, not `run`.

    gunicorn (wsgi.py) and Lambda (lambda_handler.py) build it outside any click command;
    `flask` builds it inside its own group's context (flask.cli.FlaskGroup, which keeps a
    ScriptInfo there), and `flask run` then serves it.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.find_object(ScriptInfo) is None:
        return False
    return ctx.command is not run_command


@click.command("dev-token")
@click.option("--scope", "scopes", multiple=True, help="A scope to grant (repeat); default both.")
@click.option("--expires-in", default=3600, show_default=True, type=click.IntRange(1, 86400))
@click.option("--subject", default="dev-user", show_default=True)
def dev_token_command(scopes: tuple[str, ...], expires_in: int, subject: str) -> None:
    """Print a development token that the service trusts with AUTH_ISSUER=dev."""
    from . import devkey

    # Under `flask`, the app's settings; called bare (`make token`), the environment's, with no
    # app, so no emulator to open while `make run` holds its files.
    if has_app_context():
        settings: Settings = current_app.config["SETTINGS"]
    else:
        settings = Settings.from_env(defaults={"AUTH_ISSUER": DEV_ISSUER})
    if settings.environment != "development":
        raise click.ClickException("dev-token is for ENVIRONMENT=development only")
    granted = scopes or (settings.auth_read_scope, settings.auth_write_scope)
    key = devkey.key_path(settings)
    made = [path for path in (key.parent, key) if not path.exists()]  # what minting creates
    token = devkey.mint(settings, granted, expires_in, subject)
    click.echo(token)
    if settings.auth_issuer != DEV_ISSUER:
        click.echo("note: the service trusts this token only with AUTH_ISSUER=dev", err=True)
    elif (warning := devkey.untrusted(settings, token, made)) is not None:
        click.echo(warning, err=True)
