"""The service on the null connection, for gunicorn: `gunicorn bench.null_wsgi:app`.

BENCH_LATENCY_MS (default 0) is slept per statement; BENCH_POOL_MAX (default 8) sizes the
pool; LOG_LEVEL (default WARNING) decides whether the access log is written.
"""

import os

from bench import nulldb
from userservice import Settings, create_app


def settings(log_level: str = "WARNING") -> Settings:
    """Return settings for a Snowflake account that the null connection stands in for."""
    return Settings(
        snowflake_account="null",
        snowflake_user="bench",
        snowflake_warehouse="bench",
        db_pool_max_connections=int(os.environ.get("BENCH_POOL_MAX", "8")),
        log_level=log_level,
    )


latency = float(os.environ.get("BENCH_LATENCY_MS", "0")) / 1000
app = create_app(settings(os.environ.get("LOG_LEVEL", "WARNING")), connect=nulldb.connect(latency))
