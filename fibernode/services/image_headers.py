"""What an uploaded image really is, read from its first bytes and header only.

Shared by the logo upload and the payment-proof photos: the type comes from the
content (never the file name), and the size from the header before any pixel is
decoded, so a small file claiming a huge image (a decompression bomb) is refused
without being expanded.
"""

from __future__ import annotations

import io
import warnings


class HeaderError(Exception):
    """The header cannot be read (``bomb``: Pillow refused it as a decompression bomb)."""

    def __init__(self, bomb: bool = False):
        super().__init__("decompression bomb" if bomb else "unreadable image header")
        self.bomb = bomb


def raster_kind(data: bytes) -> str | None:
    """``png``, ``jpeg`` or ``webp`` from the magic bytes, else ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def header_size(data: bytes) -> tuple[str, int, int]:
    """The format Pillow recognises (lower case), width and height, from the header only.

    Raises:
        HeaderError: unreadable, or larger than Pillow's own bomb limit.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns before its bomb error
            with Image.open(io.BytesIO(data)) as img:  # lazy: reads the header
                return (img.format or "").lower(), int(img.width), int(img.height)
    except Image.DecompressionBombError:
        raise HeaderError(bomb=True) from None
    except Exception:  # noqa: BLE001 - any header Pillow cannot read is a broken file
        raise HeaderError() from None
