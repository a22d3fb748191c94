"""The ONE encode: libx264 + AAC, whose packets every destination shares.

The encoder streams live in a ``null`` output container: PyAV then fills their codec
parameters (including the H.264 global header), which is what each destination's muxer
copies with ``add_stream_from_template``. The null muxer itself never writes anything.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np
from av.audio.stream import AudioStream
from av.codec.context import Flags
from av.video.frame import PictureType
from av.video.stream import VideoStream

from orchestrator.event import ProgramSpec
from orchestrator.program.audio import CHANNELS, SAMPLE_RATE, Samples
from relays.packet import EncodedPacket, PacketKind

AAC_FRAME = 1024


def open_encode(
    fps: int, width: int, height: int, preset: str, kbps: tuple[int, int], gop: int | None
) -> tuple[av.container.OutputContainer, VideoStream, AudioStream]:
    """A ``null`` container with libx264 + AAC streams, encoding started: the program's
    settings, shared by every encode of them (the program, the mirror's renditions, the
    edge's slate) so that their parameters agree.

    Args:
        kbps: video and audio bitrates.
        gop: frames between keyframes, or None: keyframes only where a picture asks for one.
    """
    container = av.open("null:", "w", format="null")
    video_kbps, audio_kbps = kbps
    video: VideoStream = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.time_base = Fraction(1, fps)
    video.bit_rate = video_kbps * 1000
    video.codec_context.gop_size = gop if gop is not None else 1 << 30
    # Out-of-band SPS/PPS (extradata): FLV, MP4 and Matroska need it in their header.
    video.codec_context.flags |= Flags.global_header
    keyint = f"keyint={gop}:min-keyint={gop}" if gop is not None else "keyint=infinite"
    video.options = {
        "preset": preset,
        "tune": "zerolatency",
        "forced-idr": "1",
        # A keyframe every gop frames (and at every forced cut), no scene-cut keyframes;
        # VBV caps the rate so a platform's ingest never sees bursts.
        "x264-params": (
            f"{keyint}:scenecut=0:vbv-maxrate={video_kbps}:vbv-bufsize={video_kbps * 2}:force-cfr=1"
        ),
    }
    audio: AudioStream = container.add_stream("aac", rate=SAMPLE_RATE)
    audio.layout = "stereo"
    audio.time_base = Fraction(1, SAMPLE_RATE)
    audio.bit_rate = audio_kbps * 1000
    container.start_encoding()
    return container, video, audio


class ProgramEncoder:
    """Encodes program pictures and samples; timestamps are the caller's frame counters.

    Invariants: video pts is the frame number (time base 1/fps) and audio pts the sample
    number (time base 1/48000), both strictly increasing from 0, so the output has no gap
    and no jump whatever the program switched between.
    """

    def __init__(self, spec: ProgramSpec) -> None:
        self.spec = spec
        gop = spec.fps * spec.keyframe_seconds
        self._container, video, audio = open_encode(
            spec.fps, spec.width, spec.height, spec.preset,
            (spec.video_bitrate_kbps, spec.audio_bitrate_kbps), gop,
        )  # fmt: skip
        self.video_stream = video
        self.audio_stream = audio
        self._pending = np.zeros((CHANNELS, 0), dtype=np.float32)
        self._samples = 0

    def encode_video(
        self, picture: av.VideoFrame, index: int, keyframe: bool
    ) -> list[EncodedPacket]:
        picture.pts = index
        picture.time_base = self.video_stream.time_base
        picture.pict_type = PictureType.I if keyframe else PictureType.NONE
        return [self._wrap("video", p) for p in self.video_stream.encode(picture)]

    def encode_audio(self, samples: Samples) -> list[EncodedPacket]:
        """Queue samples; encode every whole AAC frame (1024 samples) they complete."""
        self._pending = np.concatenate((self._pending, samples), axis=1)
        packets: list[EncodedPacket] = []
        while self._pending.shape[1] >= AAC_FRAME:
            chunk = np.ascontiguousarray(self._pending[:, :AAC_FRAME])
            self._pending = self._pending[:, AAC_FRAME:]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self._samples
            frame.time_base = self.audio_stream.time_base
            self._samples += AAC_FRAME
            packets.extend(self._wrap("audio", p) for p in self.audio_stream.encode(frame))
        return packets

    def flush(self) -> list[EncodedPacket]:
        packets = [self._wrap("video", p) for p in self.video_stream.encode(None)]
        packets.extend(self._wrap("audio", p) for p in self.audio_stream.encode(None))
        return packets

    def close(self) -> None:
        self._container.close()

    @staticmethod
    def _wrap(kind: PacketKind, packet: av.Packet[Any]) -> EncodedPacket:
        assert packet.pts is not None and packet.dts is not None and packet.time_base
        return EncodedPacket(
            kind=kind,
            data=bytes(packet),
            pts=packet.pts,
            dts=packet.dts,
            time_base=packet.time_base,
            keyframe=packet.is_keyframe,
            duration=packet.duration or 0,
        )
