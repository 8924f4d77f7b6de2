"""A minimal Flask app doing the service's GET and POST through the same pool and SQL.

The yardstick for the stack's cost: no smorest, no hooks, no error handlers, no logging.
Configured like bench/null_wsgi.py (BENCH_LATENCY_MS, BENCH_POOL_MAX).
"""

import os
from datetime import UTC, datetime

from flask import Flask, request

from bench import nulldb
from userservice.db import queries
from userservice.db.pool import ConnectionPool
from userservice.settings import Settings

CATALOGUE = queries.load()
latency = float(os.environ.get("BENCH_LATENCY_MS", "0")) / 1000
pool = ConnectionPool(
    nulldb.connect(latency), min_size=1, max_size=int(os.environ.get("BENCH_POOL_MAX", "8"))
)
app = Flask(__name__)
# The shipped worker (userservice/worker.py) takes READ_TIMEOUT from the app it serves.
app.config["SETTINGS"] = Settings()


def run(conn, name, *values):
    """Run one statement of sql/ and return its rows as dicts."""
    cursor = conn.cursor()
    try:
        cursor.execute(CATALOGUE[name].sql, list(values))
        columns = [column[0].lower() for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()


@app.get("/api/v1/users/<int:user_id>")
def get_user(user_id):
    """Return one user."""
    with pool.connection() as conn:
        rows = run(conn, "get_user", user_id)
    if not rows:
        return {"error": "not found"}, 404
    return rows[0]


@app.post("/api/v1/users")
def create_user():
    """Create a user: take an id, then MERGE."""
    body = request.get_json()
    now = datetime.now(UTC).replace(tzinfo=None).isoformat()
    with pool.connection() as conn:
        user_id = run(conn, "next_user_id")[0]["id"]
        run(conn, "insert_user", user_id, body["email"], body["name"], now)
    return {"id": user_id, "email": body["email"], "name": body["name"]}, 201
