"""Swagger UI in a real browser: Debian's Chromium, headless, driven by Playwright.

The page must render every operation from this server's own assets (any request beyond
127.0.0.1 is refused and recorded). The service asks for tokens (AUTH_ISSUER=dev): "Try it
out" on the list must show a 401 until a development token is pasted into Authorize, then 200.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.servers import emulator_env, free_port, gunicorn
from userservice.auth import devkey
from userservice.settings import Settings

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # Debian's; `make test` installs it when it is missing
SCREENSHOT = Path(__file__).resolve().parents[1] / "build" / "screenshots" / "swagger-ui.png"
# The flags Chromium needs on a machine with no network beyond the package registries.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATIONS = [
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{user_id}"),
    ("PUT", "/api/v1/users/{user_id}"),
    ("PATCH", "/api/v1/users/{user_id}"),
    ("DELETE", "/api/v1/users/{user_id}"),
    ("GET", "/health"),
    ("GET", "/health/ready"),
]


def test_swagger_ui_renders_every_operation_offline_and_try_it_out_works(tmp_path):
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = emulator_env(tmp_path, AUTH_ISSUER="dev")
    settings = Settings.from_env(env, env_file=None)
    token = devkey.mint(settings, [settings.auth_read_scope], 600)
    outside: list[str] = []
    with gunicorn(env, tmp_path / "gunicorn.log", port=port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()

        def only_loopback(route):
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()

        page.route("**/*", only_loopback)
        page.goto(f"http://127.0.0.1:{port}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)

        shown = [
            (
                block.locator(".opblock-summary-method").inner_text(),
                block.locator(".opblock-summary-path").get_attribute("data-path"),
            )
            for block in page.locator(".opblock").all()
        ]
        list_op = page.locator("#operations-users-listUsers")
        list_op.locator(".opblock-summary").click()
        list_op.locator("button.try-out__btn").click()
        without_token = execute(list_op)

        page.locator(".scheme-container button.authorize").click()
        page.locator(".auth-container input").fill(token)
        page.locator(".auth-btn-wrapper button.authorize").click()
        page.locator(".auth-btn-wrapper button.btn-done").click()
        with_token = execute(list_op, after=without_token)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()

    assert outside == []
    assert sorted(shown) == sorted(OPERATIONS)
    assert (without_token, with_token) == ("401", "200")
    assert SCREENSHOT.stat().st_size > 10_000


def execute(operation, after: str | None = None) -> str:
    """Press Execute and return the status shown (waiting for it to change from `after`)."""
    status = operation.locator(".live-responses-table .response .response-col_status").first
    operation.locator("button.execute").click()
    status.wait_for(timeout=30_000)
    if after is not None:
        operation.page.wait_for_function(
            "([el, old]) => el.innerText.trim() !== old", arg=[status.element_handle(), after]
        )
    return status.inner_text().strip()
