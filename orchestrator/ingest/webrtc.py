"""A speaker's browser feed (WebRTC via WHIP) as a program :class:`Source`.

aiortc decodes the speaker's RTP in its own thread and hands decoded frames to the
event loop; the session's readers pass them here with :meth:`WebRTCSource.offer_video`
and :meth:`WebRTCSource.offer_audio`, which never block. A :class:`Mailbox` carries them
to this source's worker thread, which fits pictures to the program size and resamples
audio: that work never runs on the event loop.

Only what is needed is processed: while the speaker is on air (or about to be) every
picture is fitted and every sample resampled; while they wait in the green room one
picture a second is fitted for the preview and audio only feeds the level meter.

State (see :func:`media_state`): CONNECTING until the first media, READY while media
flows, LOST once the session has ended (after holding the last picture for
``HOLD_SECONDS``) or when no media came for ``MEDIA_TIMEOUT`` seconds, even if the
connection is still open. A speaker who sends audio but no pictures (audio only, or a
camera that stopped) is shown as their photo or a name card with a live level bar.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import av
import numpy as np

from orchestrator.program.audio import SAMPLE_RATE, AudioBuffer, Samples, silence
from orchestrator.program.canvas import Canvas
from orchestrator.program.graphics import ACCENT, Plane, planes
from orchestrator.program.levels import FLOOR_DBFS, WINDOW_SECONDS, LevelMeter
from orchestrator.program.source import Source, SourceSnapshot
from orchestrator.program.speaker_card import Appearance, speaker_card
from orchestrator.rundown import SourceState

log = logging.getLogger(__name__)

HOLD_SECONDS: Final = 0.5  # an ended session's last picture stays up this long (≤ 1 s)
MEDIA_TIMEOUT: Final = 2.0  # no media for this long is a drop, connection or not
PICTURE_STALE: Final = 1.0  # no picture for this long while audio flows: show the card
PREVIEW_FPS: Final = 1.0  # pictures fitted per second in the green room
CARD_FPS: Final = 10.0  # the audio-only card's level bar refresh
AUDIO_QUEUE_FRAMES: Final = 50  # ~1 s of 20 ms frames between the loop and the worker
PREBUFFER_SECONDS: Final = 0.06  # jitter cushion before audio (re)starts after a gap
# Voice rebuilt for a lost packet (its frame.opaque one of REBUILT, marked by
# speakers/voice_decoder.py) is buffered only below this: it arrives after the gap was
# felt, so past a cushion it would only add delay.
REBUILT: Final = ("fec", "plc")
CONCEALED_HIGH_WATER: Final = 0.24

V = TypeVar("V")
A = TypeVar("A")


class Mailbox(Generic[V, A]):
    """The bounded hand-off from the event loop to one worker thread.

    Pictures: only the newest waits; an unprocessed older one is dropped as stale
    (counted in ``dropped_video``). Audio: a FIFO of at most ``audio_limit`` frames;
    when the worker falls behind the oldest go (``dropped_audio``). ``put_*`` never block
    beyond a short lock.
    """

    def __init__(self, audio_limit: int = AUDIO_QUEUE_FRAMES) -> None:
        self._video: V | None = None
        self._audio: deque[A] = deque()
        self._audio_limit = audio_limit
        self._ready = threading.Condition()
        self._closed = False
        self.dropped_video = 0
        self.dropped_audio = 0

    def put_video(self, frame: V) -> None:
        with self._ready:
            if self._video is not None:
                self.dropped_video += 1
            self._video = frame
            self._ready.notify()

    def put_audio(self, frame: A) -> None:
        with self._ready:
            if len(self._audio) >= self._audio_limit:
                self._audio.popleft()
                self.dropped_audio += 1
            self._audio.append(frame)
            self._ready.notify()

    def take(self, timeout: float) -> tuple[V | None, list[A]]:
        """What arrived since the last call; waits up to ``timeout`` s for something."""
        with self._ready:
            if self._video is None and not self._audio and not self._closed:
                self._ready.wait(timeout)
            video, self._video = self._video, None
            audio = list(self._audio)
            self._audio.clear()
        return video, audio

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


def media_state(
    now: float, first_media: float | None, last_media: float | None, ended: float | None
) -> SourceState:
    """A live feed's state at ``now`` (pure; all arguments are monotonic seconds)."""
    if first_media is None or last_media is None:
        return SourceState.CONNECTING
    if ended is not None and now - ended >= HOLD_SECONDS:
        return SourceState.LOST
    if now - last_media >= MEDIA_TIMEOUT:
        return SourceState.LOST
    return SourceState.READY


@dataclass(frozen=True, slots=True)
class LinkQuality:
    """The speaker's link as last measured; None where unknown."""

    bitrate_bps: float | None = None  # media arriving, bits per second
    packet_loss_ratio: float | None = None  # lost / expected over the last interval
    rtt_seconds: float | None = None  # as the speaker's browser measures it
    sent_bitrate_bps: float | None = None  # what the speaker's browser says it sends


