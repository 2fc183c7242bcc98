"""Logo uploads: validation (content, size, pixels, SVG safety) and the opencv icons."""

from __future__ import annotations

import os
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from sqlmodel import select

from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.models import ActivityLog
from fibernode.services import branding, receipts, settings
from fibernode.services.context import Actor
from fibernode.services.errors import ValidationFailed

ICON_SIZES = {"favicon_url": 32, "icon_192_url": 192, "icon_512_url": 512,
              "icon_maskable_url": 512, "apple_touch_icon_url": 180}
URL_KEYS = ("logo_url", "splash_logo_url", *ICON_SIZES)


@pytest.fixture
def uploads(db, tmp_path, monkeypatch):
    """A private uploads volume for the test."""
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    reset_settings()
    yield tmp_path / "uploads" / "branding"
    monkeypatch.delenv("UPLOADS_DIR")
    reset_settings()


# --- generated images ----------------------------------------------------------------------


def logo_bgra(w: int = 600, h: int = 300, *, color=(40, 40, 220)) -> np.ndarray:
    """A red ellipse on a transparent canvas, with a transparent margin to trim."""
    img = np.zeros((h, w, 4), np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (w // 3, h // 3), 0, 0, 360, (*color, 255), -1)
    return img


def encode(img: np.ndarray, ext: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def png(w: int = 600, h: int = 300) -> bytes:
    return encode(logo_bgra(w, h), ".png")


def jpeg() -> bytes:
    img = np.full((240, 320, 3), 255, np.uint8)
    cv2.rectangle(img, (60, 60), (260, 180), (200, 80, 20), -1)
    return encode(img, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90)


def webp_alpha() -> bytes:
    return encode(logo_bgra(400, 400, color=(20, 160, 20)), ".webp",
                  cv2.IMWRITE_WEBP_QUALITY, 101)


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims ``width`` × ``height`` (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


SVG_OK = (b'<?xml version="1.0"?>\n<!-- logo -->\n'
          b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
          b'viewBox="0 0 200 100" width="200" height="100">'
          b'<defs><linearGradient id="g"><stop offset="0" stop-color="#1d4ed8"/>'
          b'<stop offset="1" stop-color="#22c55e"/></linearGradient></defs>'
          b'<rect x="10" y="10" width="180" height="80" rx="12" fill="url(#g)"/>'
          b'<use xlink:href="#g"/></svg>')
SVG_BAD = {
    "script": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
              b'<script>alert(1)</script><rect width="10" height="10"/></svg>',
    "external-href": b'<svg xmlns="http://www.w3.org/2000/svg" '
                     b'xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">'
                     b'<image xlink:href="http://evil.example/x.png" width="10" height="10"/>'
                     b'</svg>',
    "file-href": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
                 b'<image href="file:///etc/passwd" width="10" height="10"/></svg>',
    "onload": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" '
              b'onload="alert(1)"><rect width="10" height="10"/></svg>',
    "foreign-object": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
                      b'<foreignObject width="10" height="10"><p>x</p></foreignObject></svg>',
    "javascript-link": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
                       b'<a href="javascript:alert(1)"><rect width="10" height="10"/></a></svg>',
    "css-url": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
               b'<rect width="10" height="10" style="fill:url(https://evil.example/p)"/></svg>',
    "entities": b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
                b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
                b'<text>&b;</text></svg>',
}



def nested_use_svg(levels: int, fan: int = 10) -> bytes:
    """A few hundred bytes of ``<use>`` chains that expand to ``fan ** levels`` circles."""
    groups = ['<g id="l0"><circle cx="50" cy="50" r="40" fill="red"/></g>']
    groups += [f'<g id="l{i}">' + f'<use href="#l{i - 1}"/>' * fan + "</g>"
               for i in range(1, levels + 1)]
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
            f'<defs>{"".join(groups)}</defs><use href="#l{levels}"/></svg>').encode()


def marker_svg(points: int, shapes: int) -> bytes:
    """Few elements, but the marker is drawn at every vertex: ``points × shapes`` circles."""
    marker = "".join(f'<circle cx="{i % 10}" cy="{i // 10}" r="1"/>' for i in range(shapes))
    vertices = " ".join(f"{(i * 7) % 100},{(i * 13) % 100}" for i in range(points))
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
            f'<defs><marker id="m" markerWidth="10" markerHeight="30">{marker}</marker></defs>'
            f'<polyline points="{vertices}" fill="none" stroke="black" '
            'marker-mid="url(#m)"/></svg>').encode()


# Allowed, but seconds of drawing: what the event-loop tests upload.
SLOW_SVG = marker_svg(200, 100)

def read(path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def file_of(url: str):
    assert url.startswith("/branding/"), url
    path = branding.branding_file(url.removeprefix("/branding/"))
    assert path is not None, url
    return path


def audit(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)).all())


def url_settings() -> dict[str, str]:
    return settings.get_values(list(URL_KEYS))


# --- happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "make", "kind"), [
    ("logo.png", png, "png"),
    ("LOGO.JPG", jpeg, "jpeg"),
    ("logo.jpeg", jpeg, "jpeg"),
    ("logo.webp", webp_alpha, "webp"),
    ("logo.svg", lambda: SVG_OK, "svg"),
])
def test_upload_makes_every_icon_and_switches_the_settings(world, uploads, name, make, kind):
    data = make()
    result = branding.upload_logo(world.admin, data, name)
    assert result.kind == kind
    values = url_settings()
    for key, size in ICON_SIZES.items():
        assert values[key] == result.urls[key]
        img = read(file_of(values[key]))
        assert img.shape[:2] == (size, size), key
    logo = read(file_of(values["logo_url"]))
    assert values["logo_url"].endswith(".webp")
    assert max(logo.shape[:2]) <= branding.LOGO_MAX_SIDE
    assert values["splash_logo_url"] == ""  # the splash keeps following the logo
    # Apple touch icon and the maskable icon are opaque; the original is kept.
    assert read(file_of(values["apple_touch_icon_url"]))[:, :, 3].min() == 255
    assert read(file_of(values["icon_maskable_url"]))[:, :, 3].min() == 255
    originals = list(uploads.glob("logo-original-*"))
    assert len(originals) == 1
    if kind != "svg":
        assert originals[0].read_bytes() == data
    [row] = audit("settings.logo_upload")
    assert row.user_id == world.admin.user_id
    assert row.meta["kind"] == kind
    assert row.meta["changes"]["logo_url"] == {"from": "", "to": values["logo_url"]}
    brand = settings.get_branding(Actor.anonymous())
    assert brand.logo_url == brand.splash_logo_url == values["logo_url"]
    assert brand.favicon_url == values["favicon_url"]


