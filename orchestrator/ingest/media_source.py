"""Sources decoded by PyAV: clip files, and pulled streams (RTMP, RTSP, HTTP/HLS).

Each runs one daemon thread that demuxes, decodes, paces by the media's own
timestamps, fits pictures to the program size and resamples audio to 48 kHz stereo.
A clip plays once from its start, or from ``start_at`` seconds into it (ENDED at its
end), and can be paused (:meth:`MediaSource.pause`, while its item is held) and played
on from where it stood. A pulled stream is reconnected with backoff until the source is
stopped; while it is down it reads LOST, and the program covers it.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction

import av
import av.error
import numpy as np

from orchestrator.event.secret import redact, sanitize_source_url, source_secrets
from orchestrator.program.audio import SAMPLE_RATE, AudioBuffer, Samples
from orchestrator.program.canvas import Canvas
from orchestrator.program.source import Source, SourceSnapshot
from orchestrator.rundown import SourceState
from relays.backoff import Backoff

log = logging.getLogger(__name__)

PULL_SCHEMES = ("rtmp://", "rtmps://", "rtsp://", "http://", "https://")
OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 5.0
# A pulled stream that delivers nothing for this long is down, even if the connection
# is still open: the program covers it rather than freezing on the last picture.
STALL_SECONDS = 2.0
# A live input that bursts (an HLS playlist read from its start, a reconnect) is
# re-anchored rather than played out late: at most this far behind real time.
MAX_LATENESS = 1.0


def is_pull(location: str) -> bool:
    return location.lower().startswith(PULL_SCHEMES)


class MediaSource(Source):
    def __init__(
        self,
        name: str,
        location: str,
        *,
        width: int,
        height: int,
        loop: bool = False,
        armed: bool = False,
        start_at: float = 0.0,
    ) -> None:
        """Args:
        location: a file path or a pull URL.
        loop: replay a clip forever (the demo).
        armed: open and decode the first picture, then hold until :meth:`go`, so a clip
            cut in at its slot starts from its first frame without a startup delay.
        start_at: seconds into a clip to start from (its item was on air before: a
            restart after a crash); ignored for a pulled stream.
        """
        super().__init__(name)
        self.location = location
        self.live = is_pull(location)
        self.loop = loop
        self._start_at = 0.0 if self.live else max(0.0, start_at)
        self._canvas = Canvas(width, height)
        self._audio = AudioBuffer()
        self._latest: av.VideoFrame | None = None
        self._state = SourceState.CONNECTING
        self._stop = threading.Event()
        self._go = threading.Event()
        if not armed:
            self._go.set()
        self._thread = threading.Thread(target=self._run, name=f"source-{name}", daemon=True)
        self._frames = 0
        self._last_media = 0.0  # monotonic time of the last decoded frame
        self._reconnects = 0
        self._last_error: str | None = None
        # A pulled URL's path and query may hold the CDN's secret: shown only up to the app.
        self._safe_location = sanitize_source_url(location)
        self._secrets = source_secrets(location)

    # -- the program's side: never blocks --------------------------------------------
    @property
    def state(self) -> SourceState:
        state = self._state
        if (
            state is SourceState.READY
            and self.live
            and time.monotonic() - self._last_media > STALL_SECONDS
        ):
            return SourceState.LOST
        return state

    def video(self) -> av.VideoFrame | None:
        return self._latest

    def audio(self, count: int) -> Samples:
        return self._audio.read(count)

    def snapshot(self) -> SourceSnapshot:
        return SourceSnapshot(
            self.name,
            "pull" if self.live else "clip",
            self._safe_location,
            self.state.value,
            self._frames,
            self._reconnects,
            self._last_error,
        )

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def go(self) -> None:
        """Start playing an armed source, or play a paused clip on (no-op otherwise)."""
        self._go.set()

    def pause(self) -> None:
        """Hold a clip where it is: its thread waits at the next frame, the picture and
        the audio already decoded stay, until :meth:`go`. A pulled stream is live: it
        cannot wait, so this does nothing to it."""
        if not self.live and not self._stop.is_set():
            self._go.clear()

    def stop(self) -> None:
        self._stop.set()
        self._go.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the decoding thread ------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(base=0.5, cap=10.0, reset_after=30.0)
        while not self._stop.is_set():
            try:
                self._play_once(backoff)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                self._last_error = redact(
                    f"{type(exc).__name__}: {exc}", self._secrets, sanitize=sanitize_source_url
                )
                log.warning("source %s (%s): %s", self.name, self._safe_location, self._last_error)
                if not self.live:
                    self._state = SourceState.ENDED
                    return
            if self._stop.is_set():
                break
            if not self.live:
                if self.loop:
                    continue
                self._state = SourceState.ENDED
                return
            # A pulled stream that ended or failed: cover it and try again.
            backoff.failed()
            if self._frames:
                self._state = SourceState.LOST
            self._audio.clear()
            self._reconnects += 1
            self._stop.wait(backoff.next_delay())

    def _play_once(self, backoff: Backoff) -> None:
        options = {"rtsp_transport": "tcp"} if self.location.startswith("rtsp") else {}
        with av.open(
            self.location,
            options=options,
            timeout=(OPEN_TIMEOUT, READ_TIMEOUT) if self.live else None,
        ) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            if video is None and audio is None:
                raise ValueError("no audio or video stream")
            skip_to, self._start_at = self._start_at, 0.0  # once: a loop replays from 0
            if skip_to > 0:
                # To the keyframe before, then decode up to the instant (time base: µs).
                container.seek(int(skip_to * 1_000_000), backward=True, any_frame=False)
            if video is not None:
                video.thread_type = "AUTO"
            sar = video.codec_context.sample_aspect_ratio if video is not None else None
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
            clock = _Pacer(self._stop)
            streams = [s for s in (video, audio) if s is not None]
            ready = False
            for packet in container.demux(streams):
                if self._stop.is_set():
                    return
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                        continue
                    if frame.time is not None and frame.time < skip_to:
                        continue
                    if ready and not self._go.is_set():
                        # Paused: wait here, then pace on from this frame (not burst
                        # through the time spent waiting).
                        self._go.wait()
                        clock.restart()
                    if self._go.is_set() and frame.time is not None:
                        clock.wait_for(frame.time)
                    if isinstance(frame, av.VideoFrame):
                        self._latest = self._canvas.fit(frame, Fraction(sar) if sar else None)
                        self._frames += 1
                        ready = True
                    else:
                        for out in resampler.resample(frame):
                            self._audio.write(out.to_ndarray().astype(np.float32, copy=False))
                        ready = ready or video is None
                    self._last_media = time.monotonic()
                    if ready and self._state is not SourceState.READY:
                        self._state = SourceState.READY
                        backoff.succeeded(time.monotonic())
                    if ready and not self._go.is_set():
                        # Armed: the first picture is up; hold it until the slot starts.
                        self._go.wait()
                backoff.healthy(time.monotonic())


class _Pacer:
    """Holds a decoder to real time: media time t is released at anchor + (t - t0)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._anchor: tuple[float, float] | None = None

    def restart(self) -> None:
        """Anchor again at the next frame (after a pause)."""
        self._anchor = None

    def wait_for(self, media_time: float) -> None:
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, media_time)
            return
        wall0, media0 = self._anchor
        due = wall0 + (media_time - media0)
        if due - now > 5.0 or now - due > MAX_LATENESS:
            # A timestamp jump (stream restart, wrap) or a burst: start over from here.
            self._anchor = (now, media_time)
        elif due > now:
            self._stop.wait(due - now)
