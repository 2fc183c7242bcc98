"""Image type from the bytes and size from the header, without decoding pixels."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from fibernode.services import image_headers


def encoded(ext: str) -> bytes:
    return cv2.imencode(ext, np.zeros((30, 40, 3), np.uint8))[1].tobytes()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("ext", "kind"), [(".png", "png"), (".jpg", "jpeg"), (".webp", "webp")])
def test_kind_and_size_of_real_images(ext, kind):
    data = encoded(ext)
    assert image_headers.raster_kind(data) == kind
    assert image_headers.header_size(data) == (kind, 40, 30)


def test_other_bytes_and_bombs():
    assert image_headers.raster_kind(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert image_headers.raster_kind(b"") is None
    with pytest.raises(image_headers.HeaderError) as broken:
        image_headers.header_size(b"\x89PNG\r\n\x1a\nnot really")
    assert broken.value.bomb is False
    with pytest.raises(image_headers.HeaderError) as bomb:
        image_headers.header_size(png_claiming(30_000, 30_000))
    assert bomb.value.bomb is True
