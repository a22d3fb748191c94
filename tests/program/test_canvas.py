from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from orchestrator.program.canvas import Canvas
from orchestrator.program.graphics import pixels, planes


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((height, width, 3), rgb, np.uint8), format="rgb24")


@pytest.mark.parametrize(
    ("size", "expect_bars"),
    [((1280, 720), None), ((640, 480), "pillar"), ((720, 1280), "pillar"), ((1920, 800), "letter")],
)
def test_any_size_fits_the_program_keeping_its_aspect(
    size: tuple[int, int], expect_bars: str | None
) -> None:
    frame = Canvas(1280, 720).fit(solid(*size, (230, 230, 230)))
    assert (frame.width, frame.height, frame.format.name) == (1280, 720, "yuv420p")
    y, _, _ = planes(pixels(frame), 1280, 720)
    centre = int(y[360, 640])
    left, top = int(y[360, 2]), int(y[2, 640])
    assert centre > 180
    if expect_bars == "pillar":
        assert left == 16 and top > 180  # black bars left and right only
    elif expect_bars == "letter":
        assert top == 16 and left > 180
    else:
        assert left > 180 and top > 180


def test_anamorphic_pixels_are_stretched_to_their_display_aspect() -> None:
    # 720x576 with 16:15 pixels displays as 4:3 (768x576): pillarboxed in 16:9.
    frame = Canvas(1280, 720).fit(solid(720, 576, (230, 230, 230)), sar=Fraction(16, 15))
    y, _, _ = planes(pixels(frame), 1280, 720)
    row = y[360]
    lit = np.flatnonzero(row > 100)
    assert abs((lit[-1] - lit[0] + 1) - 960) <= 4  # 720 * 4/3