def test_transparent_borders_are_trimmed_and_the_logo_downscaled(world, uploads):
    result = branding.upload_logo(world.admin, png(1600, 800), "logo.png")
    # The ellipse is 2/3 of the canvas: 1066 × 533 → fits 512 wide.
    assert result.width == 512
    assert 250 <= result.height <= 260
    logo = read(file_of(result.urls["logo_url"]))
    assert logo.shape[1] == 512
    # Trimmed: the ellipse touches every edge of the logo.
    assert logo[:, 0, 3].max() > 0 and logo[0, :, 3].max() > 0
    assert logo[:, -1, 3].max() > 0 and logo[-1, :, 3].max() > 0


def test_maskable_icon_keeps_the_logo_inside_the_safe_zone(world, uploads):
    settings.update_settings(world.admin, {"splash_bg_color": "#0F766E"})
    result = branding.upload_logo(world.admin, png(), "logo.png")
    icon = read(file_of(result.urls["icon_maskable_url"]))
    ring = np.ones((512, 512), bool)
    inner = slice(52, 512 - 52)
    ring[inner, inner] = False
    colors = icon[ring][:, :3]
    # The outer 10 % is one solid colour: the splash colour (the logo is transparent).
    assert (colors == colors[0]).all()
    assert tuple(int(c) for c in colors[0]) == (0x6E, 0x76, 0x0F)  # BGR of #0F766E
    # And the logo (red) is in the middle.
    b, g, r, _a = icon[256, 256]
    assert r > 150 and b < 100
    # Every logo pixel is inside the central circle of 80 %.
    ys, xs = np.nonzero(np.abs(icon[:, :, :3].astype(int) - colors[0]).sum(axis=2) > 30)
    assert (np.hypot(xs - 255.5, ys - 255.5) <= 0.4 * 512 + 1).all()


