"""Photos of transfer slips: upload checks and the opencv clean-up pipeline (pure, no DB).

:func:`inspect_upload` checks an uploaded file before anything is stored: its type
by magic bytes (JPEG, PNG, WebP; HEIC is refused with a hint to send JPEG, since
opencv cannot decode it), its size, and its pixel count read from the header
*before* decoding (a small file claiming 30,000 × 30,000 pixels is a decompression
bomb).

:func:`process` runs the steps on the stored bytes, each timed and logged:

1. ``decode`` — ``cv2.imdecode`` (EXIF orientation applied).
2. ``detect`` — the document: the largest 4-point contour (Canny, ``findContours``,
   ``approxPolyDP``) of a downscaled copy; when no clear quad is found, the largest
   bright region's ``minAreaRect``; when neither covers enough of the frame (a
   screenshot, or a slip filling the photo), the whole image is used.
3. ``warp`` — the four-point perspective transform (``getPerspectiveTransform`` /
   ``warpPerspective``) onto an upright rectangle.
4. ``deskew`` — the small remaining angle (±10°) from the text lines: the angle whose
   row projection of dark pixels is sharpest.
5. ``quality`` — on a normalised copy (long side 1000 px): nearly blank (low
   contrast and almost no edges), unreadable noise (edges everywhere), blurry
   (variance of the Laplacian). A failed check *flags* the photo: the caller marks
   it rejected and asks for a retake, and the processed file is not used.
6. ``contrast`` — CLAHE on the L channel (LAB).
7. ``resize`` — long side at most 1600 px.
8. ``encode`` — JPEG, quality 85.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from fibernode.services import image_headers

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 50 MP phone photo; more is refused before decoding
MAX_SIDE = 20_000
OUTPUT_LONG_SIDE = 1600
JPEG_QUALITY = 85
DETECT_LONG_SIDE = 1000
QUALITY_LONG_SIDE = 1000
MIN_DOCUMENT_AREA = 0.2  # of the frame
# Tuned on the generated slips (tests/services/proof_image_data.py): a sharp slip
# photo scores several hundred, slightly soft (sigma 2) ~36, sigma 3 ~12, sigma 9 ~2.
BLUR_THRESHOLD = 25.0
BLANK_STDDEV = 8.0  # grey levels
BLANK_EDGES = 0.002  # fraction of edge pixels
NOISE_EDGES = 0.30

BLURRY = "Foto buram, silakan ulangi"
BLANK = "Foto hampir kosong, silakan ulangi"
NOISY = "Foto tidak jelas (tidak tampak seperti bukti transfer), silakan ulangi"
NOT_AN_IMAGE = "File bukan gambar. Unggah foto JPG, PNG atau WebP."
HEIC = ("Format HEIC/HEIF belum didukung. Atur kamera ke JPEG (\"Paling Kompatibel\") "
        "atau kirim tangkapan layar, lalu unggah lagi.")
TOO_LARGE = f"Ukuran foto maksimal {MAX_BYTES // (1024 * 1024)} MB."
TOO_MANY_PIXELS = "Resolusi foto terlalu besar (maksimal 50 megapiksel)."
EMPTY = "File kosong."
UNREADABLE = "Gambar rusak atau tidak dapat dibaca."

MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                b"heif", b"avif", b"avis"}


class ImageRejected(ValueError):
    """An upload that is not an acceptable image; ``message`` is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class UploadInfo:
    """What the header of an accepted upload says."""

    kind: str  # jpeg, png, webp
    mime: str
    extension: str
    width: int
    height: int


@dataclass
class Step:
    """One logged step: name, ``ok`` / ``flagged`` / ``error``, milliseconds, detail."""

    step: str
    outcome: str
    duration_ms: int
    detail: str = ""


@dataclass
class Result:
    """What :func:`process` made of a photo.

    ``status`` is ``ready`` (``jpeg`` holds the processed image), ``rejected``
    (``reason`` says why, for the user) or ``failed`` (a step raised; its error is
    in the log).
    """

    status: str
    reason: str = ""
    jpeg: bytes = b""
    width: int = 0
    height: int = 0
    processed_width: int = 0
    processed_height: int = 0
    blur_score: float | None = None
    blank_score: float | None = None
    document_found: bool | None = None
    quad: list[list[float]] | None = None  # detected corners in the original (tl, tr, br, bl)
    skew_angle: float | None = None
    steps: list[Step] = field(default_factory=list)


# --- upload checks -------------------------------------------------------------------------


def sniff(data: bytes) -> str:
    """The image kind from the first bytes: ``jpeg``, ``png`` or ``webp``.

    Raises:
        ImageRejected: empty, HEIC/HEIF, or not an image we accept.
    """
    if not data:
        raise ImageRejected(EMPTY)
    if kind := image_headers.raster_kind(data):
        return kind
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        raise ImageRejected(HEIC)
    raise ImageRejected(NOT_AN_IMAGE)


