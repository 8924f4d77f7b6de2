"""userservice: a users REST API on Snowflake."""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType, MethodType
from typing import Any

from flask import Flask

from . import (
    api,
    auth,
    cli,
    db,
    health,
    hooks,
    logs,
    paths,
    problems,
    views,
)
from .responses import FramedResponse
from .settings import Settings

__all__ = ["Settings", "create_app"]


class App(Flask):
    """Flask, asking once per hook and view (not once per call) whether it is a coroutine.

    Flask passes each of a request's hooks, its view and any error handler through
    `ensure_sync`, its documented override point, which asks `inspect` every time: about 20
    calls per request. None of the service's functions is async, and a plain function's
    answer never changes, so it is remembered.
    """

    response_class = FramedResponse  # the frame's headers join each answer's as it is sent
    SYNC_CACHE_MAX = 4096  # plain functions registered at start; a bound, never per request

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synchronous: set[Callable[..., Any]] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Return `func` when known synchronous, else what Flask's own check returns.

        A bound method (a class-based view's `dispatch_request`, a new object per call) is
        known by the function it binds.
        """
        plain = func.__func__ if type(func) is MethodType else func
        if plain in self._synchronous:
            return func
        synced = super().ensure_sync(func)
        if (
            synced is func
            and type(plain) is FunctionType
            and len(self._synchronous) < self.SYNC_CACHE_MAX
        ):
            self._synchronous.add(plain)
        return synced


def create_app(settings: Settings | None = None, connect: Callable[[], Any] | None = None) -> Flask:
    """Build the app: settings, SQL catalogue, pool, routes, hooks and error handlers."""
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    app = App(__name__)
    app.config.update(
        SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    auth.init_app(app)
    db.init_app(app, connect)
    cli.init_app(app)
    smorest = api.configure(app, plugins=auth.plugins(settings))
    paths.init_app(app, smorest)
    smorest.register_blueprint(views.blp)
    smorest.register_blueprint(health.blp)
    hooks.init_app(app)  # the first request hooks: every later log line has the trace
    problems.init_app(app)
    if settings.use_emulator:
        with app.app_context():
            db.create_schema()
            cli.migrate()  # a data directory from before email_key existed
    return app
