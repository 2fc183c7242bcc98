"""Splash, login, the responsive shell, dark mode and role guards in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, shot

pytestmark = pytest.mark.browser


def wait_splash_gone(page) -> None:
    """The splash covers the app for 3 s on every open, then fades away."""
    expect(page.locator("#fn-splash")).to_be_hidden(timeout=8_000)


def login(page, app_url: str, username: str, password: str) -> None:
    page.goto(f"{app_url}/login")
    wait_splash_gone(page)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("[data-testid=login-submit]")


def test_splash_then_login_then_dashboard_on_desktop(app_url, new_page):
    page = new_page(DESKTOP)
    page.goto(app_url + "/")
    splash = page.locator("#fn-splash")
    expect(splash).to_be_visible()
    expect(splash).to_contain_text("FiberNode Internet")
    expect(splash).to_contain_text(re.compile(r"v\d+\.\d+\.\d+"))
    # Still covering the app shortly after opening: it lasts about 3 seconds.
    page.wait_for_timeout(1500)
    expect(splash).to_be_visible()
    wait_splash_gone(page)
    expect(page).to_have_url(re.compile(r"/login/?$"))
    expect(page.locator("[data-testid=app-version]")).to_have_text(re.compile(r"v\d+\.\d+"))
    shot(page, "login-desktop-light")

    page.fill("#username", "superadmin")
    page.fill("#password", "salah-sekali1")
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=login-error]")).to_have_text("Username atau password salah.")
    expect(page.locator("#username")).to_have_value("superadmin")  # nothing typed is lost
    shot(page, "login-error")

    page.fill("#password", "Admin123!")
    page.click("[data-testid=login-submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("[data-testid=stat-active]")).to_have_text("3")
    expect(page.locator("[data-testid=sidebar]")).to_be_visible()
    expect(page.locator("[data-testid=bottom-nav]")).to_be_hidden()
    expect(page.locator("[data-testid=sidebar]")).to_contain_text("Log Aktivitas")
    shot(page, "dashboard-desktop-light")


def test_phone_shows_bottom_navigation_and_own_figures(app_url, new_page):
    page = new_page(PHONE, mobile=True)
    login(page, app_url, "mitra1", "Mitra123!")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("[data-testid=stat-active]")).to_have_text("2")
    expect(page.locator("[data-testid=bottom-nav]")).to_be_visible()
    expect(page.locator("[data-testid=sidebar]")).to_be_hidden()
    expect(page.locator("[data-testid=bottom-nav]")).to_contain_text("Dashboard")
    expect(page.locator("[data-testid=bottom-nav]")).to_contain_text("Profil")
    shot(page, "dashboard-mobile-light")
    for path in ("/", "/profile"):
        page.goto(app_url + path)
        wait_splash_gone(page)
        expect(page.locator("[data-testid=bottom-nav]")).to_be_visible()
        page.wait_for_load_state("networkidle")
        # Nothing may push the page sideways on a phone.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} overflows horizontally by {overflow}px"
    shot(page, "profile-mobile-light")


def test_dark_mode_toggle_persists_across_reload(app_url, new_page):
    for viewport, name, mobile in ((DESKTOP, "desktop", False), (PHONE, "mobile", True)):
        page = new_page(viewport, color_scheme="light", mobile=mobile)
        login(page, app_url, "superadmin", "Admin123!")
        expect(page.locator("[data-testid=stat-active]")).to_have_text("3")
        html = page.locator("html")
        expect(html).not_to_have_class(re.compile(r"\bdark\b"))
        page.click("[data-testid=theme-toggle]")
        expect(html).to_have_class(re.compile(r"\bdark\b"))
        page.reload()
        wait_splash_gone(page)
        expect(html).to_have_class(re.compile(r"\bdark\b"))
        expect(page.locator("[data-testid=stat-active]")).to_have_text("3")
        shot(page, f"dashboard-{name}-dark")
        if name == "desktop":
            page.context.clear_cookies()
            page.goto(f"{app_url}/login")
            wait_splash_gone(page)
            expect(html).to_have_class(re.compile(r"\bdark\b"))
            shot(page, "login-desktop-dark")


def test_mitra_cannot_open_admin_route(app_url, new_page):
    page = new_page(DESKTOP)
    login(page, app_url, "mitra1", "Mitra123!")
    expect(page.locator("[data-testid=stat-active]")).to_have_text("2")
    expect(page.locator("[data-testid=sidebar]")).not_to_contain_text("Log Aktivitas")
    page.goto(f"{app_url}/admin/activity")
    wait_splash_gone(page)
    expect(page.locator("[data-testid=forbidden]")).to_contain_text("tidak punya akses")
    expect(page.locator("table")).to_have_count(0)
    shot(page, "forbidden-mitra")


def test_superadmin_sees_audit_log(app_url, new_page):
    page = new_page(DESKTOP)
    login(page, app_url, "superadmin", "Admin123!")
    expect(page.locator("[data-testid=stat-active]")).to_have_text("3")
    page.goto(f"{app_url}/admin/activity")
    wait_splash_gone(page)
    expect(page.locator("table")).to_contain_text("auth.login")


def test_visitor_without_session_is_sent_to_login(app_url, new_page):
    page = new_page(DESKTOP)
    page.goto(f"{app_url}/profile")
    wait_splash_gone(page)
    expect(page).to_have_url(re.compile(r"/login/?$"))


def test_logout_ends_the_session_in_other_tabs(app_url, new_page):
    page = new_page(DESKTOP)
    login(page, app_url, "mitra2", "Mitra123!")
    expect(page.locator("[data-testid=stat-active]")).to_have_text("0")
    other = page.context.new_page()
    other.goto(f"{app_url}/profile")
    wait_splash_gone(other)
    expect(other.locator("[data-testid=logout]")).to_be_visible()
    other.click("[data-testid=logout]")
    expect(other).to_have_url(re.compile(r"/login/?$"))
    page.goto(f"{app_url}/")
    wait_splash_gone(page)
    expect(page).to_have_url(re.compile(r"/login/?$"))
