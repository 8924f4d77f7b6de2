"""Answer liveness and readiness probes."""

from __future__ import annotations

import logging

from . import db
from .api import Blueprint, View
from .schemas import LiveSchema, ReadySchema

blp = Blueprint("health", __name__, url_prefix="/health", description="Probes")
log = logging.getLogger(__name__)


@blp.route("")
class Live(View):
    """Liveness."""

    @blp.response(200, LiveSchema)
    @blp.doc(operationId="getHealth")
    def get(self) -> dict[str, str]:
        """Say the process is up; touches no database."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(View):
    """Readiness."""

    @blp.response(200, ReadySchema)
    @blp.problems(503, operationId="getReadiness")
    def get(self) -> dict[str, str]:
        """Ping the database, answering within DB_READY_TIMEOUT; answer only whether it is ready."""
        database = db.get()
        db.ping(database.settings.db_ready_timeout)
        # The probe is open to anyone, so the pool's figures go to the log, not the answer.
        log.info("ready", extra={"pool": database.pool.get_stats()})
        return {"status": "ready"}
