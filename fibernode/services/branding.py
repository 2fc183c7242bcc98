"""Logo uploads: validation, the opencv icon pipeline and the ``/branding/`` files.

The superadmin uploads a logo (or a separate splash logo). The upload is checked
before anything is decoded:

* the **content** decides the type (magic bytes for PNG / JPEG / WebP, an XML
  parse for SVG), and it must match the file's extension;
* at most :data:`MAX_BYTES`; raster images are measured from their header with
  Pillow (``Image.open`` reads only the header, no pixels) and refused above
  :data:`MAX_PIXELS` or :data:`MAX_SIDE` — a decompression bomb is rejected
  before a single pixel is decoded (Pillow's own bomb guard, which fires at
  open for absurd sizes, gives the same message) — and below :data:`MIN_SIDE`;
* SVG is parsed with defusedxml (no DTD, no entities), and refused when it holds
  scripts, ``foreignObject``, event-handler attributes or any reference that is not
  a same-document ``#fragment`` (http, file, javascript, data…); it is written back
  re-serialised (comments and processing instructions dropped) and rasterised with
  cairosvg (``unsafe=False``) at a size we choose.
* An SVG's work is bounded before and while it is drawn: every ``<use>`` (and
  ``url(#…)`` reference) counts as the elements it copies, so a few KB of nested
  ``<use>`` that would expand to millions of shapes are refused above
  :data:`MAX_SVG_ELEMENTS` (or :data:`MAX_SVG_DEPTH` levels, or a reference cycle)
  without drawing anything; what passes is drawn in a child process killed after
  :data:`SVG_RASTER_SECONDS` (:mod:`fibernode.services.svg_raster`).

The use cases are synchronous and CPU-bound: callers on an event loop (the API's
async routes, Reflex handlers) run them in a worker thread, so one upload never
stalls anybody else's requests.

The pipeline (opencv, alpha kept, transparent borders trimmed, premultiplied
INTER_AREA downscaling) makes: the logo as WebP (≤ 512 px; fpdf2 draws WebP, so
the receipt PDF uses it too), favicon 32 px, PWA icons 192 / 512, a maskable
512 px icon (logo inside the central safe circle of 80 % on a solid background:
the logo's own corner colour when it has an opaque background, else the splash
colour, or white when the logo would vanish on it) and an opaque 180 px
apple-touch icon. The original upload is kept as well.

Files go to ``uploads_dir/branding`` under content-hash names
(``icon-192-<sha12>.png``), each written atomically (temporary file + rename),
and only then become visible through the settings, in one transaction with the
``settings.logo_upload`` audit row. If that transaction fails the new files are
removed again; anything left behind is swept by :func:`prune_unreferenced`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import cv2
import numpy as np

from fibernode.config import get_settings
from fibernode.services import image_headers, storage, svg_raster
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import ValidationFailed
from fibernode.services.uow import unit_of_work

log = logging.getLogger(__name__)

MAX_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 16_000_000
MAX_SIDE = 8192
MIN_SIDE = 64
SVG_RASTER_SIDE = 1024  # longest side an SVG is rasterised to
# Elements drawn, each <use> / url(#…) counted as what it copies; real logos use a
# few hundred. Deeper than MAX_SVG_DEPTH (nesting plus reference hops) is no logo.
MAX_SVG_ELEMENTS = 10_000
MAX_SVG_DEPTH = 64
SVG_RASTER_SECONDS = 10.0
LOGO_MAX_SIDE = 512
PIPELINE_VERSION = "1"  # part of the file hash: a new pipeline never reuses old names
PRUNE_AGE_SECONDS = 24 * 3600
URL_PREFIX = "/branding/"
TARGETS = {"logo": "logo_url", "splash": "splash_logo_url"}
ICON_KEYS = ("favicon_url", "icon_192_url", "icon_512_url", "icon_maskable_url",
             "apple_touch_icon_url")
# Every key that may point at a file of ours, as /branding/<name>.
REFERENCE_KEYS = ("logo_url", "splash_logo_url", *ICON_KEYS)
FILENAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-([0-9a-f]{12})\.(png|webp|svg|jpg)$")
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "svg": "image/svg+xml",
               "jpg": "image/jpeg"}
EXTENSIONS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".svg": "svg"}
KIND_LABELS = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "svg": "SVG"}
ORIGINAL_EXT = {"png": "png", "jpeg": "jpg", "webp": "webp", "svg": "svg"}

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
FORBIDDEN_SVG_TAGS = frozenset({"script", "foreignobject", "iframe", "embed", "object",
                                "audio", "video", "handler", "listener"})
_URL_FUNC_RE = re.compile(r"url\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)
_LENGTH_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px)?\s*$")

MSG_TYPE = "Hanya file PNG, JPG, WebP atau SVG yang boleh diunggah."
MSG_EMPTY = "File kosong."
MSG_TOO_BIG = f"Ukuran file maksimal {MAX_BYTES // (1024 * 1024)} MB."
MSG_BROKEN = "File gambar rusak atau tidak dapat dibaca."
MSG_PIXELS = (f"Resolusi gambar terlalu besar (maksimal {MAX_SIDE} piksel per sisi "
              f"dan {MAX_PIXELS // 1_000_000} megapiksel).")
MSG_SMALL = f"Gambar terlalu kecil, minimal {MIN_SIDE}×{MIN_SIDE} piksel."
MSG_BLANK = "Logo kosong: seluruh gambar transparan."
MSG_SVG_UNSAFE = ("SVG ditolak: berisi skrip, event handler, foreignObject "
                  "atau tautan ke sumber luar.")
MSG_SVG_SIZE = "SVG harus punya viewBox atau width dan height yang valid."
MSG_SVG_COMPLEX = ("SVG terlalu rumit: lebih dari "
                   + f"{MAX_SVG_ELEMENTS:,}".replace(",", ".")
                   + " elemen setelah semua <use> diuraikan, bertingkat terlalu dalam, "
                   "atau saling merujuk.")
MSG_SVG_SLOW = (f"SVG terlalu berat untuk digambar (lebih dari {SVG_RASTER_SECONDS:.0f} "
                "detik). Sederhanakan gambarnya atau unggah PNG.")

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)


@dataclass(frozen=True)
class LogoUpload:
    """What an upload produced.

    Attributes:
        target: ``logo`` or ``splash``.
        kind: The detected type (png, jpeg, webp, svg).
        width: Width of the (trimmed) logo in pixels.
        height: Height of the (trimmed) logo in pixels.
        urls: Setting key → new ``/branding/…`` URL.
        changes: What changed in the settings, ``{key: {from, to}}``.
    """

    target: str
    kind: str
    width: int
    height: int
    urls: dict[str, str] = field(default_factory=dict)
    changes: dict[str, dict] = field(default_factory=dict)


# --- files ---------------------------------------------------------------------------------


def branding_dir() -> Path:
    """Where the pipeline's files live (``uploads_dir/branding``)."""
    return get_settings().uploads_dir / "branding"


