"""``source = "testsrc"``: a synthetic speaker, a coloured card with a moving bar and a tone.

It needs no thread: the program asks for a picture and samples on its frame clock and
gets them computed on the spot, so a test pattern is always READY.
"""

from __future__ import annotations

import functools
import math
import time

import av
import numpy as np

from orchestrator.program.audio import SAMPLE_RATE, Samples
from orchestrator.program.graphics import RGB, Plane, card, planes
from orchestrator.program.source import Source, SourceSnapshot
from orchestrator.rundown import SourceState

# Distinct, saturated colours so a viewer (and a test) can tell the speakers apart.
PALETTE: tuple[RGB, ...] = ((200, 40, 40), (40, 90, 200), (30, 150, 60), (190, 140, 20))
TONES_HZ: tuple[float, ...] = (440.0, 554.37, 659.25, 329.63)


class TestPattern(Source):
    __test__ = False  # not a pytest class

    def __init__(
        self, name: str, *, width: int, height: int, index: int = 0, title: str = ""
    ) -> None:
        super().__init__(name)
        self._width, self._height = width, height
        self._background = _background(width, height, index % len(PALETTE), name, title)
        self._tone = TONES_HZ[index % len(TONES_HZ)]
        self._sample = 0
        self._frames = 0
        self._started = time.monotonic()

    def start(self) -> None:
        self._started = time.monotonic()

    def stop(self) -> None:
        pass

    @property
    def state(self) -> SourceState:
        return SourceState.READY

    def video(self) -> av.VideoFrame:
        picture = self._background.copy()
        y, _, _ = planes(picture, self._width, self._height)
        # A bar sweeping along the bottom edge shows the picture is live.
        elapsed = time.monotonic() - self._started
        bar_w = self._width // 16
        x = int((elapsed % 4.0) / 4.0 * (self._width - bar_w))
        y[int(self._height * 0.92) :, x : x + bar_w] = 235
        self._frames += 1
        return av.VideoFrame.from_ndarray(picture, format="yuv420p")

    def audio(self, count: int) -> Samples:
        n = np.arange(self._sample, self._sample + count, dtype=np.float64)
        self._sample += count
        tone = 0.2 * np.sin(2 * math.pi * self._tone * n / SAMPLE_RATE)
        # A 100 ms pip at each second, like a studio clock, makes drift audible.
        tone *= np.where((n % SAMPLE_RATE) < SAMPLE_RATE // 10, 1.0, 0.35)
        return np.vstack((tone, tone)).astype(np.float32)

    def snapshot(self) -> SourceSnapshot:
        return SourceSnapshot(self.name, "testsrc", "testsrc", "ready", self._frames, 0, None)


@functools.lru_cache(maxsize=32)
def _background(width: int, height: int, colour: int, name: str, title: str) -> Plane:
    """The card, drawn once per speaker (an item taken on air opens at once); read-only:
    each frame draws on a copy."""
    picture = card(width, height, PALETTE[colour], name, title)
    picture.setflags(write=False)
    return picture
