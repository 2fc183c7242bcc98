"""Settings endpoints and /branding files: superadmin only, one error shape, strict serving."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from fibernode.api import create_api
from fibernode.config import reset_settings
from fibernode.services import auth, settings
from fibernode.services.context import Actor
from tests.api.rest_helpers import token_for
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD
from tests.services.test_branding import SLOW_SVG, SVG_BAD, SVG_OK, jpeg, png


@pytest.fixture
def uploads(db, tmp_path, monkeypatch):
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    reset_settings()
    yield tmp_path / "uploads" / "branding"
    monkeypatch.delenv("UPLOADS_DIR")
    reset_settings()


def _client(username: str | None) -> TestClient:
    client = TestClient(create_api())
    if username:
        password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
        token = auth.login(Actor.anonymous("10.3.3.3", "pytest"), username, password).token
        client.cookies.set(auth.SESSION_COOKIE, token)
        # A browser sends its page's origin; cookie-authenticated changes need it.
        client.headers["Origin"] = "http://testserver"
    return client


def _error(res, status: int) -> dict:
    assert res.status_code == status, res.text
    return res.json()["error"]


def _upload(client: TestClient, data: bytes, name: str, target: str = "logo",
            mime: str = "image/png"):
    return client.post("/api/settings/upload-logo", files={"file": (name, data, mime)},
                       data={"target": target})


CALLS = [
    ("get", "/api/settings", None),
    ("patch", "/api/settings", {"app_name": "WiFi Desa"}),
    ("post", "/api/settings/reset-logo", {"target": "logo"}),
]


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=[c[1] + c[0] for c in CALLS])
def test_settings_endpoints_are_for_the_superadmin(world, uploads, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    assert _error(getattr(_client(None), method)(path, **kwargs), 401)["code"] == \
        "AuthenticationRequired"
    assert _error(getattr(_client("mitra1"), method)(path, **kwargs), 403)["code"] == \
        "PermissionDenied"
    assert getattr(_client("superadmin"), method)(path, **kwargs).status_code == 200


def test_upload_needs_the_superadmin(world, uploads):
    assert _error(_upload(_client(None), png(), "logo.png"), 401)
    assert _error(_upload(_client("mitra1"), png(), "logo.png"), 403)
    # Refused before anything is stored.
    assert not uploads.exists()
    assert settings.get_values(["logo_url"]) == {"logo_url": ""}


def test_get_and_patch_settings(world, uploads):
    admin = _client("superadmin")
    body = admin.get("/api/settings").json()
    assert body["values"]["app_name"] == "FiberNode Internet"
    assert "app_version" in body["values"] and "app_version" not in body["editable"]
    res = admin.patch("/api/settings", json={"app_name": "WiFi Desa",
                                             "receipt_show_nik": True,
                                             "theme_color": "#0f766e"})
    assert res.status_code == 200, res.text
    out = res.json()
    assert out["changes"]["app_name"] == {"from": "FiberNode Internet", "to": "WiFi Desa"}
    assert out["values"]["receipt_show_nik"] == "true"
    assert out["values"]["theme_color"] == "#0F766E"
    err = _error(admin.patch("/api/settings", json={"theme_color": "merah",
                                                    "app_version": "9"}), 422)
    assert set(err["details"]) == {"theme_color", "app_version"}
    assert _error(admin.patch("/api/settings", json={}), 422)
    assert admin.get("/api/settings/branding").json()["app_name"] == "WiFi Desa"


def test_upload_serves_hashed_files_and_updates_branding(world, uploads):
    admin = _client("superadmin")
    res = _upload(admin, png(), "logo.png")
    assert res.status_code == 200, res.text
    out = res.json()
    assert out["kind"] == "png" and set(out["urls"]) == {
        "logo_url", "favicon_url", "icon_192_url", "icon_512_url", "icon_maskable_url",
        "apple_touch_icon_url"}
    anon = _client(None)
    brand = anon.get("/api/settings/branding").json()
    assert brand["logo_url"] == out["urls"]["logo_url"]
    assert brand["splash_logo_url"] == out["urls"]["logo_url"]
    assert brand["icon_maskable_url"] == out["urls"]["icon_maskable_url"]
    logo = anon.get(out["urls"]["logo_url"])
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/webp"
    assert logo.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert logo.headers["x-content-type-options"] == "nosniff"
    assert logo.content[8:12] == b"WEBP"
    icon = anon.get(out["urls"]["icon_192_url"])
    assert icon.headers["content-type"] == "image/png" and icon.content.startswith(b"\x89PNG")
    # The stable favicon address follows the setting and is never cached.
    current = anon.get("/branding/current/favicon", follow_redirects=False)
    assert current.status_code == 302
    assert current.headers["location"] == out["urls"]["favicon_url"]
    assert current.headers["cache-control"] == "no-cache"
    splash = _upload(admin, jpeg(), "splash.jpg", target="splash", mime="image/jpeg")
    assert splash.status_code == 200, splash.text
    assert anon.get("/api/settings/branding").json()["splash_logo_url"] == \
        splash.json()["urls"]["splash_logo_url"]
    reset = admin.post("/api/settings/reset-logo", json={"target": "logo"})
    assert reset.status_code == 200
    assert anon.get("/branding/current/favicon", follow_redirects=False).headers[
        "location"] == "/icons/favicon-32.png"


def test_svg_is_served_with_a_locked_down_policy(world, uploads):
    admin = _client("superadmin")
    assert _upload(admin, SVG_OK, "logo.svg", mime="image/svg+xml").status_code == 200
    [original] = uploads.glob("logo-original-*.svg")
    res = _client(None).get(f"/branding/{original.name}")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("image/svg+xml")
    assert res.headers["content-security-policy"] == \
        "default-src 'none'; style-src 'unsafe-inline'"


@pytest.mark.parametrize(("data", "name", "needle"), [
    (png(), "logo.jpg", "tidak sesuai"),
    (b"hanya teks" * 50, "logo.png", "bukan gambar"),
    (SVG_BAD["script"], "logo.svg", "SVG ditolak"),
    (png(40, 40), "logo.png", "terlalu kecil"),
    (png() + b"\0" * (2 * 1024 * 1024), "logo.png", "maksimal 2 MB"),
])
def test_bad_uploads_get_422_in_indonesian(world, uploads, data, name, needle):
    err = _error(_upload(_client("superadmin"), data, name), 422)
    assert err["code"] == "ValidationFailed"
    assert needle.lower() in err["details"]["file"].lower()
    assert settings.get_values(["logo_url"]) == {"logo_url": ""}


def test_bad_target_is_422(world, uploads):
    assert _error(_upload(_client("superadmin"), png(), "logo.png", target="header"), 422)


@pytest.mark.parametrize("name", ["../secret.png", "logo.png", "LOGO-0123456789ab.png",
                                  "logo-0123456789ab.exe", "logo-0123456789ab.png"])
def test_branding_files_404_for_bad_or_missing_names(world, uploads, name):
    res = _client(None).get(f"/branding/{name}")
    assert res.status_code == 404
    assert _client(None).get("/branding/current/nope").status_code == 404


@pytest.mark.timeout(120)
def test_a_slow_logo_upload_leaves_the_api_serving_everyone_else(world, uploads):
    """The upload is drawn off the event loop: another request answers meanwhile."""
    headers = {"Authorization": f"Bearer {token_for('superadmin')}"}

    async def scenario():
        transport = httpx.ASGITransport(app=create_api())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers=headers) as client:
            upload = asyncio.create_task(client.post(
                "/api/settings/upload-logo", data={"target": "logo"},
                files={"file": ("logo.svg", SLOW_SVG, "image/svg+xml")}))
            await asyncio.sleep(0.3)  # the upload is being drawn now (for seconds)
            started = time.monotonic()
            other = await client.get("/api/settings/branding")
            latency = time.monotonic() - started
            still_drawing = not upload.done()
            return await upload, other, latency, still_drawing

    uploaded, other, latency, still_drawing = asyncio.run(scenario())
    assert uploaded.status_code == 200, uploaded.text
    assert other.status_code == 200
    assert still_drawing and latency < 1.0
