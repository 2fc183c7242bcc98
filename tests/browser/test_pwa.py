"""The installable app in Chromium: installability, service worker, offline shell,
auto-update, offline banner, install prompt and pull-to-refresh.

"Server stopped" is the harness's relay closing its listener and dropping every
connection (the websocket included): to the browser that is a stopped server,
and the same build serves the other test files once it listens again.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from fibernode import __version__
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor
from tests.browser.conftest import DESKTOP, PHONE, shot
from tests.browser.test_shell import wait_splash_gone
from tests.browser.test_workflow_customers import goto, sign_in

pytestmark = pytest.mark.browser

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
CONTROLLED = "() => navigator.serviceWorker.controller !== null"
SYNTHETIC_PROMPT = """() => {
    window.__prompted = 0;
    const e = new Event('beforeinstallprompt', {cancelable: true});
    e.prompt = () => { window.__prompted += 1; return Promise.resolve(); };
    e.userChoice = Promise.resolve({outcome: 'accepted', platform: 'web'});
    window.dispatchEvent(e);
    return e.defaultPrevented;
}"""


def open_controlled(page, url: str) -> None:
    """Open ``url``, wait for the worker to be active, reload: the worker now controls it."""
    goto(page, url)
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    wait_splash_gone(page)
    page.wait_for_function(CONTROLLED)


@pytest.fixture
def server_version():
    """Set the server's ``app_version``; the started one is put back afterwards."""
    def set_version(value: str) -> None:
        settings_service.record_app_version(Actor.system("test"), value)

    yield set_version
    set_version(__version__)


@pytest.fixture
def profile_page(browser, tmp_path):
    """A page in a real (non-incognito) profile: Chromium never offers installs in incognito,
    and every ``new_context`` is one."""
    from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS

    ctx = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
        viewport=PHONE, is_mobile=True, has_touch=True, locale="id-ID")
    ctx.set_default_timeout(20_000)
    try:
        yield ctx.pages[0] if ctx.pages else ctx.new_page()
    finally:
        ctx.close()


def test_chromium_reports_the_app_installable(app_url, profile_page):
    page = profile_page
    goto(page, app_url + "/login")
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    cdp = page.context.new_cdp_session(page)
    errors = None
    for _ in range(20):
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        if not errors:
            break
        page.wait_for_timeout(500)
    assert errors == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"].endswith("/manifest.webmanifest")
    assert not manifest.get("errors")
    icons = page.request.get(app_url + "/manifest.webmanifest").json()["icons"]
    assert {i["purpose"] for i in icons} == {"any", "maskable"}
    for icon in icons:
        res = page.request.get(app_url + icon["src"])
        assert res.ok, icon["src"]
        assert res.headers["content-type"] == "image/png"
    assert page.evaluate("() => window.FN_BUILD_VERSION") == __version__
    shot(page, "pwa-installable-login")


def test_service_worker_controls_the_page_after_reload(app_url, new_page):
    page = new_page(DESKTOP)
    goto(page, app_url + "/login")
    scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == app_url + "/"
    script = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.active.scriptURL)")
    assert script == f"{app_url}/sw.js?v={__version__}"
    page.reload()
    wait_splash_gone(page)
    page.wait_for_function(CONTROLLED)
    caches = page.evaluate("() => caches.keys()")
    assert f"fn-shell-{__version__}" in caches
    # The worker leaves Reflex's websocket, the API and health routes alone.
    assert page.evaluate("""async () => {
        const r = await fetch('/api/settings/branding', {cache: 'no-store'});
        return r.ok && !(await caches.match('/api/settings/branding'));
    }""")


def test_shell_renders_with_the_server_stopped(app_url, app_harness, new_page):
    page = new_page(PHONE, mobile=True)
    open_controlled(page, app_url + "/login")
    page.fill("#username", "ketik-sebelum-mati")
    app_harness.relay.stop()
    try:
        page.reload()
        # The splash plays from the cached shell, then the login form is there.
        wait_splash_gone(page)
        expect(page.locator("#username")).to_be_visible()
        expect(page.locator("[data-testid=login-submit]")).to_be_visible()
        expect(page.locator("[data-testid=offline-banner]")).to_be_visible(timeout=15_000)
        expect(page.locator("[data-testid=offline-banner]")).to_contain_text("Anda offline")
        shot(page, "pwa-offline-shell")
    finally:
        app_harness.relay.start()
    # Back online: the banner goes away by itself.
    expect(page.locator("[data-testid=offline-banner]")).to_be_hidden(timeout=20_000)


def test_server_stopped_is_really_unreachable(app_url, app_harness, new_page):
    """The relay's stop is what a stopped server looks like: connections are refused."""
    page = new_page(DESKTOP)
    app_harness.relay.stop()
    try:
        with pytest.raises(Exception, match=re.compile("ECONNREFUSED|refused", re.I)):
            page.request.get(app_url + "/ping", timeout=5_000)
    finally:
        app_harness.relay.start()
    assert page.request.get(app_url + "/ping").ok


def test_offline_banner_keeps_what_was_typed(app_url, app_harness, new_page):
    page = new_page(PHONE, mobile=True)
    goto(page, app_url + "/login")
    banner = page.locator("[data-testid=offline-banner]")
    expect(banner).to_be_hidden()
    page.fill("#username", "mitra1")
    page.fill("#password", "rahasia-ketikan")

    # The device loses its network.
    page.context.set_offline(True)
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Anda offline")
    shot(page, "pwa-offline-banner")
    page.context.set_offline(False)
    expect(banner).to_be_hidden(timeout=20_000)

    # The server goes away (websocket dropped, reconnects refused).
    app_harness.relay.stop()
    try:
        expect(banner).to_be_visible(timeout=20_000)
        expect(page.locator("#username")).to_have_value("mitra1")
        expect(page.locator("#password")).to_have_value("rahasia-ketikan")
    finally:
        app_harness.relay.start()
    expect(banner).to_be_hidden(timeout=30_000)
    expect(page.locator("#username")).to_have_value("mitra1")
    expect(page.locator("#password")).to_have_value("rahasia-ketikan")


