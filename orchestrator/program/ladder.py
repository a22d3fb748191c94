"""An HLS mirror's adaptive ladder: extra renditions encoded from the one program.

The program thread hands each picture and audio block to :meth:`Ladder.offer` after its
own encode; that call only puts them in each rendition's bounded queue (never blocks,
never waits), so the main encode is never slowed. Each rendition encodes on its own
thread (PyAV releases the GIL while scaling and coding) and writes its HLS playlist
beside the program's (:func:`relays.files.hls_output`).

Switching between renditions needs them on one timeline and cut at the same frames:
- timestamps are the program's own (video pts = frame number, audio pts = the block's
  sample position), written as they are (``keep_time``);
- an IDR is forced exactly where the program's encoder made one (its keyframes, cuts
  included), and x264 makes none of its own (``keyint=infinite``), so every GOP of every
  rendition starts on the same frame and the HLS muxer cuts segments at the same frames.
A rendition that falls behind drops pictures (counted), never audio; its next picture
after a dropped keyframe is an IDR, so what it writes stays decodable.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.frame import PictureType
from av.video.stream import VideoStream

from orchestrator.event import DestinationSpec, ProgramSpec
from orchestrator.event.ladder_spec import LadderSpec
from orchestrator.program.audio import CHANNELS, SAMPLE_RATE, Samples
from orchestrator.program.encoder import ProgramEncoder, open_encode
from relays.files import LocalWriter, hls_dir, hls_output
from relays.hls_master import AAC_LC, Variant, avc_codec, master_playlist
from relays.packet import EncodedPacket

log = logging.getLogger(__name__)

AAC_FRAME = 1024
# Queued pictures per rendition (1 s at 30 fps) before it drops them; audio blocks are
# never dropped, but a rendition 10 s behind in audio is stopped.
PICTURE_BACKLOG = 30
AUDIO_BACKLOG = 300


@dataclass(frozen=True, slots=True)
class RenditionSnapshot:
    name: str
    up: bool
    frames: int
    dropped_frames: int
    sent_bytes: int
    error: str | None


@dataclass(frozen=True, slots=True)
class _Picture:
    frame: av.VideoFrame
    index: int
    keyframe: bool


@dataclass(frozen=True, slots=True)
class _Audio:
    samples: Samples
    position: int  # the block's first sample in the program


_STOP = object()


class RenditionEncoder:
    """A rendition's own encode: H.264 at its size (unless audio only) and AAC.

    Args:
        program: the program's spec (frame rate, preset, keyframe distance).
        height: the picture height (0: audio only); the width keeps the program's aspect.
        video_kbps, audio_kbps: its bitrates.
    """

    def __init__(self, program: ProgramSpec, height: int, video_kbps: int, audio_kbps: int):
        self.width = 2 * round(height * program.width / program.height / 2) if height else 0
        self.height = height
        # IDRs only where the program has one (forced per picture): no GOP of its own.
        self._container, video, audio = open_encode(
            program.fps, max(self.width, 16), max(height, 16), program.preset,
            (video_kbps, audio_kbps), None,
        )  # fmt: skip
        self.video_stream, self.audio_stream = video, audio
        self._pending = np.zeros((CHANNELS, 0), dtype=np.float32)
        self._position = 0  # the program sample of _pending's first column

    def encode_picture(self, picture: _Picture) -> list[EncodedPacket]:
        frame = picture.frame.reformat(self.width, self.height, "yuv420p")
        frame.pts = picture.index
        frame.time_base = self.video_stream.time_base
        frame.pict_type = PictureType.I if picture.keyframe else PictureType.NONE
        return [_wrap("video", p) for p in self.video_stream.encode(frame)]

    def encode_audio(self, block: _Audio) -> list[EncodedPacket]:
        if block.position != self._position + self._pending.shape[1]:
            # The first block, or after a stop of the program clock: start afresh there.
            self._pending, self._position = block.samples, block.position
        else:
            self._pending = np.concatenate((self._pending, block.samples), axis=1)
        packets: list[EncodedPacket] = []
        while self._pending.shape[1] >= AAC_FRAME:
            chunk = np.ascontiguousarray(self._pending[:, :AAC_FRAME])
            self._pending = self._pending[:, AAC_FRAME:]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self._position
            frame.time_base = self.audio_stream.time_base
            self._position += AAC_FRAME
            packets.extend(_wrap("audio", p) for p in self.audio_stream.encode(frame))
        return packets

    def flush(self, video: bool) -> list[EncodedPacket]:
        packets = [_wrap("video", p) for p in self.video_stream.encode(None)] if video else []
        return packets + [_wrap("audio", p) for p in self.audio_stream.encode(None)]

    def close(self) -> None:
        self._container.close()


# The same wrapping as the program's own packets (immutable bytes plus timing).
_wrap = ProgramEncoder._wrap


class Rendition:
    """One extra rendition: its queue, thread, encoder and HLS playlist."""

    def __init__(
        self,
        name: str,
        folder: Path,
        program: ProgramSpec,
        height: int,
        video_kbps: int,
        audio_kbps: int,
    ) -> None:
        self.name = name
        self.audio_only = height == 0
        self.video_kbps = 0 if self.audio_only else video_kbps
        self.audio_kbps = audio_kbps
        self._folder = folder
        self._encoder = RenditionEncoder(program, height, video_kbps or 100, audio_kbps)
        self._queue: queue.Queue[object] = queue.Queue()
        self._pictures = 0  # pictures queued now (the program thread and ours)
        self._lock = threading.Condition()  # notified when a picture is taken
        self._frames = self._dropped = 0
        self._missed_keyframe = False
        self._writer: LocalWriter | None = None
        self._error: str | None = None
        self._up = False
        self._thread = threading.Thread(target=self._run, name=f"ladder-{name}", daemon=True)

    @property
    def variant(self) -> Variant:
        encoder = self._encoder
        if self.audio_only:
            return Variant(f"{self.name}.m3u8", self.audio_kbps, AAC_LC)
        codecs = f"{avc_codec(encoder.video_stream.codec_context.extradata)},{AAC_LC}"
        rate = int(encoder.video_stream.codec_context.framerate or 0)
        kbps = self.video_kbps + self.audio_kbps
        return Variant(f"{self.name}.m3u8", kbps, codecs, encoder.width, encoder.height, rate)

    def start(self) -> None:
        self._thread.start()

    def offer(self, picture: _Picture | None, audio: _Audio | None) -> None:
        """Queue a picture and/or an audio block; never blocks (the program thread)."""
        if self._error is not None:
            return
        if picture is not None and not self.audio_only:
            with self._lock:
                full = self._pictures >= PICTURE_BACKLOG
                if not full:
                    self._pictures += 1
            if full:
                self._dropped += 1
                self._missed_keyframe |= picture.keyframe
            else:
                if self._missed_keyframe:
                    picture = _Picture(picture.frame, picture.index, True)
                    self._missed_keyframe = False
                self._queue.put_nowait(picture)
        if self._queue.qsize() > AUDIO_BACKLOG + PICTURE_BACKLOG:
            self._fail("too far behind the program")
            return
        if audio is not None:
            self._queue.put_nowait(audio)

    def wait_for_room(self, timeout: float) -> bool:
        """Wait until a picture offered now would be queued, not dropped (for a caller
        that may wait: the edge's decoder, never the program thread)."""
        if self.audio_only:
            return True
        with self._lock:
            return self._lock.wait_for(
                lambda: self._pictures < PICTURE_BACKLOG or self._error is not None, timeout
            )

    def close(self, timeout: float) -> None:
        self._queue.put_nowait(_STOP)
        self._thread.join(timeout)

    def snapshot(self) -> RenditionSnapshot:
        writer = self._writer
        return RenditionSnapshot(
            self.name,
            self._up,
            self._frames,
            self._dropped,
            writer.sent_bytes if writer is not None else 0,
            self._error,
        )

    def _fail(self, why: str) -> None:
        if self._error is None:
            self._error = why
            log.error("ladder rendition %s stopped: %s", self.name, why)

    def _run(self) -> None:
        encoder = self._encoder
        try:
            output = hls_output(self._folder, self.name, self.name, 0, audio_only=self.audio_only)
            templates = (encoder.video_stream, encoder.audio_stream)
            self._writer = writer = LocalWriter(output, templates)
            self._up = True
            while (item := self._queue.get()) is not _STOP:
                if isinstance(item, _Picture):
                    with self._lock:
                        self._pictures -= 1
                        self._lock.notify_all()
                    packets = encoder.encode_picture(item)
                    self._frames += 1
                elif isinstance(item, _Audio):
                    packets = encoder.encode_audio(item)
                for packet in packets:
                    writer.write(packet)
            for packet in encoder.flush(video=not self.audio_only):
                writer.write(packet)
            writer.abort()  # the trailer: #EXT-X-ENDLIST
        except Exception as exc:  # a bug or a full disk: this rendition only
            log.exception("ladder rendition %s failed", self.name)
            self._fail(str(exc))
        finally:
            self._up = False
            encoder.close()


class Ladder:
    """The extra renditions of one HLS mirror, and its master playlist.

    Args:
        spec: the mirror's ``[destinations.ladder]``.
        program: the program's spec.
        program_variant: the program rendition's entry in the master playlist.
        folder: the mirror's folder (``relays.files.hls_dir``).
    """

    def __init__(
        self, spec: LadderSpec, program: ProgramSpec, program_variant: Variant, folder: Path
    ) -> None:
        self._program = program
        self.renditions: list[Rendition] = []
        if spec.low_height:
            self.renditions.append(
                Rendition(
                    "low",
                    folder,
                    program,
                    spec.low_height,
                    spec.low_video_kbps,
                    spec.low_audio_kbps,
                )
            )
        if spec.audio_kbps:
            self.renditions.append(Rendition("audio", folder, program, 0, 0, spec.audio_kbps))
        folder.mkdir(parents=True, exist_ok=True)
        variants = [program_variant] + [r.variant for r in self.renditions]
        master = folder / "index.m3u8"
        temporary = folder / "index.m3u8.tmp"
        temporary.write_text(master_playlist(variants))
        os.replace(temporary, master)

    def start(self) -> None:
        for rendition in self.renditions:
            rendition.start()

    def offer(self, picture: av.VideoFrame, index: int, keyframe: bool, audio: Samples) -> None:
        """The program's picture ``index`` (a keyframe in the program's encode or not) and
        the audio block that goes with it. On the program thread; never blocks."""
        shot = _Picture(picture, index, keyframe)
        block = _Audio(audio, index * SAMPLE_RATE // self._program.fps)
        for rendition in self.renditions:
            rendition.offer(shot, block)

    def offer_picture(self, picture: av.VideoFrame, index: int, keyframe: bool) -> None:
        """A picture alone (a decoded stream's, whose audio comes apart: the edge's)."""
        shot = _Picture(picture, index, keyframe)
        for rendition in self.renditions:
            rendition.offer(shot, None)

    def offer_audio(self, samples: Samples, position: int) -> None:
        """An audio block alone, ``position`` its first sample on the program's timeline."""
        block = _Audio(samples, position)
        for rendition in self.renditions:
            rendition.offer(None, block)

    def wait_for_room(self, timeout: float) -> bool:
        """:meth:`Rendition.wait_for_room` for every rendition (``timeout`` each)."""
        return all(rendition.wait_for_room(timeout) for rendition in self.renditions)

    @property
    def needs_pictures(self) -> bool:
        return any(not rendition.audio_only for rendition in self.renditions)

    def close(self, timeout: float) -> None:
        for rendition in self.renditions:
            rendition.close(timeout / max(1, len(self.renditions)))

    def snapshots(self) -> list[RenditionSnapshot]:
        return [r.snapshot() for r in self.renditions]


class Ladders:
    """The ladders of every HLS mirror that has one; :meth:`offer` is the program's tap.

    Args:
        program: the program's spec.
        state_dir: where the mirrors are written (``<state>/hls/<name>/``).
    """

    def __init__(self, program: ProgramSpec, state_dir: Path) -> None:
        self._program = program
        self._state_dir = state_dir
        self._ladders: dict[str, Ladder] = {}
        self._lock = threading.Lock()

    def add(self, spec: DestinationSpec, program_video: VideoStream) -> None:
        """Start ``spec``'s ladder, if it is an HLS mirror with one (``program_video``:
        the program encoder's stream, whose SPS names its codec in the master playlist)."""
        if spec.kind != "hls" or spec.ladder is None:
            return
        program = self._program
        codecs = f"{avc_codec(program_video.codec_context.extradata)},{AAC_LC}"
        kbps = program.video_bitrate_kbps + program.audio_bitrate_kbps
        variant = Variant("program.m3u8", kbps, codecs, program.width, program.height, program.fps)
        ladder = Ladder(spec.ladder, program, variant, hls_dir(self._state_dir, spec.name))
        ladder.start()
        with self._lock:
            self._ladders[spec.name] = ladder

    def remove(self, name: str, timeout: float = 1.0) -> None:
        with self._lock:
            ladder = self._ladders.pop(name, None)
        if ladder is not None:
            ladder.close(timeout)

    def offer(self, picture: av.VideoFrame, index: int, keyframe: bool, audio: Samples) -> None:
        for ladder in tuple(self._ladders.values()):
            ladder.offer(picture, index, keyframe, audio)

    def close(self, timeout: float) -> None:
        with self._lock:
            ladders, self._ladders = list(self._ladders.values()), {}
        for ladder in ladders:
            ladder.close(timeout / max(1, len(ladders)))

    def snapshots(self) -> dict[str, list[RenditionSnapshot]]:
        with self._lock:
            ladders = dict(self._ladders)
        return {name: ladder.snapshots() for name, ladder in ladders.items()}
