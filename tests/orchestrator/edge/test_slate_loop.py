"""The blip slate's loop, encoded for real by the program encoder: its length, its
parameter sets, and a stream spliced studio -> slate -> studio that ffmpeg decodes
without an error when the studio's SPS/PPS are not the slate's (in-band switches)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import decode_errors

from orchestrator.edge.parameter_sets import parameter_sets
from orchestrator.edge.slate_loop import (
    SlateLoop,
    StudioFormat,
    encode_slate,
    loop_seconds,
    slate_spec,
)
from orchestrator.edge.timeline import Timeline
from orchestrator.event import ProgramSpec
from orchestrator.program.encoder import ProgramEncoder
from relays.packet import EncodedPacket

pytestmark = pytest.mark.media
MS = Fraction(1, 1000)


def _format(encoder: ProgramEncoder) -> StudioFormat:
    spec = encoder.spec
    extradata = bytes(encoder.video_stream.codec_context.extradata or b"")
    return StudioFormat(
        "h264", "yuv420p", spec.width, spec.height, spec.fps, 3_000_000, extradata,
        "aac", 48_000, 2, 128_000,
    )  # fmt: skip


def test_the_loop_is_whole_video_and_aac_frames() -> None:
    assert loop_seconds(15, 48_000) == Fraction(32, 15)
    assert loop_seconds(30, 48_000) == Fraction(32, 15)
    assert loop_seconds(25, 48_000) == Fraction(224, 100)
    for fps in (15, 24, 25, 30, 50, 60):
        seconds = loop_seconds(fps, 48_000)
        assert seconds >= 2 and (seconds * fps).denominator == 1
        assert (seconds * 48_000 / 1024).denominator == 1


def test_no_slate_for_audio_the_program_encoder_does_not_make() -> None:
    encoder = ProgramEncoder(ProgramSpec(width=320, height=180, fps=15, preset="ultrafast"))
    studio = dataclasses.replace(_format(encoder), sample_rate=44_100)
    encoder.close()
    with pytest.raises(ValueError, match="44100 Hz"):
        slate_spec(studio)


def _studio_flv(path: Path, encoder: ProgramEncoder) -> Path:
    """2 s of the studio's program, then 3 s from 20 s on (random pictures), as FLV:
    what the edge demuxes (length-prefixed units, an avcC header)."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format="flv") as container:
        stream = container.add_stream_from_template(encoder.video_stream)
        for i in [*range(30), *range(300, 345)]:
            picture = rng.integers(0, 255, (180 * 3 // 2, 320), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            for p in encoder.encode_video(frame, i, keyframe=i % 30 == 0):
                packet = av.Packet(p.data)
                packet.pts, packet.dts, packet.time_base = p.pts, p.dts, p.time_base
                packet.is_keyframe, packet.stream = p.keyframe, stream
                container.mux(packet)
    return path


def _splice(studio: Path, out_path: Path, loop: SlateLoop) -> Path:
    """The studio's first 2 s, the slate twice, the studio back (video only), as FLV."""
    timeline = Timeline({"video": MS, "audio": MS})
    out: list[EncodedPacket | None] = []
    with av.open(str(studio)) as source:
        template = source.streams.video[0]
        for p in source.demux(template):
            if p.dts is None or p.pts is None or not p.size:
                continue
            packet = EncodedPacket("video", bytes(p), p.pts, p.dts, MS, p.is_keyframe)
            if p.dts >= 10_000 and len(out) == 30:  # the studio's link stalled here
                timeline.start_slate()
                video = [s for s in loop.packets if s.kind == "video"]
                out += [timeline.slate(s, n * loop.seconds) for n in range(2) for s in video]
            mapped, switched = timeline.studio(packet)
            if switched and mapped is not None and not loop.matched:
                mapped = dataclasses.replace(mapped, data=loop.studio_sets.in_band() + mapped.data)
            out.append(mapped)
        with av.open(str(out_path), "w", format="flv") as container:
            stream = container.add_stream_from_template(template)
            for p in filter(None, out):
                packet = av.Packet(p.data)
                packet.pts, packet.dts, packet.time_base = p.pts, p.dts, p.time_base
                packet.is_keyframe, packet.stream = p.keyframe, stream
                container.mux(packet)
    return out_path


@pytest.mark.parametrize("preset", ["ultrafast", "slow"])
def test_the_spliced_stream_decodes_cleanly(tmp_path: Path, preset: str) -> None:
    encoder = ProgramEncoder(ProgramSpec(width=320, height=180, fps=15, preset=preset))
    studio = _studio_flv(tmp_path / "studio.flv", encoder)
    encoder.close()
    with av.open(str(studio)) as source:  # the header as the edge sees it: avcC
        extradata = bytes(source.streams.video[0].codec_context.extradata or b"")
    assert extradata[:1] == b"\x01"
    loop = encode_slate(dataclasses.replace(_format(encoder), extradata=extradata))
    assert loop.matched == (preset == "ultrafast")  # "slow" is not searched: in-band
    assert loop.studio_sets.same_units(parameter_sets(extradata))
    keyframes = [p for p in loop.packets if p.kind == "video" and p.keyframe]
    assert keyframes and all(p.data.startswith(b"\x00\x00") for p in keyframes)
    if not loop.matched:  # each slate keyframe starts with its own SPS (NAL type 7)
        assert all(p.data[4] & 0x1F == 7 for p in keyframes)
    path = _splice(studio, tmp_path / "spliced.flv", loop)
    assert decode_errors(path) == ""
    frames = sum(1 for _ in av.open(str(path)).decode(video=0))
    assert frames == 30 + 2 * 32 + 45
