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


def test_pages_run_under_the_content_security_policy(app_url, new_page):
    """The CSP header is on every page and nothing the app does violates it."""
    from tests.browser.test_workflow_customers import goto, sign_in

    page = new_page(DESKTOP)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    response = page.goto(f"{app_url}/login")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    sign_in(page, app_url, "superadmin", "Admin123!")
    for path in ("/", "/customers", "/invoices", "/finance", "/whatsapp", "/profile",
                 "/admin/settings", "/admin/activity"):
        goto(page, f"{app_url}{path}")
        page.wait_for_timeout(500)
    assert violations == []
