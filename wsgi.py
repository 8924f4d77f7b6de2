"""The WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from gunicorn.arbiter import Arbiter

from userservice import create_app
from userservice.settings import StartupError

try:
    app = create_app()
except StartupError as exc:
    # gunicorn's master stops, rather than starting the worker again, on this exit code.
    exc.exit(Arbiter.WORKER_BOOT_ERROR)