@dataclass(frozen=True, slots=True)
class SpeakerSourceSnapshot(SourceSnapshot):
    """A live speaker's source: the base fields plus the link and what is shown."""

    speaker: str = ""
    connected: bool = False
    audio_only: bool = False
    level: float = 0.0  # 0..1, the last audio peak (decaying)
    level_dbfs: float = FLOOR_DBFS  # their input's peak over the last second (-100: silent)
    bitrate_bps: float | None = None
    packet_loss_ratio: float | None = None
    rtt_seconds: float | None = None
    sent_bitrate_bps: float | None = None
    video_paused: bool = False  # the page paused its video for the link: the card is up
    pictures_in: int = 0  # video frames received (fitted or not)
    audio_in: int = 0  # audio frames received
    concealed_seconds: float = 0.0  # voice rebuilt for lost packets (FEC copy or concealment)
    dropped_video: int = 0
    dropped_audio: int = 0


class WebRTCSource(Source):
    """One WHIP session's media. Loop side: ``offer_*``, ``end``, ``quality``.
    Program side: ``state``, ``video``, ``audio`` (never block)."""

    def __init__(
        self,
        speaker: str,
        appearance: Appearance,
        *,
        width: int,
        height: int,
        full_rate: Callable[[], bool] = lambda: True,
        audio_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(speaker)
        self.speaker = speaker
        self.audio_only = audio_only
        self.quality = LinkQuality()
        # Set by the loop from the page's reports: while True, pictures that still arrive
        # (the page testing the link) are not shown: the card stays up, no flapping.
        self.video_paused = False
        self._appearance = appearance
        self._width, self._height = width, height
        self._full_rate = full_rate
        self._clock = clock
        self._mailbox: Mailbox[av.VideoFrame, av.AudioFrame] = Mailbox()
        self._canvas = Canvas(width, height)
        self._audio = AudioBuffer()
        self._priming = True
        self._latest: av.VideoFrame | None = None
        self._card: Plane | None = None
        self._first_media: float | None = None
        self._last_media: float | None = None
        self._last_video: float | None = None
        self._ended: float | None = None
        self._level = 0.0
        self._input = LevelMeter()  # the worker feeds it; level_dbfs in the snapshot
        self._input_at: float | None = None  # when it was last fed
        self._frames = 0
        self._pictures_in = 0
        self._audio_in = 0
        self._concealed = 0.0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"webrtc-{speaker}", daemon=True)

    # -- the event loop's side ------------------------------------------------------------
    def offer_video(self, frame: av.VideoFrame) -> None:
        now = self._clock()
        if self._first_media is None:
            self._first_media = now
        self._last_media = self._last_video = now
        self._pictures_in += 1
        self._mailbox.put_video(frame)

    def offer_audio(self, frame: av.AudioFrame) -> None:
        now = self._clock()
        if self._first_media is None:
            self._first_media = now
        self._last_media = now
        self._audio_in += 1
        if frame.opaque in REBUILT and frame.sample_rate:
            self._concealed += frame.samples / frame.sample_rate
        self._mailbox.put_audio(frame)

    def end(self, reason: str | None = None) -> None:
        """The session is over: hold the last picture briefly, then read LOST."""
        if self._ended is None:
            self._ended = self._clock()
            self._last_error = reason

    @property
    def last_picture(self) -> float | None:
        """When a picture last arrived (the clock's seconds), None before any."""
        return self._last_video

    @property
    def last_media(self) -> float | None:
        """When media last arrived (the clock's seconds), None before any."""
        return self._last_media

    def hold_left(self) -> float:
        """Seconds until an ended session reads LOST (the full hold if not ended)."""
        if self._ended is None:
            return HOLD_SECONDS
        return max(0.0, self._ended + HOLD_SECONDS - self._clock())

    # -- the program's side: never blocks -------------------------------------------------
    @property
    def state(self) -> SourceState:
        return media_state(self._clock(), self._first_media, self._last_media, self._ended)

    def video(self) -> av.VideoFrame | None:
        return self._latest

    def audio(self, count: int) -> Samples:
        buffered = round(self._audio.buffered_seconds * SAMPLE_RATE)
        if self._priming:
            if buffered < PREBUFFER_SECONDS * SAMPLE_RATE:
                return silence(count)
            self._priming = False
        if buffered < count:
            # Running dry: play out what is there, then rebuild a small cushion, so that
            # network jitter costs one short gap rather than a crackle on every packet.
            self._priming = True
        return self._audio.read(count)

    def snapshot(self) -> SpeakerSourceSnapshot:
        state = self.state
        quality = self.quality
        return SpeakerSourceSnapshot(
            name=self.name,
            kind="webrtc",
            location="browser (WHIP)",
            state=state.value,
            frames=self._frames,
            reconnects=0,
            last_error=self._last_error,
            speaker=self.speaker,
            connected=state is SourceState.READY,
            audio_only=self.audio_only or self._showing_card(self._clock()),
            level=round(self._level, 3),
            level_dbfs=self._level_dbfs(),
            bitrate_bps=quality.bitrate_bps,
            packet_loss_ratio=quality.packet_loss_ratio,
            rtt_seconds=quality.rtt_seconds,
            sent_bitrate_bps=quality.sent_bitrate_bps,
            video_paused=self.video_paused and not self.audio_only,
            pictures_in=self._pictures_in,
            audio_in=self._audio_in,
            concealed_seconds=round(self._concealed, 3),
            dropped_video=self._mailbox.dropped_video,
            dropped_audio=self._mailbox.dropped_audio,
        )

    def _level_dbfs(self) -> float:
        fed = self._input_at
        if fed is None or self._clock() - fed >= WINDOW_SECONDS:
            return FLOOR_DBFS  # no audio for a second: nothing to meter
        return self._input.levels.peak_dbfs

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.end()
        self._mailbox.close()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the worker thread ----------------------------------------------------------------
    def _showing_card(self, now: float) -> bool:
        if self.audio_only or self.video_paused:
            return True
        return self._last_video is None or now - self._last_video >= PICTURE_STALE

    def _run(self) -> None:
        self._card = speaker_card(
            self._width, self._height, self._appearance, subline="on the phone"
        )
        resampler: av.AudioResampler | None = None
        last_fit = last_card = float("-inf")
        while not self._mailbox.closed:
            video, audio = self._mailbox.take(timeout=1 / CARD_FPS)
            now = self._clock()
            full = self._full_rate()
            for frame in audio:
                if (
                    full
                    and frame.opaque in REBUILT
                    and self._audio.buffered_seconds >= CONCEALED_HIGH_WATER
                ):
                    continue
                if full:
                    if resampler is None:
                        resampler = av.AudioResampler(
                            format="fltp", layout="stereo", rate=SAMPLE_RATE
                        )
                    for out in resampler.resample(frame):
                        samples = out.to_ndarray().astype(np.float32, copy=False)
                        self._meter(float(np.abs(samples).max(initial=0.0)))
                        self._input.add(samples)
                        self._audio.write(samples)
                else:
                    # The green room: the level meter needs no resampling.
                    raw = frame.to_ndarray()
                    scale = 32768.0 if raw.dtype == np.int16 else 1.0
                    self._meter(float(np.abs(raw).max(initial=0)) / scale)
                    seconds = frame.samples / frame.sample_rate if frame.sample_rate else 0.0
                    self._input.add(raw, seconds=seconds, full_scale=scale)
                self._input_at = now
            if not full:
                resampler = None
                self._audio.clear()
            if video is not None and not self.audio_only and not self.video_paused:
                if full or now - last_fit >= 1 / PREVIEW_FPS:
                    self._latest = self._canvas.fit(video)
                    last_fit = now
                    self._frames += 1
            elif (
                self._first_media is not None
                and self._showing_card(now)
                and now - last_card >= 1 / (CARD_FPS if full else PREVIEW_FPS)
            ):
                self._latest = self._card_frame()
                last_card = now
                self._frames += 1
            self._level *= 0.85  # the meter falls back between peaks

    def _meter(self, peak: float) -> None:
        self._level = max(self._level, min(1.0, peak))

    def _card_frame(self) -> av.VideoFrame:
        """The card with a level bar along its bottom: the audience sees them talking."""
        assert self._card is not None
        width, height = self._width, self._height
        picture = self._card.copy()
        y, u, v = planes(picture, width, height)
        bar_h = max(4, height // 40) // 2 * 2
        top = (height - 3 * bar_h) // 2 * 2
        full_w = width * 3 // 4 // 2 * 2
        left = (width - full_w) // 4 * 2
        lit = int(full_w * min(1.0, self._level * 1.5)) // 2 * 2
        accent_y, accent_u, accent_v = _yuv(ACCENT)
        y[top : top + bar_h, left : left + full_w] = 40
        u[top // 2 : (top + bar_h) // 2, left // 2 : (left + full_w) // 2] = 128
        v[top // 2 : (top + bar_h) // 2, left // 2 : (left + full_w) // 2] = 128
        y[top : top + bar_h, left : left + lit] = accent_y
        u[top // 2 : (top + bar_h) // 2, left // 2 : (left + lit) // 2] = accent_u
        v[top // 2 : (top + bar_h) // 2, left // 2 : (left + lit) // 2] = accent_v
        return av.VideoFrame.from_ndarray(picture, format="yuv420p")


def _yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of an RGB colour (what libswscale uses by default)."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)
