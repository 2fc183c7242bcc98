"""/admin/settings through the real UI (desktop, superadmin): identity and receipt switches,
a logo upload that turns into icons, the manifest, splash and login picking the logo up
without a rebuild, and an invalid file refused in Indonesian."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from fibernode.config import reset_settings
from fibernode.services import branding, settings
from fibernode.services.context import Actor
from tests.browser.conftest import DESKTOP, shot
from tests.browser.test_shell import wait_splash_gone
from tests.browser.test_workflow_customers import goto, sign_in
from tests.services.test_branding import png

pytestmark = pytest.mark.browser

ICON = re.compile(r"^/branding/icon-192-[0-9a-f]{12}\.png$")
LOGO = re.compile(r"/branding/logo-[0-9a-f]{12}\.webp$")


@pytest.fixture(scope="module")
def uploads(app_url, tmp_path_factory):
    """A private uploads volume; the settings go back to the seed's afterwards."""
    saved = os.environ.get("UPLOADS_DIR")
    os.environ["UPLOADS_DIR"] = str(tmp_path_factory.mktemp("uploads"))
    reset_settings()
    before = settings.get_values(["app_name", "receipt_show_nik"])
    yield
    system = Actor.system("test")
    branding.reset_logo(system, "logo")
    branding.reset_logo(system, "splash")
    settings.update_settings(system, before)
    if saved is None:
        os.environ.pop("UPLOADS_DIR", None)
    else:
        os.environ["UPLOADS_DIR"] = saved
    reset_settings()


def test_superadmin_changes_branding_and_uploads_a_logo(app_url, new_page, uploads):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "superadmin", "Admin123!")
    page.locator("a[href='/admin/settings']").first.click()  # admin menu "Pengaturan"
    expect(page).to_have_url(re.compile(r"/admin/settings$"))
    expect(page.locator("[data-testid=settings-identity]")).to_be_visible()
    expect(page.locator("[data-testid=settings-version]")).to_have_text(
        "v" + settings.get_values(["app_version"])["app_version"])

    # Identity and a receipt switch, saved together (audited by the service).
    page.fill("#app_name", "WiFi Desa Maju")
    nik = page.locator("[data-testid=toggle-receipt_show_nik]")
    expect(nik).to_have_attribute("data-state", "unchecked")
    nik.click()
    expect(nik).to_have_attribute("data-state", "checked")
    page.select_option("[data-testid=ssl-select]", "cloudflare")
    page.fill("[data-testid=domain-input]", "tagihan.desamaju.id")
    notes = page.locator("[data-testid=deploy-notes]")
    expect(notes).to_contain_text("PUBLIC_URL=https://tagihan.desamaju.id")
    expect(notes).to_contain_text("Origin Certificate")
    page.click("[data-testid=save-settings]")
    expect(page.get_by_text("Pengaturan tersimpan.")).to_be_visible()
    assert settings.get_values(["app_name", "receipt_show_nik", "ssl_method", "domain"]) == {
        "app_name": "WiFi Desa Maju", "receipt_show_nik": "true", "ssl_method": "cloudflare",
        "domain": "tagihan.desamaju.id"}

    # A bad colour is refused inline, in Indonesian.
    page.fill("[data-testid=theme_color-input]", "biru")
    page.click("[data-testid=save-settings]")
    expect(page.get_by_text("Warna harus kode hex, contoh #3B82F6.")).to_be_visible()
    page.fill("[data-testid=theme_color-input]", "#3B82F6")

    # A PNG logo: icons appear in the preview.
    page.locator("[data-testid=logo-upload] input[type=file]").set_input_files(files=[{
        "name": "logo.png", "mimeType": "image/png", "buffer": png(800, 400)}])
    expect(page.get_by_text("Logo dan ikon aplikasi diperbarui.")).to_be_visible()
    previews = page.locator("[data-testid=icon-previews] img")
    expect(previews).to_have_count(5)
    expect(previews.nth(2)).to_have_attribute("src", ICON)
    expect(page.locator("[data-testid=logo-preview]")).to_have_attribute("src", LOGO)
    # The files really load (served by /branding/ on the app's one origin).
    page.wait_for_function("() => [...document.querySelectorAll("
                           "'[data-testid=icon-previews] img')].every("
                           "i => i.complete && i.naturalWidth > 0)")
    shot(page, "settings-desktop")
    brand = settings.get_branding(Actor.anonymous())
    assert LOGO.search(brand.logo_url) and ICON.match(brand.icon_192_url)

    # The manifest (built per request from the settings) lists the new icons.
    res = page.request.get(app_url + "/manifest.webmanifest")
    assert res.ok
    srcs = {icon["src"] for icon in res.json()["icons"]}
    assert {brand.icon_192_url, brand.icon_512_url, brand.icon_maskable_url} <= srcs
    assert page.request.get(app_url + "/api/settings/branding").json()["logo_url"] == \
        brand.logo_url
    favicon = page.request.get(app_url + "/branding/current/favicon", max_redirects=0)
    assert favicon.status == 302 and favicon.headers["location"] == brand.favicon_url

    # An invalid file: refused with an Indonesian message, nothing changes.
    page.locator("[data-testid=logo-upload] input[type=file]").set_input_files(files=[{
        "name": "logo.png", "mimeType": "image/png", "buffer": b"bukan gambar\n" * 40}])
    expect(page.locator("[data-testid=logo-upload-error]")).to_contain_text("bukan gambar")
    assert settings.get_branding(Actor.anonymous()).logo_url == brand.logo_url

    # A fresh visitor: splash and login show the new logo and name (no rebuild).
    visitor = new_page(DESKTOP)
    visitor.goto(app_url + "/login")
    expect(visitor.locator(".fn-splash-logo")).to_have_attribute("src", LOGO)
    wait_splash_gone(visitor)
    expect(visitor.locator(".fn-login-logo")).to_have_attribute("src", LOGO)
    expect(visitor.locator(".fn-login-title")).to_have_text("WiFi Desa Maju")
    visitor.wait_for_function("() => { const i = document.querySelector('.fn-login-logo');"
                              " return i.complete && i.naturalWidth > 0; }")
    shot(visitor, "settings-login-new-logo")

    # Back to the shipped logo.
    goto(page, app_url + "/admin/settings")
    page.click("[data-testid=logo-reset]")
    expect(page.get_by_text("Logo dikembalikan ke bawaan.")).to_be_visible()
    expect(page.locator("[data-testid=logo-preview]")).to_have_attribute(
        "src", settings.DEFAULT_LOGO)
