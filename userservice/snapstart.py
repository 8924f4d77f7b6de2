"""AWS Lambda SnapStart: warm everything before the snapshot, make each restore its own.

Many environments restored from one snapshot share all it holds: open sockets (dead after
restore), a Snowflake session (sessions hold state: never shared) and the state of `random`
(request IDs would repeat across environments). `uuid4` and `secrets` read the OS and stay
unique. The hooks come from snapshot_restore_py, which Lambda's Python runtimes ship; the
runtime calls them only when SnapStart is on, so registering them costs nothing otherwise.
"""

from __future__ import annotations

import importlib
import logging
import random

from flask import Flask
from snapshot_restore_py import register_after_restore, register_before_snapshot

from . import db

log = logging.getLogger(__name__)
# What the first request would otherwise import: the connector (300-800 ms), and the token
# verifier's crypto backends (PyJWT loads them on first use).
WARM_MODULES = (
    "snowflake.connector",
    "jwt.algorithms",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.backends.openssl",
)


def register(app: Flask) -> None:
    """Register the app's hooks; the runtime runs them only for a SnapStart version."""
    register_before_snapshot(before_snapshot, app)
    register_after_restore(after_restore, app)


def before_snapshot(app: Flask) -> None:
    """Import and run what the first request needs, then close every connection."""
    for name in WARM_MODULES:
        importlib.import_module(name)
    database = db.get_from(app)
    # One statement end to end loads the connector's lazy parts (login, result parsing);
    # a database that is down leaves the snapshot colder, not broken.
    try:
        with app.app_context():
            db.ping(app.config["SETTINGS"].db_ready_timeout)
    except Exception as exc:
        log.warning("warm-up statement before the snapshot failed: %s", exc)
    database.restart_pool()


def after_restore(app: Flask) -> None:
    """Reseed `random` from the OS and start the pool afresh, owned by this environment."""
    random.seed()
    db.get_from(app).restart_pool()
