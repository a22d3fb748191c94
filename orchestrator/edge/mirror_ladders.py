"""The adaptive ladders of the edge's HLS mirrors, made on the edge from the contribution.

At the studio a ladder's renditions are encoded from the program's own pictures
(:mod:`orchestrator.program.ladder`). The edge has only the contribution's packets, so
it decodes them once, on its own thread, and offers each picture and audio frame to every
mirror's :class:`~orchestrator.program.ladder.Ladder`; the program rendition is the
contribution's packets as they are (a relay destination, like the studio's). The
packets are those the platforms get: the studio's program and, during a blip, the slate,
on the relay's one output timeline (:mod:`orchestrator.edge.blip_cover`), so the
renditions stay aligned across blips too.

Alignment as at the studio: a picture decoded from a keyframe is a keyframe of every
rendition (an IDR is forced there, and the encoders make none of their own), and the
timestamps are the output timeline's (picture index = seconds × fps, audio position =
seconds × 48000), so every rendition cuts its segments at the same frames.

:meth:`MirrorLadders.feed` never blocks the relay's publisher: past
:data:`DECODE_BACKLOG` packets it drops, and after a dropped video packet it waits for
the next keyframe (a decoder cannot start anywhere else). The decode thread does wait: it
hands a rendition a picture only when the rendition has room (up to
:data:`ROOM_SECONDS`), so a burst of packets waits in the decode queue instead of being
dropped by the renditions.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import CodecContext
from av.stream import Stream
from av.video.codeccontext import VideoCodecContext

from orchestrator.edge.slate_loop import StudioFormat, slate_spec
from orchestrator.event import DestinationSpec
from orchestrator.program.audio import CHANNELS, SAMPLE_RATE
from orchestrator.program.ladder import Ladder, RenditionSnapshot
from relays.files import hls_dir
from relays.hls_master import AAC_LC, Variant, avc_codec
from relays.packet import EncodedPacket

log = logging.getLogger(__name__)

DECODE_BACKLOG = 1000  # packets (~13 s of a 30 fps program with its audio: a few MB)
# How long the decoder waits for a rendition to take a picture before offering it anyway
# (the rendition then drops it, as one that falls behind does).
ROOM_SECONDS = 2.0
# An audio frame this close to where the last one ended continues it (FLV's times are
# whole milliseconds: 48 samples).
SNAP_SAMPLES = 64
_STOP = object()


class MirrorLadders:
    """The ladders of the edge's mirrors that declare one, for one relay.

    Args:
        specs: the edge's destinations (those that are HLS mirrors with a ladder count).
        video, audio: the contribution's streams (the relay's templates).
        studio: what the contribution carries (its size, rate and bitrates).
        state_dir: the edge's state directory (the mirrors' folders are under it).
    """

    def __init__(
        self,
        specs: Sequence[DestinationSpec],
        video: Stream,
        audio: Stream,
        studio: StudioFormat,
        state_dir: Path,
    ) -> None:
        self._ladders: dict[str, Ladder] = {}
        self._fps = 0
        wanted = [s for s in specs if s.kind == "hls" and s.ladder is not None]
        try:
            program = slate_spec(studio)
        except ValueError as exc:
            if wanted:
                log.error("no ladder on the edge's mirrors: %s", str(exc).removeprefix("no slate "))
            wanted = []
        for spec in wanted:
            assert spec.ladder is not None
            codecs = f"{avc_codec(studio.extradata)},{AAC_LC}"
            kbps = program.video_bitrate_kbps + program.audio_bitrate_kbps
            variant = Variant(
                "program.m3u8", kbps, codecs, program.width, program.height, program.fps
            )
            folder = hls_dir(state_dir, spec.name)
            try:
                self._ladders[spec.name] = Ladder(spec.ladder, program, variant, folder)
            except (av.FFmpegError, OSError, ValueError):  # the mirror's program goes on
                log.exception("no ladder on the edge's mirror %s", spec.name)
                continue
            self._fps = program.fps
        self._pictures = any(ladder.needs_pictures for ladder in self._ladders.values())
        self._templates = {"video": _decoder_of(video), "audio": _decoder_of(audio)}
        self._queue: queue.Queue[object] = queue.Queue(DECODE_BACKLOG)
        self._want_keyframe = True  # a decoder starts on a keyframe
        self._last_index = -(2**62)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="edge-ladder-decode", daemon=True)

    @property
    def active(self) -> bool:
        return bool(self._ladders)

    def start(self) -> None:
        if self._ladders:
            for ladder in self._ladders.values():
                ladder.start()
            self._thread.start()

    def feed(self, packets: list[EncodedPacket]) -> None:
        """The packets the relay publishes (the relay's publisher thread); never blocks."""
        if not self._ladders:
            return
        for packet in packets:
            if packet.kind == "video":
                if not self._pictures:
                    continue
                if self._want_keyframe and not packet.keyframe:
                    continue
            try:
                self._queue.put_nowait(packet)
            except queue.Full:
                self.dropped += 1
                self._want_keyframe |= packet.kind == "video"
            else:
                if packet.kind == "video":
                    self._want_keyframe = False

    def close(self, timeout: float) -> None:
        """Stop decoding; each rendition ends its playlist (``#EXT-X-ENDLIST``)."""
        if self._thread.is_alive():  # (even with every ladder removed: the thread waits)
            while True:
                try:
                    self._queue.put(_STOP, timeout=0.1)
                    break
                except queue.Full:
                    if not self._thread.is_alive():
                        break
            self._thread.join(timeout / 2)
        for ladder in self._ladders.values():
            ladder.close(timeout / 2 / max(1, len(self._ladders)))

    def remove(self, name: str, timeout: float) -> None:
        """Stop ``name``'s ladder (the operator removed the mirror); the others go on."""
        ladder = self._ladders.get(name)
        if ladder is None:
            return
        # A new dict, not a change to the one the decode thread may be going through.
        self._ladders = {n: other for n, other in self._ladders.items() if n != name}
        ladder.close(timeout)

    def snapshots(self) -> dict[str, list[RenditionSnapshot]]:
        return {name: ladder.snapshots() for name, ladder in self._ladders.items()}

    # -- the decode thread ---------------------------------------------------------------
    def _run(self) -> None:
        audio_end: int | None = None  # where the last audio frame ended, in samples
        try:
            decoders = {kind: _open(template) for kind, template in self._templates.items()}
            while (item := self._queue.get()) is not _STOP:
                assert isinstance(item, EncodedPacket)
                packet = av.Packet(item.data)
                packet.pts, packet.dts, packet.time_base = item.pts, item.dts, item.time_base
                try:
                    frames = decoders[item.kind].decode(packet)
                except av.FFmpegError as exc:
                    log.warning("edge ladder: %s packet not decoded: %s", item.kind, exc)
                    continue
                audio_end = self._offer(frames, audio_end)
            for decoder in decoders.values():  # the pictures the decoder still holds
                audio_end = self._offer(decoder.decode(None), audio_end)
        except Exception:  # a bug: the mirrors' program renditions go on without the ladder
            log.exception("edge ladder decoding failed")

    def _offer(
        self, frames: Sequence[av.VideoFrame | av.AudioFrame], end: int | None
    ) -> int | None:
        """Offers decoded frames to the ladders; returns where the audio now ends."""
        for frame in frames:
            if frame.pts is None or frame.time_base is None:
                continue
            seconds = frame.pts * frame.time_base
            if isinstance(frame, av.VideoFrame):
                self._offer_picture(frame, seconds)
            else:
                end = self._offer_audio(frame, seconds, end)
        return end

    def _offer_picture(self, frame: av.VideoFrame, seconds: Fraction) -> None:
        # Strictly increasing, whatever a contribution's rate rounds to (the encoders'
        # timestamps must be).
        index = max(round(seconds * self._fps), self._last_index + 1)
        self._last_index = index
        for ladder in self._ladders.values():
            # A burst (a studio draining its queue, a reconnect's backlog, the slate's
            # first second) waits here, in the decode queue, rather than being dropped.
            ladder.wait_for_room(ROOM_SECONDS)
            ladder.offer_picture(frame, index, bool(frame.key_frame))

    def _offer_audio(self, frame: av.AudioFrame, seconds: Fraction, end: int | None) -> int:
        samples = np.asarray(frame.to_ndarray(), dtype=np.float32)
        if frame.format.name != "fltp" or samples.shape[0] != CHANNELS:
            raise ValueError(f"audio decoded as {frame.format.name}, {samples.shape[0]} channels")
        position = round(seconds * SAMPLE_RATE)
        if end is not None and abs(position - end) <= SNAP_SAMPLES:
            position = end
        for ladder in self._ladders.values():
            ladder.offer_audio(samples, position)
        return position + int(samples.shape[1])


def _decoder_of(stream: Stream) -> tuple[str, bytes]:
    ctx = stream.codec_context
    return ctx.name, bytes(ctx.extradata or b"")


def _open(template: tuple[str, bytes]) -> VideoCodecContext | AudioCodecContext:
    name, extradata = template
    decoder = CodecContext.create(name, "r")
    assert isinstance(decoder, VideoCodecContext | AudioCodecContext)
    if extradata:
        decoder.extradata = extradata
    return decoder
