"""Two-step login in Chromium: a superadmin enables it, logs in with a code, turns it off."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from fibernode.db import new_session
from fibernode.models import RecoveryCode, User
from tests.browser.conftest import DESKTOP, shot
from tests.browser.test_shell import login, wait_splash_gone
from tests.browser.test_workflow_customers import assert_session_set, goto, sign_in
from tests.factories import ADMIN_PASSWORD

pytestmark = pytest.mark.browser


def fresh_code(secret: str, after_step: int | None = None) -> tuple[str, int]:
    """A code of a step not used yet (each step's code is accepted once)."""
    totp = pyotp.TOTP(secret)
    while True:
        step = int(time.time() // totp.interval)
        if after_step is None or step > after_step:
            return totp.now(), step
        time.sleep(1)


def switch_off_two_factor() -> None:
    """Other browser tests log in as the superadmin with the password alone."""
    with new_session() as s:
        s.exec(sa.update(User).where(User.username == "superadmin").values(
            totp_secret=None, totp_enabled_at=None, totp_last_step=None))
        s.exec(sa.delete(RecoveryCode))
        s.commit()


def test_superadmin_enables_two_step_login_and_uses_it(app_url, new_page):
    page = new_page(DESKTOP)
    try:
        sign_in(page, app_url, "superadmin", ADMIN_PASSWORD)
        goto(page, f"{app_url}/profile")
        section = page.locator("[data-testid=two-factor]")
        expect(section).to_be_visible()
        page.click("[data-testid=totp-start]")
        expect(page.locator("[data-testid=totp-qr]")).to_be_visible()
        secret = page.locator("[data-testid=totp-secret]").inner_text().strip()

        page.fill("#code", "000000")
        page.click("[data-testid=totp-confirm]")
        expect(section).to_contain_text("Kode verifikasi salah.")
        code, step = fresh_code(secret)
        page.fill("#code", code)
        page.click("[data-testid=totp-confirm]")
        codes = page.locator("[data-testid=recovery-codes] code")
        expect(codes).to_have_count(10)
        recovery = codes.first.inner_text()
        expect(page.locator("[data-testid=totp-status]")).to_contain_text("10")
        shot(page, "two-factor-enabled")

        # A new browser: the password alone now asks for the code.
        other = new_page(DESKTOP)
        login(other, app_url, "superadmin", ADMIN_PASSWORD)
        expect(other.locator("#otp")).to_be_visible()
        expect(other).to_have_url(re.compile(r"/login/?$"))
        shot(other, "two-factor-login-code")
        other.fill("#otp", "111111")
        other.click("[data-testid=login-submit]")
        expect(other.locator("[data-testid=login-error]")).to_have_text("Kode verifikasi salah.")
        code, _ = fresh_code(secret, after_step=step)
        other.fill("#otp", code)
        other.click("[data-testid=login-submit]")
        expect(other).to_have_url(re.compile(r"/$"))

        # A recovery code works once, from a third browser.
        third = new_page(DESKTOP)
        third.goto(f"{app_url}/login")
        wait_splash_gone(third)
        third.fill("#username", "superadmin")
        third.fill("#password", ADMIN_PASSWORD)
        third.click("[data-testid=login-submit]")
        expect(third.locator("#otp")).to_be_visible()
        third.fill("#otp", recovery)
        third.click("[data-testid=login-submit]")
        expect(third).to_have_url(re.compile(r"/$"))
        assert_session_set(third)

        # Turn it off again from the profile page.
        goto(third, f"{app_url}/profile")
        expect(third.locator("[data-testid=totp-status]")).to_contain_text("9")
        third.fill("#password", ADMIN_PASSWORD)
        third.locator("[data-testid=two-factor] #code").fill(codes.nth(1).inner_text())
        third.get_by_role("button", name="Nonaktifkan").click()
        expect(third.locator("[data-testid=two-factor]")).to_contain_text(
            "Verifikasi dua langkah dinonaktifkan.")
        expect(third.locator("[data-testid=totp-start]")).to_be_visible()
    finally:
        switch_off_two_factor()
