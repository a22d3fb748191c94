"""The lower third blended only where it is drawn, premultiplied, straight into a new
frame, gives the picture the whole-band blend gave, bit for bit, and leaves the source's
frame (which may be shown again) as it was."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt
import pytest

from orchestrator.program.graphics import lower_third, lower_third_band, planes, rgb_to_yuv420

W, H = 1280, 720
Plane = npt.NDArray[np.uint8]


def _whole_band(picture: Plane, name: str, title: str) -> Plane:
    """The blend jalsa did before: (src * a + dst * (256 - a)) >> 8 over every pixel of
    the band, full width, at luma and at chroma (2x2-averaged alpha) resolution."""
    top, rgba = lower_third_band(W, H, name, title)
    band_h = rgba.shape[0]
    gy, gu, gv = planes(rgb_to_yuv420(rgba[:, :, :3]), W, band_h)
    alpha = rgba[:, :, 3].astype(np.uint16)
    alpha = alpha + (alpha >> 7)
    alpha_c = alpha.reshape(band_h // 2, 2, W // 2, 2).mean(axis=(1, 3)).astype(np.uint16)
    out = picture.copy()
    y, u, v = planes(out, W, H)
    for dst, src, a in (
        (y[top : top + band_h], gy, alpha),
        (u[top // 2 : (top + band_h) // 2], gu, alpha_c),
        (v[top // 2 : (top + band_h) // 2], gv, alpha_c),
    ):
        mixed = (src.astype(np.uint16) * a + dst.astype(np.uint16) * (256 - a)) >> 8
        dst[...] = mixed.astype(np.uint8)
    return out


@pytest.mark.parametrize(
    ("name", "title"),
    [("Ameer Ul Azeem", "Secretary General"), ("A", ""), ("W" * 80, "a title " * 20)],
)
def test_the_lower_third_is_the_whole_band_blend(name: str, title: str) -> None:
    picture = np.random.default_rng(7).integers(0, 256, (H * 3 // 2, W), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
    overlay = lower_third(W, H, name, title)
    out = overlay.over(frame)
    assert (out.width, out.height, out.format.name) == (W, H, "yuv420p")
    assert np.array_equal(out.to_ndarray(), _whole_band(picture, name, title))
    assert np.array_equal(frame.to_ndarray(), picture)  # the source's frame is untouched
    assert out.to_ndarray().tobytes() != picture.tobytes()  # something was drawn


def test_only_the_name_box_is_blended() -> None:
    overlay = lower_third(W, H, "Ameer Ul Azeem", "Secretary General")
    assert overlay.left == 0 and 0 < overlay.right < W // 2