def branding_file(name: str) -> Path | None:
    """The file behind ``/branding/<name>``, or ``None`` (bad name or missing)."""
    if not isinstance(name, str) or not FILENAME_RE.match(name):
        return None
    path = branding_dir() / name
    return path if path.is_file() else None


def media_type(name: str) -> str:
    """Content type of a branding file name."""
    return MEDIA_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


def _write_new(path: Path, data: bytes) -> bool:
    """Write ``path`` atomically; true when the file did not exist before."""
    existed = path.is_file()
    storage.write_atomic(path, data)
    return not existed


# --- validation ----------------------------------------------------------------------------


def _sniff(data: bytes) -> str | None:
    """The type the bytes really are: png, jpeg, webp, svg or ``None``."""
    if kind := image_headers.raster_kind(data):
        return kind
    head = data[:4096].lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<") and b"<svg" in data[:65536].lower():
        return "svg"
    return None


def _declared(filename: str) -> str | None:
    suffix = Path(filename or "").suffix.lower()
    return EXTENSIONS.get(suffix)


def _problem(message: str) -> ValidationFailed:
    return ValidationFailed({"file": message})


def _raster_size(data: bytes, kind: str) -> tuple[int, int]:
    """Width and height from the image header only (no pixel is decoded)."""
    try:
        fmt, width, height = image_headers.header_size(data)
    except image_headers.HeaderError as exc:
        raise _problem(MSG_PIXELS if exc.bomb else MSG_BROKEN) from None
    if fmt != kind:
        raise _problem(MSG_BROKEN)
    return width, height


