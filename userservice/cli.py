"""The administrator's commands: `flask --app userservice init-db [--hybrid]` and `migrate`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext

from . import db
from .db import queries
from .emails import email_key
from .users import sql_time

# Rows read and keyed per statement pair: large enough that a million users take a few
# thousand statements, small enough that one batch's JSON stays far below Snowflake's limits.
BATCH_SIZE = 1000
log = logging.getLogger(__name__)


@dataclass
class Migration:
    """What `migrate` did: keys stored, and the addresses a human must look at."""

    filled: int = 0
    unkeyable: list[dict[str, Any]] = field(default_factory=list)
    shared: list[dict[str, Any]] = field(default_factory=list)


def migrate(batch_size: int = BATCH_SIZE) -> Migration:
    """Add email_key to the users table and fill it, a batch at a time; safe to run again."""
    done = Migration()
    with db.connection() as conn:
        queries.run(conn, "add_users_email_key")
        after = 0
        while batch := queries.run(
            conn, "users_without_email_key", after=after, batch_size=batch_size
        ):
            keys = []
            for row in batch:
                try:
                    keys.append({"id": int(row["id"]), "key": email_key(row["email"])})
                except ValueError:
                    done.unkeyable.append(row)
            if keys:
                filled = queries.run(conn, "fill_email_keys", keys=json.dumps(keys))
                done.filled += int(filled[0]["number of rows updated"])
            after = int(batch[-1]["id"])
        done.shared = queries.run(conn, "users_sharing_an_email_key")
    if done.unkeyable or done.shared:
        log.warning(
            "%d users have no email key and %d share one; `flask --app userservice migrate` "
            "lists them",
            len(done.unkeyable),
            len(done.shared),
        )
    return done


@click.command("init-db")
@click.option(
    "--hybrid",
    is_flag=True,
    help="Create the tables as Snowflake hybrid tables (PRIMARY KEY and UNIQUE enforced).",
)
@with_appcontext
def init_db_command(hybrid: bool) -> None:
    """Create the users and idempotency_keys tables and the sequence; existing ones stay."""
    db.create_schema(hybrid=hybrid)
    kind = "hybrid" if hybrid else "standard"
    click.echo(
        f"Created the users and idempotency_keys tables ({kind}, unless they existed) "
        "and the sequence."
    )


@click.command("migrate")
@click.option(
    "--batch-size",
    default=BATCH_SIZE,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Users keyed per statement.",
)
@with_appcontext
def migrate_command(batch_size: int) -> None:
    """Add and fill email_key on a users table of the earlier shape; report shared addresses.

    Exits 1 while some addresses have no key or share one with another user, so that a
    deployment notices; fix those users, then run it again.
    """
    done = migrate(batch_size)
    click.echo(f"email_key: filled {done.filled} users.")
    for row in done.unkeyable:
        click.echo(f"no key (IDNA refuses the domain): user {row['id']} <{row['email']}>", err=True)
    for row in done.shared:
        click.echo(f"shared key {row['email_key']}: user {row['id']} <{row['email']}>", err=True)
    if done.unkeyable or done.shared:
        raise click.ClickException(
            f"{len(done.unkeyable)} addresses have no key and {len(done.shared)} share one "
            "with another user: change those users' emails, then run migrate again."
        )


@click.command("sweep-idempotency-keys")
@with_appcontext
def sweep_command() -> None:
    """Delete the expired Idempotency-Key rows (run it on a schedule, e.g. daily)."""
    with db.connection() as conn:
        [counts] = queries.run(
            conn, "delete_expired_idempotency_keys", now=sql_time(datetime.now(UTC))
        )
    click.echo(f"Deleted {int(counts['number of rows deleted'])} expired Idempotency-Key rows.")


def init_app(app: Flask) -> None:
    """Register the commands with the app's `flask` CLI."""
    app.cli.add_command(init_db_command)
    app.cli.add_command(migrate_command)
    app.cli.add_command(sweep_command)
