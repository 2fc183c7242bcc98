"""Generated photos of transfer slips for the proof-image tests (nothing binary is committed).

A "slip" is a white receipt with a dark bank-like header bar and lines of dark text
blocks, photographed on a darker, textured table: rotated ~12° and perspective-warped,
as a phone held at an angle sees it. Variants: heavily blurred, nearly blank, noise.
"""

from __future__ import annotations

import cv2
import numpy as np

SLIP_W, SLIP_H = 600, 900
FRAME_W, FRAME_H = 1200, 1600


def slip(seed: int = 1) -> np.ndarray:
    """The flat slip itself (BGR, white with a header and text lines)."""
    rng = np.random.default_rng(seed)
    img = np.full((SLIP_H, SLIP_W, 3), 250, np.uint8)
    cv2.rectangle(img, (0, 0), (SLIP_W, 110), (140, 60, 20), -1)  # bank-blue header
    cv2.putText(img, "BANK NUSANTARA", (30, 72), cv2.FONT_HERSHEY_DUPLEX, 1.5,
                (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(img, "BUKTI TRANSFER", (30, 170), cv2.FONT_HERSHEY_DUPLEX, 1.2,
                (30, 30, 30), 2, cv2.LINE_AA)
    y = 230
    labels = ["Tanggal", "No. Ref", "Dari", "Ke", "Bank", "Rekening", "Jumlah", "Berita",
              "Status", "Biaya"]
    for label in labels:
        cv2.putText(img, label, (30, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (40, 40, 40), 2,
                    cv2.LINE_AA)
        value = "".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"), 10))
        cv2.putText(img, value, (260, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2,
                    cv2.LINE_AA)
        y += 62
    cv2.putText(img, "Rp 150.000", (30, y + 20), cv2.FONT_HERSHEY_DUPLEX, 1.6,
                (20, 20, 20), 3, cv2.LINE_AA)
    return img


def table_background(seed: int = 2) -> np.ndarray:
    """A darker wood-like textured background, the size of the photo."""
    rng = np.random.default_rng(seed)
    base = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    base[:] = (45, 70, 95)
    grain = rng.normal(0, 12, (FRAME_H // 8, FRAME_W // 8)).astype(np.float32)
    grain = cv2.resize(grain, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)
    stripes = (np.sin(np.linspace(0, 60, FRAME_W))[None, :] * 8).astype(np.float32)
    noise = rng.normal(0, 5, (FRAME_H, FRAME_W)).astype(np.float32)
    texture = grain + stripes + noise
    out = base.astype(np.float32) + texture[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def slip_corners(angle: float = 12.0) -> np.ndarray:
    """Where the slip's corners land in the photo (tl, tr, br, bl): rotated, then a
    perspective skew (the top edge farther away, so narrower)."""
    cx, cy = FRAME_W / 2, FRAME_H / 2
    w, h = SLIP_W * 1.15, SLIP_H * 1.15
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]],
                   np.float32)
    pts[0, 0] += 45  # top edge narrower: seen from below
    pts[1, 0] -= 45
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    return (pts @ rot.T + [cx, cy]).astype(np.float32)


def photographed_slip(angle: float = 12.0, seed: int = 1) -> np.ndarray:
    """The slip rotated and perspective-warped onto the textured table."""
    flat = slip(seed)
    src = np.array([[0, 0], [SLIP_W, 0], [SLIP_W, SLIP_H], [0, SLIP_H]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, slip_corners(angle))
    warped = cv2.warpPerspective(flat, matrix, (FRAME_W, FRAME_H))
    mask = cv2.warpPerspective(np.full((SLIP_H, SLIP_W), 255, np.uint8), matrix,
                               (FRAME_W, FRAME_H))
    photo = table_background()
    photo[mask > 127] = warped[mask > 127]
    # A touch of sensor noise and uneven light, like a real phone photo.
    rng = np.random.default_rng(seed + 10)
    light = np.linspace(0.85, 1.0, FRAME_W, dtype=np.float32)[None, :, None]
    noisy = photo.astype(np.float32) * light + rng.normal(0, 3, photo.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def blurred_slip() -> np.ndarray:
    """The same photo, badly out of focus (or shaken)."""
    return cv2.GaussianBlur(photographed_slip(), (0, 0), 9)


def blank_frame() -> np.ndarray:
    """A nearly blank white frame (lens on paper, or an overexposed shot)."""
    rng = np.random.default_rng(3)
    img = np.full((FRAME_H, FRAME_W, 3), 242, np.float32) + rng.normal(0, 1.5, (FRAME_H,
                                                                                FRAME_W, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def noise_frame() -> np.ndarray:
    """Pure random noise (a covered lens at high ISO, or garbage)."""
    rng = np.random.default_rng(4)
    return rng.integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)


def screenshot() -> np.ndarray:
    """A straight mobile-banking screenshot: the slip fills the whole frame, no table."""
    return cv2.resize(slip(5), (720, 1080), interpolation=cv2.INTER_AREA)


def encode(img: np.ndarray, ext: str = ".jpg", quality: int = 92) -> bytes:
    """The image as file bytes (JPEG by default)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    return buf.tobytes()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # One compressed row of zeros is enough to make a well-formed start.
    idat = zlib.compress(b"\x00" * (width * 3 + 1))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))
