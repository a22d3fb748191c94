"""The program: a steady frame clock that switches between feeds and encodes once.

The asyncio side decides what is on air and calls :meth:`Program.cut`; the program
thread reads the current :class:`Feed` at every tick. Whatever the feed does (a source
with no picture yet, a source that stalls, a cut), a frame is produced on every tick
and audio follows sample for sample, so the output never has a gap.

Audio: each tick's block from the on-air source is metered (the speaker's input level),
mixed (their mute and gain, :mod:`orchestrator.program.mix`) and metered again (the
program level) before the encode. The operator's side is :meth:`Program.set_audio`,
:meth:`Program.audio_settings` and the ``audio_*``/``input_*`` fields of the snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av

from orchestrator.event import ProgramSpec
from orchestrator.program.audio import SAMPLE_RATE, Samples, silence
from orchestrator.program.encoder import ProgramEncoder
from orchestrator.program.graphics import Overlay, Plane, black
from orchestrator.program.levels import SILENT, LevelMeter, Levels
from orchestrator.program.mix import AudioMix, AudioSetting
from orchestrator.program.source import Source
from relays.packet import EncodedPacket

log = logging.getLogger(__name__)

PacketSink = Callable[[list[EncodedPacket]], None]
# Sees each picture after its encode: (picture, frame number, whether the encode made it a
# keyframe, its audio block as mixed); on the program thread, so it must never block (the
# HLS ladder's extra renditions: orchestrator/program/ladder.py).
FrameTap = Callable[[av.VideoFrame, int, bool, Samples], None]
# Further behind real time than this (an overloaded machine) and the clock re-anchors:
# output stays continuous, it just runs late instead of bursting to catch up.
MAX_BEHIND = 1.0


@dataclass(frozen=True, slots=True)
class Feed:
    """What the program shows: a source, or a still picture (a slate)."""

    label: str  # the on-air speaker id, or "slate"
    source: Source | None = None
    still: Plane | None = None
    overlay: Overlay | None = None
    overlay_seconds: float = 0.0
    description: str = ""
    # Identity of a cut; feeds that are equal but for graphics are the same shot.
    cut: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ProgramSnapshot:
    up: bool
    on_air: str
    description: str
    frames: int
    seconds: float  # media seconds produced
    late_resets: int
    width: int
    height: int
    fps: int
    # The program's audio as encoded (after mute and gain), over the last second: dBFS,
    # -100 for silence.
    audio_peak_dbfs: float = SILENT.peak_dbfs
    audio_rms_dbfs: float = SILENT.rms_dbfs
    # The on-air feed's input (before mute and gain) since the cut, up to the last second:
    # ``input_speaker`` is whose it is (the on-air label when it was measured, or "slate").
    input_speaker: str = "slate"
    input_peak_dbfs: float = SILENT.peak_dbfs
    # Speakers whose mute or gain is not the default (unmuted, 0 dB).
    audio_settings: dict[str, AudioSetting] = field(default_factory=dict)


class Program:
    def __init__(self, spec: ProgramSpec, sink: PacketSink, tap: FrameTap | None = None) -> None:
        self.spec = spec
        self._sink = sink
        self._tap = tap
        self._encoder = ProgramEncoder(spec)
        self._feed = Feed("slate", still=black(spec.width, spec.height))
        self._feed_since = time.monotonic()
        self._cuts = 0
        self._keyframe_wanted = threading.Event()  # request_keyframe: the next one is
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="program", daemon=True)
        self._frames = 0
        self._late_resets = 0
        self._up = False
        self.preview: av.VideoFrame | None = None  # the latest program picture, ~1/s
        self._last: av.VideoFrame | None = None
        self._still_cache: tuple[Plane, av.VideoFrame] | None = None
        self._mix = AudioMix()
        self._program_meter = LevelMeter()
        self._input_meter = LevelMeter()
        # (label, levels) of the on-air input, published whole by the program thread.
        self._input: tuple[str, Levels] = ("slate", SILENT)

    @property
    def encoder(self) -> ProgramEncoder:
        return self._encoder

    def cut(self, feed: Feed) -> None:
        """Put ``feed`` on air from the next frame (a keyframe). Thread-safe."""
        self._cuts += 1
        self._feed = Feed(
            feed.label,
            feed.source,
            feed.still,
            feed.overlay,
            feed.overlay_seconds,
            feed.description,
            self._cuts,
        )
        self._feed_since = time.monotonic()

    def request_keyframe(self) -> None:
        """Make the next frame a keyframe (a new connection that must start on one is
        then not kept waiting for the next of the GOP). Thread-safe."""
        self._keyframe_wanted.set()

    @property
    def feed(self) -> Feed:
        return self._feed

    # -- the audio mix (any thread; the program thread picks changes up at its next block) --
    def set_audio(
        self, speaker: str, *, muted: bool | None = None, gain_db: float | None = None
    ) -> AudioSetting:
        """Mute/unmute ``speaker`` or set their gain (dB, -20..+20) in the program; what is
        not given stays. Applied from the next audio block with a 15 ms ramp. Returns
        their new setting.

        Raises:
            ValueError: the gain is out of range (nothing changes).
        """
        return self._mix.set(speaker, muted=muted, gain_db=gain_db)

    def audio_settings(self) -> dict[str, AudioSetting]:
        """Every speaker whose setting is not the default (unmuted, 0 dB)."""
        return self._mix.settings()

    def load_audio_settings(self, settings: dict[str, AudioSetting]) -> None:
        """Replace every speaker's setting (the saved ones, at start)."""
        self._mix.replace(settings)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the clock, flush the encoder into the sink (so outputs get every frame)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def snapshot(self) -> ProgramSnapshot:
        spec = self.spec
        program = self._program_meter.levels
        input_speaker, input_levels = self._input
        return ProgramSnapshot(
            up=self._up,
            on_air=self._feed.label,
            description=self._feed.description,
            frames=self._frames,
            seconds=self._frames / spec.fps,
            late_resets=self._late_resets,
            width=spec.width,
            height=spec.height,
            fps=spec.fps,
            audio_peak_dbfs=program.peak_dbfs,
            audio_rms_dbfs=program.rms_dbfs,
            input_speaker=input_speaker,
            input_peak_dbfs=input_levels.peak_dbfs,
            audio_settings=self._mix.settings(),
        )

    # -- the program thread -------------------------------------------------------------
    def _run(self) -> None:
        fps = self.spec.fps
        started = time.monotonic()
        index = 0
        samples = 0
        last_cut = -1
        try:
            self._up = True
            while not self._stop.is_set():
                due = started + index / fps
                delay = due - time.monotonic()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                elif -delay > MAX_BEHIND:
                    started = time.monotonic() - index / fps
                    self._late_resets += 1
                feed = self._feed
                keyframe = feed.cut != last_cut or self._keyframe_wanted.is_set()
                self._keyframe_wanted.clear()
                last_cut = feed.cut
                picture = self._picture(feed)
                self._last = picture
                if index % fps == 0:
                    self.preview = picture
                packets = self._encoder.encode_video(picture, index, keyframe)
                want = (index + 1) * SAMPLE_RATE // fps - samples
                audio = feed.source.audio(want) if feed.source is not None else silence(want)
                samples += want
                mixed = self._audio(feed.label, audio)
                if self._tap is not None:
                    self._tap(picture, index, any(p.keyframe for p in packets), mixed)
                packets.extend(self._encoder.encode_audio(mixed))
                index += 1
                self._frames = index
                if packets:
                    self._sink(packets)
            self._sink(self._encoder.flush())
        except Exception:
            log.exception("program stopped by an error")
            raise
        finally:
            self._up = False
            self._program_meter.reset()
            self._input = ("slate", SILENT)
            self._encoder.close()

    def _audio(self, label: str, audio: Samples) -> Samples:
        """Meter the on-air input, mix it, meter the program (on the program thread)."""
        if label != self._input[0]:
            self._input_meter.reset()  # a cut: the new speaker's level starts afresh
        self._input = (label, self._input_meter.add(audio))
        mixed = self._mix.process(label, audio)
        self._program_meter.add(mixed)
        return mixed

    def _picture(self, feed: Feed) -> av.VideoFrame:
        spec = self.spec
        picture: av.VideoFrame | None = None
        if feed.source is not None:
            picture = feed.source.video()
        if picture is None:
            # No picture from the source (yet, or ever: an audio-only clip): the feed's
            # still (a speaker's card), else hold the last program frame.
            picture = self._still(feed.still) if feed.still is not None else self._last
        if picture is None:
            picture = self._still(black(spec.width, spec.height))
        if feed.overlay is not None and time.monotonic() - self._feed_since < feed.overlay_seconds:
            picture = feed.overlay.over(picture)
        return picture

    def _still(self, still: Plane) -> av.VideoFrame:
        # A slate is shown for seconds at a time: convert it to a frame once.
        if self._still_cache is None or self._still_cache[0] is not still:
            self._still_cache = (still, av.VideoFrame.from_ndarray(still, format="yuv420p"))
        return self._still_cache[1]