def test_opaque_logo_uses_its_own_background_for_the_icons(world, uploads):
    result = branding.upload_logo(world.admin, jpeg(), "logo.jpg")
    icon = read(file_of(result.urls["icon_maskable_url"]))
    corner = icon[5, 5, :3].astype(int)
    assert (corner > 245).all()  # the JPEG's white background, not the splash blue


def test_logo_close_to_the_splash_colour_gets_a_white_background(world, uploads):
    blue = logo_bgra(color=(0xF6, 0x82, 0x3B))  # #3B82F6, the default splash colour
    result = branding.upload_logo(world.admin, encode(blue, ".png"), "logo.png")
    icon = read(file_of(result.urls["icon_maskable_url"]))
    assert tuple(int(c) for c in icon[2, 2, :3]) == (255, 255, 255)


def test_splash_target_changes_only_the_splash_logo(world, uploads):
    branding.upload_logo(world.admin, png(), "logo.png")
    before = url_settings()
    result = branding.upload_logo(world.admin, webp_alpha(), "splash.webp", target="splash")
    after = url_settings()
    assert set(result.urls) == {"splash_logo_url"}
    assert after["splash_logo_url"].startswith("/branding/splash-")
    assert {k: v for k, v in after.items() if k != "splash_logo_url"} == \
        {k: v for k, v in before.items() if k != "splash_logo_url"}
    brand = settings.get_branding(Actor.anonymous())
    assert brand.splash_logo_url == after["splash_logo_url"] != brand.logo_url


def test_svg_is_kept_sanitised_and_rasterised(world, uploads):
    branding.upload_logo(world.admin, SVG_OK, "logo.svg")
    [original] = uploads.glob("logo-original-*.svg")
    text = original.read_text()
    assert "<!--" not in text and "<rect" in text
    logo = read(file_of(url_settings()["logo_url"]))
    assert logo.shape[1] == 512 and 226 <= logo.shape[0] <= 230  # the 180 × 80 rect



@pytest.mark.timeout(60)
def test_nested_use_svg_is_refused_before_anything_is_drawn():
    bomb = nested_use_svg(5)  # 1 KB, 100 000 circles: 28 s of cairosvg before the cap
    assert len(bomb) < 3000
    started = time.monotonic()
    with pytest.raises(ValidationFailed) as err:
        branding.check_upload(bomb, "logo.svg")
    assert time.monotonic() - started < 2
    assert err.value.details["file"] == branding.MSG_SVG_COMPLEX
    assert err.value.details["file"].startswith("SVG terlalu rumit")


@pytest.mark.timeout(60)
def test_a_billion_shapes_of_use_chains_are_refused_as_fast():
    started = time.monotonic()
    with pytest.raises(ValidationFailed) as err:
        branding.check_upload(nested_use_svg(9), "logo.svg")
    assert time.monotonic() - started < 2
    assert err.value.details["file"] == branding.MSG_SVG_COMPLEX


@pytest.mark.parametrize("svg", [
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<g id="a"><rect width="5" height="5"/><use href="#a"/></g></svg>',
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs>'
    b'<pattern id="p" width="2" height="2"><rect width="1" height="1" fill="url(#q)"/>'
    b'</pattern><pattern id="q" width="2" height="2"><rect width="1" height="1" '
    b'fill="url(#p)"/></pattern></defs><rect width="10" height="10" fill="url(#p)"/></svg>',
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    + b"<g>" * 200 + b'<rect width="5" height="5"/>' + b"</g>" * 200 + b"</svg>",
], ids=["use-cycle", "pattern-cycle", "too-deep"])
def test_reference_cycles_and_absurd_nesting_are_refused(svg):
    with pytest.raises(ValidationFailed) as err:
        branding.check_upload(svg, "logo.svg")
    assert err.value.details["file"] == branding.MSG_SVG_COMPLEX