def _check_dimensions(width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise _problem(MSG_PIXELS)
    if width < MIN_SIDE or height < MIN_SIDE:
        raise _problem(MSG_SMALL)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower() if isinstance(name, str) else ""


def _reference_ok(value: str) -> bool:
    """Only same-document references (``#id``) are allowed inside an SVG."""
    return value.strip().startswith("#")


def _svg_unsafe(root: ET.Element) -> bool:
    for el in root.iter():
        if _local(el.tag) in FORBIDDEN_SVG_TAGS:
            return True
        for name, value in el.attrib.items():
            local = _local(name)
            if local.startswith("on"):
                return True
            if local in ("href", "src") and not _reference_ok(value):
                return True
            if any(not _reference_ok(u) for u in _URL_FUNC_RE.findall(value)):
                return True
            if "@import" in value.lower() or "javascript:" in value.lower():
                return True
        if _local(el.tag) == "style":
            text = "".join(el.itertext())
            if "@import" in text.lower() or any(
                    not _reference_ok(u) for u in _URL_FUNC_RE.findall(text)):
                return True
    return False


def _fragment_refs(el: ET.Element) -> list[str]:
    """The ids an element copies or paints with (``href="#id"``, ``url(#id)``)."""
    refs = []
    for name, value in el.attrib.items():
        if _local(name) == "href" and value.strip().startswith("#"):
            refs.append(value.strip()[1:])
        refs += [u[1:] for u in _URL_FUNC_RE.findall(value) if u.startswith("#")]
    return refs


def _check_svg_work(root: ET.Element) -> int:
    """How many elements drawing the SVG visits, with every reference expanded.

    Counted per element once (memoised), so a chain of ``<use>`` that fans out
    ten times per level is refused after a few thousand steps instead of being
    expanded to millions of shapes.

    Raises:
        ValidationFailed: more than :data:`MAX_SVG_ELEMENTS`, deeper than
            :data:`MAX_SVG_DEPTH`, or a reference cycle.
    """
    by_id = {el.get("id"): el for el in root.iter() if el.get("id")}
    counted: dict[int, int] = {}

    def count(el: ET.Element, path: tuple[int, ...]) -> int:
        key = id(el)
        if key in counted:
            return counted[key]
        if key in path or len(path) >= MAX_SVG_DEPTH:  # a cycle, or no logo is this deep
            raise _problem(MSG_SVG_COMPLEX)
        path = (*path, key)
        total = 1
        for target in (by_id.get(ref) for ref in _fragment_refs(el)):
            if target is not None:
                total += count(target, path)
        for child in el:
            total += count(child, path)
            if total > MAX_SVG_ELEMENTS:
                break
        if total > MAX_SVG_ELEMENTS:
            raise _problem(MSG_SVG_COMPLEX)
        counted[key] = total
        return total

    return count(root, ())


def _svg_length(value: str | None) -> float | None:
    match = _LENGTH_RE.match(value or "")
    return float(match.group(1)) if match else None


def _svg_aspect(root: ET.Element) -> tuple[float, float]:
    """Intrinsic width and height of an SVG (viewBox first, then width/height)."""
    box = (root.get("viewBox") or "").replace(",", " ").split()
    if len(box) == 4:
        try:
            w, h = float(box[2]), float(box[3])
        except ValueError:
            w = h = 0.0
        if w > 0 and h > 0:
            return w, h
    w, h = _svg_length(root.get("width")), _svg_length(root.get("height"))
    if w and h:
        return w, h
    raise _problem(MSG_SVG_SIZE)


def _sanitize_svg(data: bytes) -> tuple[bytes, float, float]:
    """The SVG re-serialised without comments and processing instructions.

    Raises:
        ValidationFailed: not well-formed, a DTD or entity, not an ``<svg>``, or unsafe.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise _problem(MSG_SVG_UNSAFE) from None
    except Exception:  # noqa: BLE001 - ParseError and friends
        raise _problem(MSG_BROKEN) from None
    if _local(root.tag) != "svg":
        raise _problem(MSG_BROKEN)
    if _svg_unsafe(root):
        raise _problem(MSG_SVG_UNSAFE)
    _check_svg_work(root)
    width, height = _svg_aspect(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), width, height


def _rasterize_svg(svg: bytes, width: float, height: float) -> np.ndarray:
    scale = SVG_RASTER_SIDE / max(width, height)
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    if min(out_w, out_h) < 8:  # a hairline SVG: nothing to make icons of
        raise _problem(MSG_SMALL)
    try:
        png = svg_raster.rasterize(svg, out_w, out_h, timeout=SVG_RASTER_SECONDS)
    except svg_raster.RasterTimeout:
        raise _problem(MSG_SVG_SLOW) from None
    except svg_raster.RasterFailed:  # cairosvg refuses or fails: the SVG is unusable
        raise _problem(MSG_BROKEN) from None
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise _problem(MSG_BROKEN)
    return img


@dataclass(frozen=True)
class _Checked:
    kind: str
    image: np.ndarray  # BGRA uint8
    original: bytes  # what is kept (the sanitised text for SVG)


def check_upload(data: bytes, filename: str) -> _Checked:
    """Validate an upload and decode it (BGRA); see the module docstring.

    Raises:
        ValidationFailed: with an Indonesian message under ``file``.
    """
    if not data:
        raise _problem(MSG_EMPTY)
    if len(data) > MAX_BYTES:
        raise _problem(MSG_TOO_BIG)
    declared = _declared(filename)
    if declared is None:
        raise _problem(MSG_TYPE)
    kind = _sniff(data)
    if kind is None:
        raise _problem(f"{MSG_TYPE} Isi file ini bukan gambar.")
    if kind != declared:
        raise _problem(f"Isi file tidak sesuai dengan jenisnya: file bernama "
                       f"{KIND_LABELS[declared]} tetapi berisi {KIND_LABELS[kind]}.")
    if kind == "svg":
        clean, width, height = _sanitize_svg(data)
        image = _rasterize_svg(clean, width, height)
        return _Checked(kind, _to_bgra(image), clean)
    width, height = _raster_size(data, kind)
    _check_dimensions(width, height)
    # JPEG has no alpha; IMREAD_COLOR also applies its EXIF orientation.
    flags = cv2.IMREAD_COLOR if kind == "jpeg" else cv2.IMREAD_UNCHANGED
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise _problem(MSG_BROKEN)
    if image.shape[1] > MAX_SIDE or image.shape[0] > MAX_SIDE:
        raise _problem(MSG_PIXELS)
    return _Checked(kind, _to_bgra(image), data)


# --- opencv pipeline -----------------------------------------------------------------------


def _to_bgra(img: np.ndarray) -> np.ndarray:
    """Any decoded image as 8-bit BGRA."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    if channels == 2:  # grey + alpha
        bgra = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGRA)
        bgra[:, :, 3] = img[:, :, 1]
        return bgra
    return img[:, :, :4].copy()


