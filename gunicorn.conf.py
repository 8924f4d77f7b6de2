"""gunicorn settings, taken from the service's own settings (see README)."""

from userservice.settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.host}:{_settings.port}"
# The emulator's DuckDB file admits one process, so on the emulator one worker serves with
# threads; against Snowflake, WEB_CONCURRENCY workers do.
workers = 1 if _settings.use_emulator else _settings.web_concurrency
threads = _settings.gunicorn_threads
worker_class = "gthread"
timeout = _settings.gunicorn_timeout
graceful_timeout = _settings.gunicorn_timeout
keepalive = 5
# Each worker builds its own app and pool: a pool made before the fork would share sockets.
preload_app = False
# The app logs one JSON access line per request itself.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