def test_a_few_nested_uses_are_still_a_logo():
    checked = branding.check_upload(nested_use_svg(2), "logo.svg")  # 100 circles
    assert checked.kind == "svg" and checked.image[:, :, 3].max() == 255


@pytest.mark.timeout(60)
def test_drawing_that_takes_too_long_is_stopped(monkeypatch):
    monkeypatch.setattr(branding, "SVG_RASTER_SECONDS", 1.0)
    slow = marker_svg(3000, 300)  # 3 elements to count, 900 000 circles to draw
    started = time.monotonic()
    with pytest.raises(ValidationFailed) as err:
        branding.check_upload(slow, "logo.svg")
    assert time.monotonic() - started < 4
    assert err.value.details["file"] == branding.MSG_SVG_SLOW

def test_reset_goes_back_to_the_shipped_icons(world, uploads):
    branding.upload_logo(world.admin, png(), "logo.png")
    branding.upload_logo(world.admin, png(), "splash.png", target="splash")
    splash = url_settings()["splash_logo_url"]
    assert branding.reset_logo(world.admin, "splash") == {
        "splash_logo_url": {"from": splash, "to": ""}}
    assert url_settings()["splash_logo_url"] == ""
    changes = branding.reset_logo(world.admin, "logo")
    assert set(changes) == {"logo_url", *ICON_SIZES}
    brand = settings.get_branding(Actor.anonymous())
    assert brand.logo_url == settings.DEFAULT_LOGO
    assert brand.favicon_url == settings.DEFAULT_ICONS["favicon_url"]
    assert len(audit("settings.logo_reset")) == 2
    assert branding.reset_logo(world.admin, "logo") == {}
    assert len(audit("settings.logo_reset")) == 2


def test_receipt_pdf_uses_the_uploaded_logo(world, uploads):
    result = branding.upload_logo(world.admin, png(), "logo.png")
    path = receipts._logo_file(result.urls["logo_url"])
    assert path == file_of(result.urls["logo_url"])
    assert receipts._logo_file("/branding/../../etc/passwd") is None
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(path), x=10, y=10, h=16)  # fpdf2 draws the WebP logo
    assert bytes(pdf.output()).startswith(b"%PDF")


# --- refusals ------------------------------------------------------------------------------


REFUSALS = [
    ("png-named-jpg", lambda: png(), "logo.jpg", "tidak sesuai"),
    ("jpeg-named-png", jpeg, "logo.png", "tidak sesuai"),
    ("text-named-png", lambda: b"bukan gambar, hanya teks\n" * 20, "logo.png", "bukan gambar"),
    ("gif", lambda: b"GIF89a" + b"\x00" * 200, "logo.gif", "PNG, JPG, WebP atau SVG"),
    ("no-extension", png, "logo", "PNG, JPG, WebP atau SVG"),
    ("empty", lambda: b"", "logo.png", "kosong"),
    ("too-big-file", lambda: png() + b"\x00" * branding.MAX_BYTES, "logo.png", "maksimal 2 MB"),
    ("bomb-header-30000", lambda: png_header(30000, 30000), "logo.png", "terlalu besar"),
    ("bomb-side-9000", lambda: png_header(9000, 100), "logo.png", "terlalu besar"),
    ("bomb-25-megapixel", lambda: encode(np.zeros((5000, 5000), np.uint8), ".png"),
     "logo.png", "terlalu besar"),
    ("too-small", lambda: png(40, 40), "logo.png", "terlalu kecil"),
    ("truncated-png", lambda: png()[:60], "logo.png", "rusak"),
    ("fully-transparent", lambda: encode(np.zeros((100, 100, 4), np.uint8), ".png"),
     "logo.png", "transparan"),
    ("svg-broken", lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><rect", "logo.svg",
     "rusak"),
    ("svg-without-size", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
     "logo.svg", "viewBox"),
    ("svg-named-png", lambda: SVG_OK, "logo.png", "tidak sesuai"),
    *[(f"svg-{name}", (lambda d=data: d), "logo.svg", "SVG ditolak")
      for name, data in SVG_BAD.items()],
]