def trim_transparent(img: np.ndarray, threshold: int = 8) -> np.ndarray:
    """Crop transparent borders.

    Raises:
        ValidationFailed: the image is transparent everywhere.
    """
    mask = img[:, :, 3] > threshold
    if not mask.any():
        raise _problem(MSG_BLANK)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def resize_bgra(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with premultiplied alpha (no dark fringes); INTER_AREA when shrinking."""
    width, height = max(1, width), max(1, height)
    shrinking = width <= img.shape[1] and height <= img.shape[0]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    f = img.astype(np.float32)
    alpha = f[:, :, 3:4] / 255.0
    f[:, :, :3] *= alpha
    r = cv2.resize(f, (width, height), interpolation=interp)
    if r.ndim == 2:
        r = r[:, :, None]
    a = np.clip(r[:, :, 3:4], 0, 255) / 255.0
    r[:, :, :3] = np.where(a > 1e-4, r[:, :, :3] / np.maximum(a, 1e-4), 0)
    r[:, :, 3:4] = a * 255.0
    return np.clip(r + 0.5, 0, 255).astype(np.uint8)


def _composite(canvas: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    """Draw ``img`` over ``canvas`` at (x, y), "over" operator, in place."""
    h, w = img.shape[:2]
    dst = canvas[y:y + h, x:x + w].astype(np.float32) / 255.0
    src = img.astype(np.float32) / 255.0
    sa, da = src[:, :, 3:4], dst[:, :, 3:4]
    out_a = sa + da * (1 - sa)
    rgb = (src[:, :, :3] * sa + dst[:, :, :3] * da * (1 - sa)) / np.maximum(out_a, 1e-6)
    rgb = np.where(out_a > 1e-6, rgb, 0)
    out = np.concatenate([rgb, out_a], axis=2)
    canvas[y:y + h, x:x + w] = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


def _fit(w: int, h: int, box_w: float, box_h: float) -> tuple[int, int]:
    scale = min(box_w / w, box_h / h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def place_on_square(logo: np.ndarray, size: int, *, fill: float = 1.0,
                    background: tuple[int, int, int] | None = None,
                    safe_diameter: float | None = None) -> np.ndarray:
    """The logo centred on a ``size`` square.

    Args:
        logo: Trimmed BGRA logo.
        size: Side of the square in pixels.
        fill: Share of the side the logo's box may use.
        background: Solid BGR background, or ``None`` for transparent.
        safe_diameter: When set, the logo's bounding box must fit inside a centred
            circle of this share of the side (maskable icons).
    """
    h, w = logo.shape[:2]
    tw, th = _fit(w, h, size * fill, size * fill)
    if safe_diameter is not None:
        diagonal = (w * w + h * h) ** 0.5
        scale = min(tw / w, size * safe_diameter / diagonal)
        tw, th = max(1, int(w * scale)), max(1, int(h * scale))
    canvas = np.zeros((size, size, 4), np.uint8)
    if background is not None:
        canvas[:, :, :3] = background
        canvas[:, :, 3] = 255
    scaled = resize_bgra(logo, tw, th)
    _composite(canvas, scaled, (size - tw) // 2, (size - th) // 2)
    return canvas


def hex_to_bgr(color: str) -> tuple[int, int, int]:
    """``#RRGGBB`` as an opencv BGR tuple."""
    text = settings_service.normalize_hex_color(color or "") or "#3B82F6"
    r, g, b = (int(text[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


def corner_color(img: np.ndarray) -> tuple[int, int, int] | None:
    """The logo's own background colour: when all four corners are opaque and alike."""
    h, w = img.shape[:2]
    k = max(1, min(h, w) // 50)
    patches = [img[:k, :k], img[:k, w - k:], img[h - k:, :k], img[h - k:, w - k:]]
    if any(int(p[:, :, 3].min()) < 250 for p in patches):
        return None
    means = np.array([p[:, :, :3].reshape(-1, 3).mean(axis=0) for p in patches])
    if float(np.ptp(means, axis=0).max()) > 24:
        return None
    b, g, r = (int(round(v)) for v in means.mean(axis=0))
    return b, g, r


def icon_background(img: np.ndarray, fallback_hex: str) -> tuple[int, int, int]:
    """Solid background for maskable / apple-touch icons.

    The logo's own background when it has one; otherwise the fallback (splash)
    colour, or white when the logo's visible colour is too close to it.
    """
    own = corner_color(img)
    if own is not None:
        return own
    fallback = hex_to_bgr(fallback_hex)
    visible = img[:, :, 3] > 128
    if visible.any():
        mean = img[:, :, :3][visible].mean(axis=0)
        if float(np.linalg.norm(mean - np.array(fallback, np.float32))) < 60:
            return 255, 255, 255
    return fallback


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:  # pragma: no cover - opencv always encodes PNG
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _webp(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 90])
    if not ok:  # pragma: no cover
        raise RuntimeError("WebP encoding failed")
    return buf.tobytes()


def render_outputs(image: np.ndarray, target: str, background_hex: str,
                   ) -> tuple[dict[str, tuple[str, bytes]], tuple[int, int]]:
    """Every file of one upload: ``{setting key: (name stem, bytes)}`` and the logo size."""
    logo = trim_transparent(image)
    h, w = logo.shape[:2]
    if max(h, w) > LOGO_MAX_SIDE:
        tw, th = _fit(w, h, LOGO_MAX_SIDE, LOGO_MAX_SIDE)
        page_logo = resize_bgra(logo, tw, th)
    else:
        page_logo = logo
    out: dict[str, tuple[str, bytes]] = {
        TARGETS[target]: (target, _webp(page_logo)),
    }
    if target == "logo":
        own = corner_color(image)
        solid = icon_background(image, background_hex)
        out["favicon_url"] = ("favicon-32", _png(place_on_square(logo, 32, background=own)))
        out["icon_192_url"] = ("icon-192", _png(place_on_square(logo, 192, fill=0.9,
                                                                background=own)))
        out["icon_512_url"] = ("icon-512", _png(place_on_square(logo, 512, fill=0.9,
                                                                background=own)))
        out["icon_maskable_url"] = ("icon-maskable-512", _png(place_on_square(
            logo, 512, background=solid, safe_diameter=0.8)))
        out["apple_touch_icon_url"] = ("apple-touch-icon", _png(place_on_square(
            logo, 180, fill=0.8, background=solid)))
    return out, (page_logo.shape[1], page_logo.shape[0])


# --- use cases -----------------------------------------------------------------------------


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValidationFailed({"target": "Pilih logo atau logo splash."})


def upload_logo(actor: Actor, data: bytes, filename: str, *,
                target: str = "logo") -> LogoUpload:
    """Check an uploaded logo, make its icons and switch the settings to them.

    Args:
        actor: The superadmin.
        data: The uploaded file's bytes.
        filename: Its name as uploaded (the extension must match the content).
        target: ``logo`` (logo, favicon and app icons) or ``splash`` (splash logo only).

    Returns:
        The new URLs and what changed.

    Raises:
        ValidationFailed: the file is refused (message under ``file``).
    """
    require_superadmin(actor)
    _check_target(target)
    checked = check_upload(data, filename)
    background = settings_service.get_values(["splash_bg_color"])["splash_bg_color"]
    outputs, (width, height) = render_outputs(checked.image, target, background)
    digest = hashlib.sha256()
    for part in (PIPELINE_VERSION.encode(), target.encode(), background.encode(), data):
        digest.update(part)
    sha = digest.hexdigest()[:12]

    directory = branding_dir()
    directory.mkdir(parents=True, exist_ok=True)
    urls: dict[str, str] = {}
    created: list[Path] = []
    try:
        for key, (stem, blob) in outputs.items():
            ext = "webp" if key in TARGETS.values() else "png"
            name = f"{stem}-{sha}.{ext}"
            if _write_new(directory / name, blob):
                created.append(directory / name)
            urls[key] = URL_PREFIX + name
        original = f"{target}-original-{sha}.{ORIGINAL_EXT[checked.kind]}"
        if _write_new(directory / original, checked.original):
            created.append(directory / original)
        with unit_of_work(actor) as uow:
            changes = settings_service.store_values(uow.session, urls)
            uow.audit("settings.logo_upload", "settings", None, target=target,
                      filename=(filename or "")[:200], kind=checked.kind, bytes=len(data),
                      width=width, height=height, original=URL_PREFIX + original,
                      changes=changes)
    except BaseException:
        for path in created:  # nothing half-done stays visible
            path.unlink(missing_ok=True)
        raise
    log.info("branding upload target=%s kind=%s sha=%s", target, checked.kind, sha)
    return LogoUpload(target=target, kind=checked.kind, width=width, height=height,
                      urls=urls, changes=changes)


def reset_logo(actor: Actor, target: str = "logo") -> dict[str, dict]:
    """Back to the shipped logo (and icons) or, for ``splash``, to "same as the logo".

    Returns:
        What changed, ``{key: {from, to}}``.
    """
    require_superadmin(actor)
    _check_target(target)
    keys = (TARGETS[target],) if target == "splash" else ("logo_url", *ICON_KEYS)
    with unit_of_work(actor) as uow:
        changes = settings_service.store_values(uow.session, dict.fromkeys(keys, ""))
        if changes:
            uow.audit("settings.logo_reset", "settings", None, target=target,
                      changes=changes)
        return changes


def referenced_hashes() -> set[str]:
    """Content hashes of the files the settings point at (their originals go with them)."""
    values = settings_service.get_values(list(REFERENCE_KEYS))
    hashes = set()
    for url in values.values():
        if url and url.startswith(URL_PREFIX):
            match = FILENAME_RE.match(url[len(URL_PREFIX):])
            if match:
                hashes.add(match.group(1))
    return hashes


def prune_unreferenced(actor: Actor, *, min_age_seconds: int = PRUNE_AGE_SECONDS) -> int:
    """Delete branding files no setting refers to, older than a day (and stray temp files).

    A file is kept while any file of the same upload (same hash) is referenced, so
    the original stays with its icons.

    Returns:
        How many files were removed.
    """
    require_superadmin(actor)
    referenced = referenced_hashes()

    def keep(path: Path) -> bool:
        match = FILENAME_RE.match(path.name)
        if match:
            return match.group(1) in referenced
        # Not a pipeline output: only our own interrupted writes may go.
        return not path.name.endswith((".part", ".tmp"))

    removed = [p.name for p in storage.delete_old_files(
        branding_dir(), time.time() - min_age_seconds, keep=keep, recursive=False)]
    if removed:
        with unit_of_work(actor) as uow:
            uow.audit("settings.branding_prune", "settings", None, files=removed[:100],
                      count=len(removed))
    return len(removed)