def header_size(data: bytes) -> tuple[int, int]:
    """Width and height from the file header, without decoding the pixels.

    Raises:
        ImageRejected: the header cannot be read.
    """
    try:
        _fmt, width, height = image_headers.header_size(data)
    except image_headers.HeaderError as exc:
        raise ImageRejected(TOO_MANY_PIXELS if exc.bomb else UNREADABLE) from exc
    return width, height


def inspect_upload(data: bytes) -> UploadInfo:
    """Check an uploaded photo before it is stored.

    Raises:
        ImageRejected: not JPEG/PNG/WebP by its content, too big, or too many pixels.
    """
    if len(data) > MAX_BYTES:
        raise ImageRejected(TOO_LARGE)
    kind = sniff(data)
    width, height = header_size(data)
    if width <= 0 or height <= 0:
        raise ImageRejected(UNREADABLE)
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise ImageRejected(TOO_MANY_PIXELS)
    return UploadInfo(kind, MIME[kind], EXTENSIONS[kind], width, height)


# --- geometry ------------------------------------------------------------------------------


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    s = pts.sum(axis=1)
    d = np.diff(pts, axis=1).ravel()  # y - x
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)],
                     pts[np.argmax(d)]], dtype=np.float32)


def four_point_warp(image: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The quadrilateral ``corners`` of ``image`` straightened into an upright rectangle."""
    tl, tr, br, bl = order_corners(corners)
    width = int(round(max(np.linalg.norm(br - bl), np.linalg.norm(tr - tl))))
    height = int(round(max(np.linalg.norm(tr - br), np.linalg.norm(tl - bl))))
    width, height = max(width, 1), max(height, 1)
    dst = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]],
                   dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(np.array([tl, tr, br, bl]), dst)
    return cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)


def _scaled(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def detect_document(image: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The slip's four corners in ``image`` (original pixels), or ``None``, and how.

    Returns:
        ``(corners, method)`` with method ``quad`` (a clean 4-point contour),
        ``rect`` (the fallback minAreaRect) or ``none``.
    """
    small, scale = _scaled(image, DETECT_LONG_SIDE)
    smooth = cv2.GaussianBlur(small, (5, 5), 0)
    gray = _gray(smooth)
    frame_area = gray.shape[0] * gray.shape[1]
    # Edges of every colour channel: a blue bank header on a brown table differs in
    # colour far more than in brightness.
    channels = cv2.split(smooth) if smooth.ndim == 3 else [smooth]
    edges = np.zeros(gray.shape, np.uint8)
    for channel in channels:
        edges = cv2.bitwise_or(edges, cv2.Canny(channel, 50, 150))
    edges = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        area = cv2.contourArea(contour)
        if area < MIN_DOCUMENT_AREA * frame_area:
            break
        peri = cv2.arcLength(contour, True)
        approx = cv2.approxPolyDP(contour, 0.02 * peri, True)
        if len(approx) == 4 and cv2.isContourConvex(approx) \
                and area < 0.98 * frame_area:
            return order_corners(approx.reshape(4, 2) / scale), "quad"
    # Fallback: the paper is the brightest large region; its rotated bounding box.
    _, bright = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15)))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if contours:
        largest = max(contours, key=cv2.contourArea)
        area = cv2.contourArea(largest)
        x, y, w, h = cv2.boundingRect(largest)
        fh, fw = gray.shape
        margin = 0.02 * max(fw, fh)
        touching = sum((x <= margin, y <= margin, x + w >= fw - margin, y + h >= fh - margin))
        # A region running into two or more borders is part of a full-frame document
        # (a screenshot), not a sheet lying on a table: keep the whole image then.
        if MIN_DOCUMENT_AREA * frame_area <= area < 0.95 * frame_area and touching < 2:
            box = cv2.boxPoints(cv2.minAreaRect(largest))
            return order_corners(box / scale), "rect"
    return None, "none"


def estimate_skew(image: np.ndarray, max_angle: float = 10.0) -> float:
    """The small rotation (degrees, counter-clockwise positive) that levels the text lines.

    Dark pixels are projected onto rows for candidate angles; level text lines give
    the sharpest profile (largest variance). Coarse 0.5° steps, then 0.1° around the best.
    """
    small, _ = _scaled(image, 800)
    gray = _gray(small)
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if cv2.countNonZero(ink) < 0.002 * ink.size:
        return 0.0
    h, w = ink.shape
    center = (w / 2, h / 2)

    def score(angle: float) -> float:
        m = cv2.getRotationMatrix2D(center, angle, 1.0)
        rotated = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_NEAREST)
        return float(np.var(rotated.sum(axis=1, dtype=np.float64)))

    coarse = np.arange(-max_angle, max_angle + 0.01, 0.5)
    best = max(coarse, key=score)
    fine = np.arange(best - 0.5, best + 0.51, 0.1)
    return float(round(max(fine, key=score), 2))


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """``image`` rotated by ``angle`` degrees about its centre, same size, edges replicated."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)


def quality_scores(image: np.ndarray) -> dict[str, float]:
    """Blur (variance of the Laplacian), contrast (grey stddev) and edge density.

    All three are measured on a copy normalised to a long side of 1000 px.
    """
    h, w = image.shape[:2]
    scale = QUALITY_LONG_SIDE / max(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    gray = _gray(cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1
                            else cv2.INTER_CUBIC))
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 50, 150)
    return {
        "blur": float(cv2.Laplacian(gray, cv2.CV_64F).var()),
        "stddev": float(gray.std()),
        "edges": float(cv2.countNonZero(edges) / edges.size),
    }


def enhance_contrast(image: np.ndarray) -> np.ndarray:
    """CLAHE on the lightness channel (colours kept)."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lightness, a, b = cv2.split(lab)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return cv2.cvtColor(cv2.merge((clahe.apply(lightness), a, b)), cv2.COLOR_LAB2BGR)


