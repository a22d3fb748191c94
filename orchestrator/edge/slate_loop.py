"""The blip slate: a short loop encoded in advance at the contribution's own parameters.

"We'll be right back" on a card, with silence, encoded by the program's own encoder
(:class:`orchestrator.program.encoder.ProgramEncoder`, the same x264 and AAC settings)
at the contribution's size, frame rate and bitrates, so the slate can be spliced into
the studio's stream: same codecs, same AAC configuration, and where possible the same
H.264 parameter sets. The studio's preset and keyframe distance do not cross the
link, and both change the SPS/PPS, so the encoder is opened with the likely ones until
its parameter sets are the contribution's (opening an encoder makes its header without
encoding a frame). When none matches, the slate's keyframes carry their own SPS/PPS
in-band (and the studio's first keyframe after the slate its own: see
:mod:`orchestrator.edge.blip_cover`).

The loop is one closed GOP whose length is a whole number of video frames AND of AAC
frames (1024 samples), at least :data:`MIN_LOOP_SECONDS`: looped, audio and video stay
in step. Blocking (a few encoder opens, a GOP's encode): run it on a worker thread.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import av
import numpy as np
from av.stream import Stream

from orchestrator.edge.parameter_sets import ParameterSets, parameter_sets
from orchestrator.edge.timeline import SlatePacket
from orchestrator.event import ProgramSpec
from orchestrator.event.program_spec import LIMITS, X264_PRESETS
from orchestrator.program.audio import CHANNELS, SAMPLE_RATE
from orchestrator.program.encoder import AAC_FRAME, ProgramEncoder
from orchestrator.program.graphics import card
from relays.packet import EncodedPacket
from relays.rtmp.flv_tags import annexb_to_avcc

MIN_LOOP_SECONDS: Final = 2
COLOUR: Final = (24, 64, 160)  # the card's blue: the test finds it at the frame's centre
HEADLINE: Final = "We'll be right back"
SUBLINE: Final = "The venue's link is reconnecting"
# Searched in this order for the studio's SPS/PPS (jalsa's default first).
_PRESETS: Final = ("veryfast", "ultrafast", "superfast", "faster", "fast", "medium")
_KEYFRAME_SECONDS: Final = (2, 1, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class SlateLoop:
    """The pre-encoded loop.

    Attributes:
        packets: both kinds, in decoding order.
        seconds: the loop's length.
        studio_sets: the contribution's SPS/PPS (put in-band at the switch back when
            ``matched`` is False).
        matched: the slate's SPS/PPS are the contribution's.
        spec: what the slate was encoded with (its preset and keyframe distance are the
            first that matched, else jalsa's defaults).
    """

    packets: tuple[SlatePacket, ...]
    seconds: Fraction
    studio_sets: ParameterSets
    matched: bool
    spec: ProgramSpec


def loop_seconds(fps: int, sample_rate: int, at_least: int = MIN_LOOP_SECONDS) -> Fraction:
    """The shortest whole number of video and AAC frames that lasts ``at_least`` s."""
    frame, aac = Fraction(1, fps), Fraction(AAC_FRAME, sample_rate)
    common = Fraction(
        math.lcm(frame.numerator * aac.denominator, aac.numerator * frame.denominator),
        frame.denominator * aac.denominator,
    )
    return common * max(1, math.ceil(at_least / common))


def _clamp(name: str, value: int) -> int:
    low, high = LIMITS[name]
    return min(max(value, low), high)


@dataclass(frozen=True, slots=True)
class StudioFormat:
    """What the contribution's streams say about the studio's encode (read once, on the
    demux thread, so the slate's thread never touches the container)."""

    video_codec: str
    pix_fmt: str | None
    width: int
    height: int
    fps: float
    video_bit_rate: int
    extradata: bytes
    audio_codec: str
    sample_rate: int
    channels: int
    audio_bit_rate: int


def studio_format(video: Stream, audio: Stream) -> StudioFormat:
    v, a = video.codec_context, audio.codec_context
    return StudioFormat(
        video_codec=v.name,
        pix_fmt=getattr(v, "pix_fmt", None),
        width=int(getattr(v, "width", 0)),
        height=int(getattr(v, "height", 0)),
        fps=float(getattr(video, "average_rate", None) or 0),
        video_bit_rate=int(getattr(video, "bit_rate", 0) or 0),
        extradata=bytes(v.extradata or b""),
        audio_codec=a.name,
        sample_rate=int(getattr(a, "sample_rate", 0)),
        channels=int(getattr(a, "channels", 0)),
        audio_bit_rate=int(getattr(audio, "bit_rate", 0) or 0),
    )


def slate_spec(studio: StudioFormat) -> ProgramSpec:
    """A program spec at the contribution's size, rate and bitrates (jalsa's defaults
    for what the link does not say).

    Raises:
        ValueError: the contribution is not something jalsa's program encoder makes
            (H.264 4:2:0 at an even size, AAC at 48 kHz stereo).
    """
    problems = []
    if studio.video_codec != "h264" or studio.pix_fmt != "yuv420p":
        problems.append(f"video {studio.video_codec} {studio.pix_fmt}")
    if studio.audio_codec != "aac" or studio.sample_rate != SAMPLE_RATE:
        problems.append(f"audio {studio.audio_codec} at {studio.sample_rate} Hz")
    if studio.channels != CHANNELS:
        problems.append(f"{studio.channels} audio channels")
    if problems:
        raise ValueError("no slate for this contribution: " + ", ".join(problems))
    return ProgramSpec(
        width=studio.width,
        height=studio.height,
        fps=_clamp("fps", round(studio.fps or 30)),
        video_bitrate_kbps=_clamp("video_bitrate_kbps", studio.video_bit_rate // 1000 or 3000),
        audio_bitrate_kbps=_clamp("audio_bitrate_kbps", studio.audio_bit_rate // 1000 or 128),
    )


def _matching_encoder(
    spec: ProgramSpec, studio: ParameterSets
) -> tuple[ProgramEncoder, ParameterSets, bool]:
    tried = [(p, k) for k in _KEYFRAME_SECONDS for p in _PRESETS if p in X264_PRESETS]
    for preset, keyframe_seconds in tried:
        candidate = dataclasses.replace(spec, preset=preset, keyframe_seconds=keyframe_seconds)
        encoder = ProgramEncoder(candidate)
        sets = parameter_sets(bytes(encoder.video_stream.codec_context.extradata or b""))
        if sets.same_units(studio):
            return encoder, sets, True
        encoder.close()
    encoder = ProgramEncoder(spec)
    extradata = bytes(encoder.video_stream.codec_context.extradata or b"")
    return encoder, parameter_sets(extradata), False


def encode_slate(studio_format: StudioFormat) -> SlateLoop:
    """Encode the loop for a contribution of this format.

    Raises:
        ValueError: see :func:`slate_spec`; or the contribution has no usable H.264 header.
    """
    spec = slate_spec(studio_format)
    studio = parameter_sets(studio_format.extradata)
    encoder, own, matched = _matching_encoder(spec, studio)
    seconds = loop_seconds(spec.fps, SAMPLE_RATE)
    frames, aac_frames = int(seconds * spec.fps), int(seconds * SAMPLE_RATE / AAC_FRAME)
    picture = card(spec.width, spec.height, COLOUR, HEADLINE, SUBLINE)
    try:
        encoded: list[EncodedPacket] = []
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            encoded += encoder.encode_video(frame, index, keyframe=index == 0)
        encoded += encoder.encode_audio(
            np.zeros((CHANNELS, (aac_frames + 2) * AAC_FRAME), np.float32)
        )
        encoded += encoder.flush()
    finally:
        encoder.close()
    prefix = b"" if matched else own.in_band()
    video_packets = [p for p in encoded if p.kind == "video"][:frames]
    audio_packets = [p for p in encoded if p.kind == "audio"][:aac_frames]
    if len(video_packets) < frames or len(audio_packets) < aac_frames:
        raise ValueError("the slate encoder gave fewer packets than the loop needs")
    frame_s, aac_s = Fraction(1, spec.fps), Fraction(AAC_FRAME, SAMPLE_RATE)
    packets = [
        SlatePacket(
            "video",
            (prefix if p.keyframe else b"") + annexb_to_avcc(p.data),
            i * frame_s,
            Fraction(0),
            frame_s,
            p.keyframe,
        )
        for i, p in enumerate(video_packets)
    ] + [
        SlatePacket("audio", p.data, i * aac_s, Fraction(0), aac_s, True)
        for i, p in enumerate(audio_packets)
    ]
    packets.sort(key=lambda p: (p.at, p.kind != "video"))
    return SlateLoop(tuple(packets), seconds, studio, matched, encoder.spec)