@pytest.mark.parametrize(("case", "make", "name", "needle"), REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_refused_uploads_change_nothing(world, uploads, case, make, name, needle):
    before = url_settings()
    with pytest.raises(ValidationFailed) as exc:
        branding.upload_logo(world.admin, make(), name)
    message = exc.value.details["file"]
    assert needle.lower() in message.lower(), message
    assert url_settings() == before
    assert not uploads.exists() or not any(uploads.iterdir())
    assert audit("settings.logo_upload") == []


def test_unknown_target_is_refused(world, uploads):
    with pytest.raises(ValidationFailed) as exc:
        branding.upload_logo(world.admin, png(), "logo.png", target="header")
    assert "target" in exc.value.details


def test_failed_commit_removes_the_new_files(world, uploads, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("database down")

    monkeypatch.setattr(settings, "store_values", boom)
    with pytest.raises(RuntimeError):
        branding.upload_logo(world.admin, png(), "logo.png")
    assert not any(uploads.iterdir())
    assert url_settings()["logo_url"] == ""


# --- serving and pruning -------------------------------------------------------------------


def test_branding_file_names_are_strict(world, uploads):
    result = branding.upload_logo(world.admin, png(), "logo.png")
    name = result.urls["favicon_url"].removeprefix("/branding/")
    assert branding.branding_file(name) is not None
    for bad in ("../x.png", "favicon.png", name.upper(), name + ".png", "/etc/passwd",
                ".hidden-0123456789ab.png", "a-0123456789ab.exe"):
        assert branding.branding_file(bad) is None, bad
    assert branding.media_type(name) == "image/png"
    assert branding.media_type("logo-0123456789ab.svg") == "image/svg+xml"


def test_prune_removes_only_old_unreferenced_files(world, uploads):
    first = branding.upload_logo(world.admin, png(), "logo.png")
    second = branding.upload_logo(world.admin, webp_alpha(), "logo.webp")
    old = time.time() - 2 * 24 * 3600
    for path in uploads.iterdir():
        os.utime(path, (old, old))
    (uploads / "notes.txt").write_text("not ours")
    os.utime(uploads / "notes.txt", (old, old))
    removed = branding.prune_unreferenced(world.admin)
    assert removed == 7  # the first upload: logo, 5 icons and the original
    for url in second.urls.values():
        file_of(url)
    for url in first.urls.values():
        assert branding.branding_file(url.removeprefix("/branding/")) is None
    assert list(uploads.glob("logo-original-*"))  # the current upload's original stays
    assert (uploads / "notes.txt").exists()
    assert len(audit("settings.branding_prune")) == 1
    # Fresh unreferenced files (an upload in flight) are kept; old ones go.
    third = branding.upload_logo(world.admin, png(300, 300), "logo.png")
    branding.reset_logo(world.admin, "logo")
    assert branding.prune_unreferenced(Actor.system("cleanup")) == 7  # the second upload
    for url in third.urls.values():
        file_of(url)
    assert branding.prune_unreferenced(Actor.system("cleanup")) == 0


def test_hex_colours_and_domain_are_validated(world):
    changes = settings.update_settings(world.admin, {"theme_color": "#0f766e",
                                                     "splash_bg_color": "#abc",
                                                     "domain": "Tagihan.FiberNode.ID",
                                                     "ssl_method": "cloudflare"})
    assert changes["theme_color"]["to"] == "#0F766E"
    assert changes["splash_bg_color"]["to"] == "#AABBCC"
    assert changes["domain"]["to"] == "tagihan.fibernode.id"
    with pytest.raises(ValidationFailed) as exc:
        settings.update_settings(world.admin, {"theme_color": "biru", "splash_bg_color": "#12345",
                                               "domain": "https://x.id/", "ssl_method": "ftp",
                                               "logo_url": "javascript:alert(1)"})
    assert set(exc.value.details) == {"theme_color", "splash_bg_color", "domain", "ssl_method",
                                      "logo_url"}
    assert "hex" in exc.value.details["theme_color"]
    with pytest.raises(ValidationFailed):
        settings.update_settings(world.admin, {"domain": "bukan domain"})
    assert settings.update_settings(world.admin, {"domain": ""})["domain"]["to"] == ""
