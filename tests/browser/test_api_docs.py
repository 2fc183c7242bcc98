"""The API docs render in Chromium from the app's own files (under the app's CSP)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, shot

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_without_a_cdn(app_url, new_page):
    page = new_page(DESKTOP)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(app_url) and not r.url.startswith("data:") else None)
    page.goto(f"{app_url}/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("FiberNode")
    expect(page.locator(".opblock-summary-path", has_text="/api/auth/login")).to_be_visible()
    shot(page, "api-docs")
    assert outside == []
