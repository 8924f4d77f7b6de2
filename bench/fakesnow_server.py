"""`fakesnow -s` with its statements run one at a time, as the embedded emulator runs them.

Snowflake runs UPDATE, DELETE and MERGE on one table one at a time, and the service's claims
rely on it (two MERGEs that claim one Idempotency-Key: the second sees the first's row).
fakesnow's server runs each statement in a thread of its own, so two MERGEs that arrive
together both find the key free and both insert it. The embedded emulator serializes its
statements (userservice/db/emulator.py); this does the same for the server, at its one
statement route, and is otherwise `fakesnow -s --host HOST -p PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import fakesnow.server
import uvicorn

STATEMENTS = "/queries/v1/query-request"


class OneStatementAtATime:
    """ASGI middleware: a statement request waits until the one before it is answered."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = asyncio.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == STATEMENTS:
            async with self.lock:
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    app = OneStatementAtATime(fakesnow.server.app)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
