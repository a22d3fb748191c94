"""A browser speaker's input level in dBFS (the green room's and the console's meter,
jalsa_speaker_audio_level_dbfs): the peak of their last second, on air or waiting."""

from __future__ import annotations

import av
import numpy as np
import pytest
from waiting import wait_for

from orchestrator.ingest.webrtc import Appearance, WebRTCSource


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(level: float) -> av.AudioFrame:
    """20 ms of packed s16 stereo at 48 kHz, as aiortc decodes Opus."""
    data = np.full((1, 960 * 2), int(level * 32767), dtype=np.int16)
    out = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
    out.sample_rate = 48000
    return out


@pytest.mark.parametrize("on_air", [True, False], ids=["on air", "green room"])
def test_level_dbfs_is_the_last_seconds_peak(on_air: bool) -> None:
    clock = Clock()
    source = WebRTCSource(
        "guest",
        Appearance("Guest", ""),
        width=320,
        height=180,
        full_rate=lambda: on_air,
        clock=clock,
    )
    source.start()
    try:
        assert source.snapshot().level_dbfs == -100.0  # nothing heard yet
        for _ in range(10):
            source.offer_audio(frame(0.5))
        level = wait_for(
            lambda: (v := source.snapshot().level_dbfs) > -10 and v, 3, "the level metered"
        )
        assert level == pytest.approx(-6.0, abs=0.3)
        # A speaker whose audio stops (a muted phone that sends nothing) reads silence
        # once a second has passed without any.
        clock.now += 1.0
        assert source.snapshot().level_dbfs == -100.0
    finally:
        source.stop()
        source.join(2)