def test_update_banner_waits_for_unsaved_input_then_updates(app_url, new_page, server_version):
    page = new_page(DESKTOP)
    open_controlled(page, app_url + "/login")
    banner = page.locator("[data-testid=update-banner]")

    # Same version: nothing to offer.
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    page.wait_for_timeout(1000)
    expect(banner).to_be_hidden()

    server_version("99.0.0")
    # Half-typed login form: no banner, whatever the checks say.
    page.fill("#username", "setengah-diketik")
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    page.evaluate("() => window.FN_PWA.checkVersion()")
    page.wait_for_timeout(1500)
    expect(banner).to_be_hidden()

    # A clean page: the check on focus / visibility shows it.
    page.reload()
    wait_splash_gone(page)
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Versi baru tersedia (v99.0.0)")
    expect(banner).to_contain_text(f"Anda menggunakan v{__version__}")
    shot(page, "pwa-update-banner")

    # "Nanti" hides it until the next check cycle (focus does not bring it back at once).
    page.click("[data-testid=update-later]")
    expect(banner).to_be_hidden()
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    page.wait_for_timeout(1000)
    expect(banner).to_be_hidden()

    # "Update Sekarang": caches cleared, worker unregistered, page reloaded with the splash.
    page.reload()
    wait_splash_gone(page)
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    expect(banner).to_be_visible()
    page.evaluate("() => { window.__beforeUpdate = true; }")
    with page.expect_navigation():
        page.click("[data-testid=update-now]")
    expect(page.locator("#fn-splash")).to_be_visible()
    assert page.evaluate("() => window.__beforeUpdate === undefined")
    wait_splash_gone(page)
    # The reloaded page registers a fresh worker, which precaches again.
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")


def test_install_banner_from_beforeinstallprompt(app_url, new_page):
    page = new_page(PHONE, mobile=True)
    goto(page, app_url + "/login")
    assert page.evaluate(SYNTHETIC_PROMPT) is True  # the browser's mini-infobar is held back
    banner = page.locator("[data-testid=install-banner]")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Install FiberNode Internet")
    shot(page, "pwa-install-banner")
    page.click("[data-testid=install-button]")
    expect(banner).to_be_hidden()
    assert page.evaluate("() => window.__prompted") == 1

    # "Nanti" is remembered for days.
    page.reload()
    wait_splash_gone(page)
    page.evaluate(SYNTHETIC_PROMPT)
    expect(banner).to_be_visible()
    page.click("[data-testid=install-dismiss]")
    expect(banner).to_be_hidden()
    assert page.evaluate("() => localStorage.getItem('fn-install-dismissed-at')")
    page.reload()
    wait_splash_gone(page)
    page.evaluate(SYNTHETIC_PROMPT)
    page.wait_for_timeout(800)
    expect(banner).to_be_hidden()


def test_install_banner_never_on_receipt_pages(app_url, new_page):
    page = new_page(PHONE, mobile=True)
    page.goto(f"{app_url}/receipt/{'x' * 32}")
    expect(page.locator("[data-testid=receipt-missing]")).to_be_visible()
    page.evaluate(SYNTHETIC_PROMPT)
    page.wait_for_timeout(800)
    expect(page.locator("[data-testid=install-banner]")).to_have_count(0)


def test_ios_safari_gets_add_to_home_screen_instructions(app_url, browser):
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                              user_agent=IPHONE_UA, locale="id-ID")
    try:
        page = ctx.new_page()
        goto(page, app_url + "/login")
        banner = page.locator("[data-testid=install-banner]")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Ketuk Bagikan lalu Tambah ke Layar Utama")
        expect(page.locator("[data-testid=install-button]")).to_have_count(0)
        shot(page, "pwa-install-ios")
    finally:
        ctx.close()


def _touch_drag(page, x: int, y0: int, y1: int) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                          "touchPoints": [{"x": x, "y": y0}]})
    steps = 8
    for i in range(1, steps + 1):
        cdp.send("Input.dispatchTouchEvent", {
            "type": "touchMove", "touchPoints": [{"x": x, "y": y0 + (y1 - y0) * i // steps}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_pull_to_refresh_reloads_the_customer_list(app_url, new_page):
    from fibernode.services import customers, packages
    from tests.factories import actor_for

    page = new_page(PHONE, mobile=True)
    sign_in(page, app_url, "mitra1", "Mitra123!")
    goto(page, app_url + "/customers")
    cards = page.locator("[data-testid=customer-card]")
    expect(cards.first).to_be_visible()
    expect(page.locator("html")).to_have_class(re.compile(r"\bfn-ptr\b"))
    mitra1 = actor_for("mitra1")
    pkg = packages.list_packages(mitra1)[0]
    new_id = customers.create_customer(mitra1, name="Tarik Segar", phone="081277009911",
                                       package_id=pkg.id, billing_date=9)
    card = cards.filter(has_text="Tarik Segar")
    try:
        expect(card).to_have_count(0)
        # A short pull does nothing; a long one from the top reloads the list.
        _touch_drag(page, 195, 200, 240)
        page.wait_for_timeout(600)
        expect(card).to_have_count(0)
        _touch_drag(page, 195, 200, 420)
        expect(card).to_be_visible()
        shot(page, "pwa-pull-to-refresh")
    finally:
        customers.delete_customer(actor_for("superadmin"), new_id)
