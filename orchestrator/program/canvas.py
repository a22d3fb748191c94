"""Fit any source picture into the program frame, keeping its aspect ratio."""

from __future__ import annotations

from fractions import Fraction

import av
from av.video.reformatter import Interpolation, VideoReformatter

from orchestrator.program.graphics import black, pixels, planes


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


class Canvas:
    """Scales frames to fit ``width`` x ``height`` (letter- or pillar-boxed in black).

    Not thread-safe: each decoding thread owns one (its scaler context is cached).
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._reformatter = VideoReformatter()

    def fit(self, frame: av.VideoFrame, sar: Fraction | None = None) -> av.VideoFrame:
        """Return ``frame`` as program-size yuv420p; ``sar`` is the source's pixel aspect."""
        width, height = self.width, self.height
        display_w = frame.width * (float(sar) if sar else 1.0)
        scale = min(width / display_w, height / frame.height)
        fit_w, fit_h = (
            min(width, _even(display_w * scale)),
            min(height, _even(frame.height * scale)),
        )
        scaled = self._reformatter.reformat(
            frame,
            width=fit_w,
            height=fit_h,
            format="yuv420p",
            interpolation=Interpolation.BILINEAR,
        )
        if (fit_w, fit_h) == (width, height):
            return scaled
        picture = black(width, height)
        y, u, v = planes(picture, width, height)
        sy, su, sv = planes(pixels(scaled), fit_w, fit_h)
        left, top = (width - fit_w) // 2 // 2 * 2, (height - fit_h) // 2 // 2 * 2
        y[top : top + fit_h, left : left + fit_w] = sy
        u[top // 2 : (top + fit_h) // 2, left // 2 : (left + fit_w) // 2] = su
        v[top // 2 : (top + fit_h) // 2, left // 2 : (left + fit_w) // 2] = sv
        return av.VideoFrame.from_ndarray(picture, format="yuv420p")
