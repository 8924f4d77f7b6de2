"""A bench-only wrapper around lambda_handler that notes when each part of a cold start ends.

Put on PYTHONPATH after the unpacked zip by bench/lambda_cold_start.py. Writes a JSON object
of wall-clock times (time.time()) and module lists to the file BENCH_TIMES names, when the
first invocation has been answered.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from snapshot_restore_py import register_after_restore

marks: dict[str, Any] = {"module": time.time()}
import userservice  # noqa: E402, F401  (the app's imports: Flask, flask-smorest, ...)

marks["app_imports"] = time.time()
import lambda_handler  # noqa: E402  (settings, create_app: the app built)

marks["app_built"] = time.time()
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "snap-start":
    import snowflake.connector  # noqa: F401  (else the first request imports it)

    marks["connector_imported"] = time.time()


def restored() -> None:
    marks["restored"] = time.time()
    marks["modules_at_restore"] = sorted(sys.modules)


# Registered after lambda_handler's hooks, so it runs after them (first registered first).
register_after_restore(restored)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.time()
    answer = lambda_handler.handler(event, context)
    if "handled" not in marks:
        marks.update(handler_called=started, handled=time.time())
        if "modules_at_restore" in marks:
            before = set(marks.pop("modules_at_restore"))
            marks["imported_after_restore"] = sorted(set(sys.modules) - before)
        Path(os.environ["BENCH_TIMES"]).write_text(json.dumps(marks))
    return answer
