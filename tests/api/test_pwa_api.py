"""The web app manifest (built from settings per request), the service worker and head tags."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from fibernode.api import create_api
from fibernode.api.pwa import short_name
from fibernode.config import PROJECT_ROOT
from fibernode.db import new_session
from fibernode.models import Setting
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor


@pytest.fixture
def client(world):
    return TestClient(create_api())


def _set_raw(key: str, value: str) -> None:
    """Write a pipeline-only key the way the logo pipeline does (not via update_settings)."""
    from sqlmodel import select

    with new_session() as s:
        row = s.exec(select(Setting).where(Setting.key == key)).first()
        if row is None:
            s.add(Setting(key=key, value=value))
        else:
            row.value = value
        s.commit()


def test_manifest_members_from_default_branding(client):
    res = client.get("/manifest.webmanifest")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/manifest+json")
    assert res.headers["cache-control"] == "no-cache"
    m = res.json()
    assert m["name"] == "FiberNode Internet"
    assert m["short_name"] == "FiberNode"
    assert m["description"] == settings_service.DEFAULTS["meta_description"]
    assert m["id"] == m["start_url"] == m["scope"] == "/"
    assert m["display"] == "standalone"
    assert m["orientation"] == "portrait"
    assert m["lang"] == "id"
    assert m["theme_color"] == settings_service.DEFAULTS["theme_color"]
    assert m["background_color"] == settings_service.DEFAULTS["splash_bg_color"]
    icons = {(i["sizes"], i["purpose"]): i["src"] for i in m["icons"]}
    assert icons == {
        ("192x192", "any"): "/icons/icon-192.png",
        ("512x512", "any"): "/icons/icon-512.png",
        ("512x512", "maskable"): "/icons/icon-maskable-512.png",
    }
    assert all(i["type"] == "image/png" for i in m["icons"])


def test_shipped_icons_exist_with_their_sizes():
    from PIL import Image

    for name, size in [("icon-192.png", 192), ("icon-512.png", 512),
                       ("icon-maskable-512.png", 512)]:
        with Image.open(PROJECT_ROOT / "assets" / "icons" / name) as img:
            assert img.size == (size, size)


def test_manifest_follows_the_settings_without_a_rebuild(client, world):
    before = client.get("/manifest.webmanifest")
    settings_service.update_settings(world.admin, {"app_name": "Jaringan Desa Sejahtera",
                                                   "theme_color": "#10B981",
                                                   "splash_bg_color": "#111827"})
    _set_raw("icon_192_url", "/branding/icon-192-abcdef0123.png")
    _set_raw("icon_maskable_url", "/branding/icon-maskable-512-abcdef0123.png")
    after = client.get("/manifest.webmanifest")
    m = after.json()
    assert m["name"] == "Jaringan Desa Sejahtera"
    assert m["short_name"] == "Jaringan"
    assert m["theme_color"] == "#10B981"
    assert m["background_color"] == "#111827"
    srcs = [i["src"] for i in m["icons"]]
    assert srcs == ["/branding/icon-192-abcdef0123.png", "/icons/icon-512.png",
                    "/branding/icon-maskable-512-abcdef0123.png"]
    assert before.headers["etag"] != after.headers["etag"]


def test_manifest_etag_revalidates_with_304(client):
    first = client.get("/manifest.webmanifest")
    etag = first.headers["etag"]
    again = client.get("/manifest.webmanifest", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""


@pytest.mark.parametrize(("name", "expected"), [
    ("FiberNode", "FiberNode"),
    ("FiberNode Internet", "FiberNode"),
    ("Net Desa Maju Jaya", "Net Desa"),
    ("Supercalifragilistic Net", "Supercalifra"),
    ("  Abc   Def  ", "Abc Def"),
])
def test_short_name_fits_twelve_characters(name, expected):
    assert short_name(name) == expected
    assert len(short_name(name)) <= 12


def test_manifest_is_public_and_not_in_the_openapi_schema(client):
    assert client.get("/manifest.webmanifest").status_code == 200  # no token
    assert "/manifest.webmanifest" not in client.get("/api/openapi.json").json()["paths"]


def test_service_worker_asset_scope_and_routes_it_never_touches():
    sw = (PROJECT_ROOT / "assets" / "sw.js").read_text()
    for route in ("_event", "_upload", "api", "ping", "_health"):
        assert f"/^\\/{route}(\\/|$)/" in sw, route
    assert 'request.method !== "GET"' in sw
    assert "url.origin !== self.location.origin" in sw
    assert '"SKIP_WAITING"' in sw
    assert (PROJECT_ROOT / "assets" / "pwa.js").is_file()


def test_head_links_the_manifest_and_registers_the_worker_with_the_build_version():
    from fibernode import __version__
    from fibernode.components.pwa import head_components

    rendered = "\n".join(str(c.render()) for c in head_components())
    assert "manifest.webmanifest" in rendered
    assert "apple-mobile-web-app-capable" in rendered
    assert re.search(r'FN_BUILD_VERSION = \\*"' + re.escape(__version__), rendered)
    assert f"/pwa.js?v={__version__}" in rendered


def test_manifest_uses_the_public_branding(client):
    b = settings_service.get_branding(Actor.anonymous())
    m = client.get("/manifest.webmanifest").json()
    assert m["icons"][1]["src"] == b.icon_512_url