def limit_size(image: np.ndarray, long_side: int = OUTPUT_LONG_SIDE) -> np.ndarray:
    """Reduce so the long side is at most ``long_side`` (never enlarges)."""
    return _scaled(image, long_side)[0]


# --- the pipeline --------------------------------------------------------------------------


class _Log:
    def __init__(self, result: Result):
        self.result = result

    def run(self, name: str, fn: Callable[[], tuple[Any, str, str]]) -> Any:
        """Run one step; ``fn`` returns ``(value, outcome, detail)``.

        Errors are logged as the step's ``error`` outcome and re-raised.
        """
        start = time.perf_counter()
        try:
            value, outcome, detail = fn()
        except Exception as exc:
            ms = int((time.perf_counter() - start) * 1000)
            self.result.steps.append(Step(name, "error", ms, f"{type(exc).__name__}: {exc}"))
            raise
        ms = int((time.perf_counter() - start) * 1000)
        self.result.steps.append(Step(name, outcome, ms, detail))
        return value


def process(data: bytes) -> Result:
    """Clean up a slip photo (see the module docstring); never raises.

    Returns:
        The result with every step's outcome and duration.
    """
    result = Result(status="failed")
    log = _Log(result)
    try:
        _run(data, result, log)
    except Exception as exc:  # noqa: BLE001 - recorded in the step log
        result.status = "failed"
        result.reason = result.reason or f"{type(exc).__name__}: {exc}"
    return result


def _run(data: bytes, result: Result, log: _Log) -> None:
    def decode():
        arr = np.frombuffer(data, dtype=np.uint8)
        img = cv2.imdecode(arr, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError("opencv tidak dapat membaca gambar")
        return img, "ok", f"{img.shape[1]}×{img.shape[0]} px"

    image = log.run("decode", decode)
    result.height, result.width = image.shape[:2]

    def detect():
        corners, method = detect_document(image)
        if corners is None:
            return None, "ok", "tepi dokumen tidak jelas: gambar utuh dipakai"
        result.quad = corners.round(1).tolist()
        label = "kontur 4 titik" if method == "quad" else "minAreaRect (cadangan)"
        return corners, "ok", f"dokumen ditemukan ({label})"

    corners = log.run("detect", detect)
    result.document_found = corners is not None

    def warp():
        if corners is None:
            return image, "ok", "dilewati (tanpa dokumen)"
        out = four_point_warp(image, corners)
        return out, "ok", f"perspektif diluruskan ke {out.shape[1]}×{out.shape[0]} px"

    image = log.run("warp", warp)

    def deskew():
        angle = estimate_skew(image)
        result.skew_angle = angle
        if abs(angle) < 0.2:
            return image, "ok", "sudah lurus"
        return rotate(image, angle), "ok", f"diputar {angle:+.1f}°"

    image = log.run("deskew", deskew)

    def quality():
        scores = quality_scores(image)
        result.blur_score = round(scores["blur"], 2)
        result.blank_score = round(scores["stddev"], 2)
        detail = (f"ketajaman {scores['blur']:.0f} (min {BLUR_THRESHOLD:.0f}), "
                  f"kontras {scores['stddev']:.1f}, tepi {scores['edges'] * 100:.2f}%")
        if scores["stddev"] < BLANK_STDDEV or (scores["stddev"] < 2.5 * BLANK_STDDEV
                                                and scores["edges"] < BLANK_EDGES):
            result.reason = BLANK
        elif scores["edges"] > NOISE_EDGES:
            result.reason = NOISY
        elif scores["blur"] < BLUR_THRESHOLD:
            result.reason = BLURRY
        return None, "flagged" if result.reason else "ok", detail

    log.run("quality", quality)
    if result.reason:
        result.status = "rejected"
        return

    image = log.run("contrast", lambda: (enhance_contrast(image), "ok", "CLAHE (kanal L)"))

    def resize():
        out = limit_size(image)
        return out, "ok", f"{out.shape[1]}×{out.shape[0]} px"

    image = log.run("resize", resize)
    result.processed_height, result.processed_width = image.shape[:2]

    def encode():
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError("JPEG tidak dapat ditulis")
        return buf.tobytes(), "ok", f"JPEG {len(buf) // 1024} KB"

    result.jpeg = log.run("encode", encode)
    result.status = "ready"
