"""The AWS Lambda entry point: `lambda_handler.handler`, behind any HTTP front door."""

from __future__ import annotations

from typing import Any

from userservice import create_app, snapstart
from userservice.deadline import handle_in_time
from userservice.settings import Settings

# One Lambda environment serves one request at a time, so one connection is enough; built
# once per container, at import, so warm invocations reuse the app and its pool. The runtime
# ships stdout to CloudWatch Logs, which turns EMF lines into metrics.
LAMBDA_DEFAULTS = {
    "DB_POOL_MIN_CONNECTIONS": "0",
    "DB_POOL_MAX_CONNECTIONS": "1",
    "METRICS_EMF": "true",
}

app = create_app(Settings.from_env(defaults=LAMBDA_DEFAULTS))
snapstart.register(app)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one API Gateway, ALB or function URL event."""
    return handle_in_time(app, event, context)
