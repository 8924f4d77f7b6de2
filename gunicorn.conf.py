"""gunicorn settings, taken from the service's own settings (docs/OPERATIONS.md), and hooks.

The worker (userservice/worker.py) is gevent's: gunicorn's GeventWorker monkey-patches the
standard library in each worker before it loads the app, so nothing is patched here.
"""

import logging
from pathlib import Path
from typing import Any

from userservice import db, logs
from userservice.db import emulator
from userservice.settings import Settings, StartupError

try:
    _settings = Settings.from_env()
    if _settings.use_emulator:  # before binding: a second `make run` names the first
        emulator.check_free(_settings.emulator_data_dir, _settings.snowflake_database)
except StartupError as exc:
    exc.exit()  # one line, not "Failed to read config file" over a traceback

bind = f"{_settings.host}:{_settings.port}"
# The emulator's DuckDB file admits one process, so on the emulator one worker serves;
# against Snowflake, WEB_CONCURRENCY workers do.
workers = 1 if _settings.use_emulator else _settings.web_concurrency
if _settings.use_emulator:
    logs.configure(_settings.log_level)
    logging.getLogger("userservice.gunicorn").info(
        "using the embedded Snowflake emulator (fakesnow): one worker, %d connections; data in %s",
        _settings.gunicorn_worker_connections,
        Path(_settings.emulator_data_dir).resolve(),
    )
# One greenlet per connection: a slow or idle client costs a few kilobytes, not a thread, so
# slow clients cannot starve the others (docs/OPERATIONS.md, "Slow clients"). The worker adds
# a read timeout and answers gunicorn's own refusals as problem details.
worker_class = "userservice.worker.ReadTimeoutWorker"
worker_connections = _settings.gunicorn_worker_connections
timeout = _settings.gunicorn_timeout
graceful_timeout = _settings.gunicorn_timeout
# In the gevent worker this bounds both an idle keep-alive connection and the time a client
# may take to send a request's headers (a total, so trickled headers are cut too).
keepalive = _settings.read_timeout
# Each worker builds its own app and pool: a pool made before the fork would share sockets.
preload_app = False
# gunicorn 27's control socket lives at ~/.gunicorn/gunicorn.ctl, shared by every gunicorn
# of the user: a second one (tests, a second `make run`) would delete the first's.
control_socket_disable = True
# The app logs one JSON access line per request itself.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()


def worker_exit(server: Any, worker: Any) -> None:
    """Close the exiting worker's pool, so its database sessions end with it."""
    app = getattr(worker, "wsgi", None)  # None when the app failed to load
    if app is not None and db.EXTENSION_KEY in getattr(app, "extensions", {}):
        db.get_from(app).close()
