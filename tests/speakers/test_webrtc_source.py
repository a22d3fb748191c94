"""The WebRTC source: hand-off, state over time, rates, the audio-only card."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from orchestrator.ingest.webrtc import (
    HOLD_SECONDS,
    MEDIA_TIMEOUT,
    Appearance,
    Mailbox,
    WebRTCSource,
    media_state,
)
from orchestrator.rundown import SourceState

W, H = 320, 180


def _video(colour: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> av.VideoFrame:
    rgb = np.empty((size[1], size[0], 3), dtype=np.uint8)
    rgb[:] = colour
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


def _audio(level: float = 0.5, samples: int = 960) -> av.AudioFrame:
    data = np.full((1, samples * 2), int(level * 32767), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
    frame.sample_rate = 48000
    return frame


def _wait(predicate: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_mailbox_keeps_the_newest_picture_and_bounds_audio() -> None:
    box: Mailbox[int, int] = Mailbox(audio_limit=3)
    for i in range(5):
        box.put_video(i)
        box.put_audio(i)
    assert box.take(0) == (4, [2, 3, 4])
    assert (box.dropped_video, box.dropped_audio) == (4, 2)
    started = time.monotonic()
    assert box.take(0.05) == (None, [])
    assert time.monotonic() - started >= 0.04
    box.close()
    assert box.take(10) == (None, [])  # closed: returns at once


def test_media_state_over_time() -> None:
    assert media_state(5.0, None, None, None) is SourceState.CONNECTING
    assert media_state(5.0, 1.0, 4.0, None) is SourceState.READY
    assert media_state(4.0 + MEDIA_TIMEOUT, 1.0, 4.0, None) is SourceState.LOST
    assert media_state(4.2, 1.0, 4.0, 4.0) is SourceState.READY  # held
    assert media_state(4.0 + HOLD_SECONDS, 1.0, 4.0, 4.0) is SourceState.LOST
    assert HOLD_SECONDS <= 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _source(clock: Clock, **kwargs: object) -> WebRTCSource:
    source = WebRTCSource(
        "guest",
        Appearance("Guest Speaker", "Karachi"),
        width=W,
        height=H,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )
    source.start()
    return source


def test_ready_while_media_flows_lost_after_a_stall_or_an_end(clock: Clock) -> None:
    source = _source(clock)
    try:
        assert source.state is SourceState.CONNECTING
        source.offer_video(_video((0, 200, 0)))
        assert source.state is SourceState.READY
        _wait(lambda: source.video() is not None)
        picture = source.video()
        assert picture is not None and (picture.width, picture.height) == (W, H)
        clock.now += MEDIA_TIMEOUT  # media stopped, connection still open
        assert source.state is SourceState.LOST
        source.offer_video(_video((0, 200, 0)))
        assert source.state is SourceState.READY  # it came back
        source.end("left")
        assert source.state is SourceState.READY
        clock.now += HOLD_SECONDS
        assert source.state is SourceState.LOST
        assert source.snapshot().last_error == "left"
    finally:
        source.stop()
        source.join(2)


def test_on_air_audio_is_resampled_into_the_fifo(clock: Clock) -> None:
    source = _source(clock)
    try:
        for _ in range(10):
            source.offer_audio(_audio(0.5))
        _wait(lambda: source._audio.buffered_seconds >= 0.19)
        samples = source.audio(4800)
        assert samples.shape == (2, 4800)
        assert float(np.abs(samples).max()) == pytest.approx(0.5, abs=0.01)
        assert source.snapshot().level > 0.3
    finally:
        source.stop()
        source.join(2)


def test_the_green_room_fits_only_previews_and_buffers_no_audio(clock: Clock) -> None:
    source = _source(clock, full_rate=lambda: False)
    try:
        for _ in range(20):
            source.offer_video(_video((200, 0, 0)))
            source.offer_audio(_audio(0.5))
            time.sleep(0.01)
        _wait(lambda: source.snapshot().frames >= 1)
        time.sleep(0.1)
        assert source.snapshot().frames == 1  # one preview a (fake) second
        assert source._audio.buffered_seconds == 0
        assert source.snapshot().level > 0  # the meter still moves
    finally:
        source.stop()
        source.join(2)


def _luma_row(frame: av.VideoFrame, row: int) -> np.ndarray:
    return frame.to_ndarray()[row]


def test_audio_only_shows_a_name_card_with_a_live_level_bar(clock: Clock) -> None:
    source = _source(clock, audio_only=True)
    try:
        source.offer_audio(_audio(0.0, 96))
        _wait(lambda: source.video() is not None)
        quiet = source.video()
        for _ in range(5):
            clock.now += 0.2  # the card refreshes 10 times a (fake) second
            source.offer_audio(_audio(0.6))
            time.sleep(0.05)
        loud = source.video()
        assert quiet is not None and loud is not None
        bar_row = (H - 3 * max(4, H // 40) // 2 * 2) // 2 * 2 + 1
        lit = lambda f: int((np.abs(_luma_row(f, bar_row).astype(int) - 40) > 20).sum())  # noqa: E731
        assert lit(loud) > lit(quiet) + W // 4
        assert source.snapshot().audio_only
    finally:
        source.stop()
        source.join(2)


def test_a_photo_stands_in_for_an_audio_only_speaker(clock: Clock, tmp_path: Path) -> None:
    photo = tmp_path / "me.png"
    Image.new("RGB", (64, 64), (220, 30, 30)).save(photo)
    source = WebRTCSource(
        "guest",
        Appearance("Guest", photo=str(photo)),
        width=W,
        height=H,
        clock=clock,
        audio_only=True,
    )
    source.start()
    try:
        source.offer_audio(_audio(0.1))
        _wait(lambda: source.video() is not None)
        frame = source.video()
        assert frame is not None
        r, g, b = frame.to_ndarray(format="rgb24")[H // 4, W // 2]
        assert r > 150 and g < 90 and b < 90
    finally:
        source.stop()
        source.join(2)
