"""Per-user limits in the UI: the websocket's events count like API requests.

The harness serves the app in this process without Redis, so the in-process
counters are the server's own; a test can fill a user's window and empty it again.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from fibernode.services import ratelimit
from tests.browser.conftest import DESKTOP
from tests.browser.test_workflow_customers import goto, sign_in
from tests.factories import MITRA_PASSWORD

pytestmark = pytest.mark.browser


def _user_window(user_id: str, count: int) -> None:
    key = ratelimit._key("user", user_id)
    with ratelimit._memory._lock:
        ratelimit._memory._windows[key] = (time.monotonic() + 60, count)


def test_a_user_over_the_limit_gets_an_indonesian_notice_then_recovers(app_url, new_page):
    from sqlmodel import select

    from fibernode.db import new_session
    from fibernode.models import User

    with new_session() as s:
        user_id = str(s.exec(select(User.id).where(User.username == "mitra1")).one())
    page = new_page(DESKTOP)
    sign_in(page, app_url, "mitra1", MITRA_PASSWORD)
    try:
        _user_window(user_id, 10**9)
        goto(page, app_url + "/customers")
        notice = page.get_by_text("Terlalu banyak permintaan. Coba lagi sebentar lagi.")
        expect(notice).to_be_visible()
        # Nothing of the page's data was sent while refused.
        expect(page.get_by_text("Ahmad Fauzi")).to_have_count(0)
    finally:
        _user_window(user_id, 0)
    goto(page, app_url + "/customers")
    expect(page.get_by_text("Ahmad Fauzi").first).to_be_visible()
