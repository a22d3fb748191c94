"""The WebRTC source: hand-off, state over time, rates, the audio-only card."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from waiting import wait_for

from orchestrator.ingest.webrtc import (
    CONCEALED_HIGH_WATER,
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
    # A stall is a drop at the media timeout, not before (WHIP's end-to-end test relies on it).
    assert media_state(4.0 + MEDIA_TIMEOUT - 0.01, 1.0, 4.0, None) is SourceState.READY
    assert media_state(4.0 + MEDIA_TIMEOUT, 1.0, 4.0, None) is SourceState.LOST
    assert media_state(4.2, 1.0, 4.0, 4.0) is SourceState.READY  # held
    assert media_state(4.0 + HOLD_SECONDS - 0.01, 1.0, 4.0, 4.0) is SourceState.READY
    assert media_state(4.0 + HOLD_SECONDS, 1.0, 4.0, 4.0) is SourceState.LOST
    assert HOLD_SECONDS <= 1.0  # an ended session is covered within a second


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
        wait_for(source.video, 3, "a fitted picture")
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
        wait_for(lambda: source._audio.buffered_seconds >= 0.19, 3, "0.19 s of audio buffered")
        samples = source.audio(4800)
        assert samples.shape == (2, 4800)
        assert float(np.abs(samples).max()) == pytest.approx(0.5, abs=0.01)
        assert source.snapshot().level > 0.3
    finally:
        source.stop()
        source.join(2)


def test_voice_rebuilt_for_lost_packets_is_counted_and_buffered_below_the_high_water(
    clock: Clock,
) -> None:
    source = _source(clock)

    def offer(*marks: str | None) -> None:
        for mark in marks:
            frame = _audio(0.5, samples=2880)  # 60 ms
            frame.opaque = mark
            source.offer_audio(frame)

    try:
        offer(None, "fec", None, "plc")
        wait_for(lambda: source._audio.buffered_seconds >= 0.23, 3, "0.24 s buffered")
        assert source._audio.buffered_seconds == pytest.approx(CONCEALED_HIGH_WATER)
        # At the high water a rebuilt frame would only add delay: not buffered, counted.
        offer("plc", None)
        wait_for(lambda: source._audio.buffered_seconds >= 0.29, 3, "the real frame buffered")
        assert source._audio.buffered_seconds == pytest.approx(0.30)
        assert source.snapshot().concealed_seconds == pytest.approx(0.18)
        assert source.snapshot().audio_in == 6
    finally:
        source.stop()
        source.join(2)


def test_the_green_room_fits_only_previews_and_buffers_no_audio(clock: Clock) -> None:
    source = _source(clock, full_rate=lambda: False)
    try:
        for i in range(20):
            source.offer_video(_video((200, 0, 0)))
            source.offer_audio(_audio(0.5))
            # The worker has taken this picture (to fit or skip) before the next comes.
            wait_for(lambda: source._mailbox._video is None, 3, f"picture {i + 1} taken")
        assert source.snapshot().dropped_video == 0  # every picture reached the worker
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
        quiet = wait_for(source.video, 3, "the name card")
        bar_row = (H - 3 * max(4, H // 40) // 2 * 2) // 2 * 2 + 1
        lit = lambda f: int((np.abs(_luma_row(f, bar_row).astype(int) - 40) > 20).sum())  # noqa: E731

        def speaking() -> av.VideoFrame | None:
            clock.now += 0.2  # the card refreshes 10 times a (fake) second
            source.offer_audio(_audio(0.6))
            loud = source.video()
            return loud if loud is not None and lit(loud) > lit(quiet) + W // 4 else None

        # The speaker talks on until the card's bar shows it.
        wait_for(speaking, 5, "the level bar to light up while speaking")
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
        frame = wait_for(source.video, 3, "the photo card")
        r, g, b = frame.to_ndarray(format="rgb24")[H // 4, W // 2]
        assert r > 150 and g < 90 and b < 90
    finally:
        source.stop()
        source.join(2)
