"""The session as a browser holds it: an HttpOnly cookie, and a tab that forgets its last user.

Issue 16 findings 2 and 4, reproduced the way they were found: every websocket
frame the page receives is recorded, the superadmin opens a subscriber with a
NIK, logs out on the same tab, and mitra1 logs in there.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from fibernode.services import auth, customers, packages
from fibernode.services.context import Actor
from tests.browser.conftest import DESKTOP
from tests.browser.test_shell import login, wait_splash_gone
from tests.browser.test_workflow_customers import assert_session_set, goto

pytestmark = pytest.mark.browser

NIK = "3201999988887777"
DASHBOARD = re.compile(r"://[^/]+/$")


@pytest.fixture
def secret_subscriber():
    """A superadmin subscriber with NIK, address and notes; removed afterwards.

    Removed so the other browser tests' counts (e.g. the dashboard's) stay as seeded.
    """
    admin = auth.login(Actor.anonymous("127.0.0.1", "pytest"), "superadmin", "Admin123!").actor
    package = packages.list_packages(admin)[0]
    marker = uuid.uuid4().hex[:8]
    name, address = f"Rahasia Pusat {marker}", f"Jl. Tersembunyi {marker}"
    cid = customers.create_customer(admin, name=name, phone=f"0813{int(marker, 16) % 10**8:08d}",
                                    package_id=package.id, billing_date=7, nik=NIK,
                                    address=address, notes="catatan rahasia")
    yield cid, name, address
    customers.delete_customer(admin, cid)


def test_the_next_user_of_a_tab_gets_nothing_of_the_previous(app_url, new_page,
                                                             secret_subscriber):
    cid, name, address = secret_subscriber
    page = new_page(DESKTOP)
    frames: list[tuple[str, str]] = []
    phase = {"now": "superadmin"}
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: frames.append((phase["now"], str(payload)))))

    login(page, app_url, "superadmin", "Admin123!")
    expect(page).to_have_url(DASHBOARD)
    assert_session_set(page)
    goto(page, f"{app_url}/customers/{cid}")
    # The superadmin sees the plain NIK; the page state only ever held the masked one.
    expect(page.locator("[data-testid=detail-nik]")).to_have_text(NIK)
    first_tab_id = page.evaluate("sessionStorage.getItem('token')")
    state_frames = [p for who, p in frames if "delta" in p]
    assert not any(NIK in p for p in state_frames), "the plain NIK went into a state delta"

    # Log out on this tab, then mitra1 logs in on the very same tab.
    goto(page, f"{app_url}/profile")
    page.click("[data-testid=logout]")
    expect(page).to_have_url(re.compile(r"/login/?$"))
    assert not any(c["name"] == "fn_session" for c in page.context.cookies())
    phase["now"] = "mitra1"
    login(page, app_url, "mitra1", "Mitra123!")
    expect(page).to_have_url(DASHBOARD)
    goto(page, f"{app_url}/customers")
    expect(page.locator("[data-testid=customer-row]").first).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('token')") != first_tab_id

    seen = "\n".join(p for who, p in frames if who == "mitra1")
    assert seen, "no frames recorded for the second user"
    for secret in (NIK, name, address, "catatan rahasia"):
        assert secret not in seen, f"{secret!r} reached the next user of the tab"


def test_an_old_tab_id_hydrated_without_a_session_gets_no_data(app_url, new_page,
                                                              secret_subscriber):
    """The tab id of a logged-out superadmin, replayed by a visitor, hydrates empty."""
    cid, name, _address = secret_subscriber
    page = new_page(DESKTOP)
    login(page, app_url, "superadmin", "Admin123!")
    expect(page).to_have_url(DASHBOARD)
    assert_session_set(page)
    goto(page, f"{app_url}/customers/{cid}")
    expect(page.locator("[data-testid=detail-name]")).to_have_text(name)
    tab_id = page.evaluate("sessionStorage.getItem('token')")
    goto(page, f"{app_url}/profile")
    page.click("[data-testid=logout]")
    expect(page).to_have_url(re.compile(r"/login/?$"))
    page.close()

    visitor = new_page(DESKTOP)
    frames: list[str] = []
    visitor.on("websocket", lambda ws: ws.on("framereceived",
                                             lambda payload: frames.append(str(payload))))
    visitor.add_init_script(f"sessionStorage.setItem('token', {tab_id!r})")
    visitor.goto(f"{app_url}/customers/{cid}")
    wait_splash_gone(visitor)
    expect(visitor).to_have_url(re.compile(r"/login/?$"))
    seen = "\n".join(frames)
    assert frames and name not in seen and NIK not in seen
