"""The transfer-slip photo pipeline on generated images, with expected outcomes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fibernode.services import proof_images
from fibernode.services.proof_images import ImageRejected
from tests.services import proof_image_data as gen

STEPS_OF_A_READY_PHOTO = ["decode", "detect", "warp", "deskew", "quality", "contrast",
                          "resize", "encode"]


def decoded(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def header_band_is_on_top(img: np.ndarray) -> bool:
    """The slip's blue header is the top band of the image (upright, not upside down)."""
    h = img.shape[0]
    top, bottom = img[: h // 12], img[-h // 12:]
    blue = lambda band: float(band[..., 0].mean() - band[..., 2].mean())  # noqa: E731
    return blue(top) > 40 and blue(bottom) < 10


@pytest.mark.parametrize("angle", [12.0, -5.0, 0.0])
def test_rotated_and_warped_slip_is_found_straightened_and_ready(angle):
    result = proof_images.process(gen.encode(gen.photographed_slip(angle)))
    assert result.status == "ready", result.steps
    assert [s.step for s in result.steps] == STEPS_OF_A_READY_PHOTO
    assert all(s.outcome == "ok" and s.duration_ms >= 0 for s in result.steps)
    # The quad found is the slip's real corners (within a few pixels of 1200 × 1600).
    assert result.document_found
    expected = gen.slip_corners(angle)
    assert np.abs(np.array(result.quad) - expected).max() < 12, result.quad
    out = decoded(result.jpeg)
    h, w = out.shape[:2]
    assert (w, h) == (result.processed_width, result.processed_height)
    assert max(w, h) <= proof_images.OUTPUT_LONG_SIDE
    # Upright rectangle of the slip's proportions (600 × 900), header on top …
    assert abs(w / h - gen.SLIP_W / gen.SLIP_H) < 0.03
    assert header_band_is_on_top(out)
    # … with its text lines level, and no table left around it.
    assert abs(proof_images.estimate_skew(out)) < 0.5
    bottom = np.concatenate([out[-14:-4, 4:14], out[-14:-4, -14:-4]])
    assert bottom.mean() > 200  # white paper in the bottom corners, not brown wood
    top = np.concatenate([out[4:14, 4:14], out[4:14, -14:-4]]).reshape(-1, 3).mean(axis=0)
    assert top[0] > top[2] + 40  # the blue header in the top corners


def test_full_frame_screenshot_keeps_the_whole_image():
    shot = gen.screenshot()
    result = proof_images.process(gen.encode(shot, ".png"))
    assert result.status == "ready"
    assert result.document_found is False
    assert (result.processed_width, result.processed_height) == (720, 1080)


def test_small_skew_without_visible_edges_is_levelled():
    tilted = proof_images.rotate(gen.screenshot(), 4.0)
    result = proof_images.process(gen.encode(tilted))
    assert result.status == "ready"
    assert result.skew_angle == pytest.approx(-4.0, abs=0.5)
    assert abs(proof_images.estimate_skew(decoded(result.jpeg))) < 0.5


def test_big_photo_is_reduced_to_1600_px():
    big = cv2.resize(gen.photographed_slip(), (2400, 3200), interpolation=cv2.INTER_CUBIC)
    result = proof_images.process(gen.encode(big))
    assert result.status == "ready"
    assert max(result.processed_width, result.processed_height) <= 1600
    assert (result.width, result.height) == (2400, 3200)


def test_blurred_slip_is_rejected_as_blurry():
    result = proof_images.process(gen.encode(gen.blurred_slip()))
    assert result.status == "rejected"
    assert result.reason == "Foto buram, silakan ulangi"
    assert result.blur_score < proof_images.BLUR_THRESHOLD
    assert result.jpeg == b""  # nothing processed to use
    assert result.steps[-1].step == "quality" and result.steps[-1].outcome == "flagged"


def test_sharp_slip_scores_far_above_the_blur_threshold():
    sharp = proof_images.process(gen.encode(gen.photographed_slip()))
    assert sharp.blur_score > 5 * proof_images.BLUR_THRESHOLD


def test_nearly_blank_frame_is_rejected_as_blank():
    result = proof_images.process(gen.encode(gen.blank_frame()))
    assert result.status == "rejected"
    assert result.reason == "Foto hampir kosong, silakan ulangi"
    assert result.blank_score < proof_images.BLANK_STDDEV


def test_random_noise_is_rejected():
    result = proof_images.process(gen.encode(gen.noise_frame(), ".png"))
    assert result.status == "rejected"
    assert "silakan ulangi" in result.reason


def test_undecodable_bytes_fail_at_the_decode_step():
    broken = gen.encode(gen.slip())[:200]  # a JPEG header with the rest missing
    result = proof_images.process(broken)
    assert result.status == "failed"
    assert result.steps[-1].step == "decode" and result.steps[-1].outcome == "error"


# --- upload checks -------------------------------------------------------------------------


@pytest.mark.parametrize(("ext", "mime"), [(".jpg", "image/jpeg"), (".png", "image/png"),
                                           (".webp", "image/webp")])
def test_accepted_types_by_content(ext, mime):
    info = proof_images.inspect_upload(gen.encode(gen.slip(), ext))
    assert (info.mime, info.width, info.height) == (mime, 600, 900)


@pytest.mark.parametrize("data", [b"%PDF-1.7 not a photo", b"GIF89a\x01\x00\x01\x00",
                                  b"nama,telepon\nBudi,0812\n", b"MZ\x90\x00binary"])
def test_non_images_are_rejected_with_a_clear_message(data):
    with pytest.raises(ImageRejected, match="bukan gambar"):
        proof_images.inspect_upload(data)


def test_a_renamed_text_file_is_not_an_image_whatever_its_name():
    with pytest.raises(ImageRejected):
        proof_images.inspect_upload(b"<html>slip.jpg</html>")


def test_heic_is_refused_with_a_hint_to_send_jpeg():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(ImageRejected, match="JPEG"):
        proof_images.inspect_upload(heic)


def test_empty_and_oversized_files():
    with pytest.raises(ImageRejected, match="kosong"):
        proof_images.inspect_upload(b"")
    with pytest.raises(ImageRejected, match="10 MB"):
        proof_images.inspect_upload(b"\xff\xd8\xff" + b"\x00" * proof_images.MAX_BYTES)


def test_decompression_bomb_is_refused_from_its_header():
    bomb = gen.png_bomb(30_000, 30_000)
    assert len(bomb) < 200_000  # tiny on disk, 900 megapixels if decoded
    with pytest.raises(ImageRejected, match="megapiksel"):
        proof_images.inspect_upload(bomb)
    wide = gen.png_bomb(40_000, 10)  # few pixels, absurd side
    with pytest.raises(ImageRejected, match="megapiksel"):
        proof_images.inspect_upload(wide)


def test_corner_order_and_four_point_warp():
    pts = np.array([[90, 10], [10, 12], [12, 60], [88, 58]], np.float32)
    ordered = proof_images.order_corners(pts)
    assert ordered.tolist() == [[10, 12], [90, 10], [88, 58], [12, 60]]
    img = np.zeros((100, 100, 3), np.uint8)
    out = proof_images.four_point_warp(img, pts)
    assert out.shape[1] == pytest.approx(80, abs=2) and out.shape[0] == pytest.approx(50, abs=2)
