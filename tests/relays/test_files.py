"""Recordings killed mid-write: what is on disk at any moment (what ``kill -9`` leaves
behind: the kernel has every byte written, the process's buffers are gone) ends on a
whole unit, plays to its end, and lacks at most one GOP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from media import decode_errors, ffprobe
from program_replay import encode_loop, tiny_spec

from relays.files import LocalWriter, Output, keyframe_seconds, recording_options
from relays.packet import EncodedPacket

pytestmark = pytest.mark.media

GOP = 2  # keyframe_seconds, as jalsa's default
# Muxing waits for the audio to catch up with a keyframe before it closes the unit in
# front of it: a few audio frames.
INTERLEAVE = 0.2


def laps(packets: list[EncodedPacket], seconds: float) -> Iterator[EncodedPacket]:
    """``packets`` over and over, timestamps counting on, up to ``seconds``."""
    period = {}
    for kind in ("video", "audio"):
        own = [p for p in packets if p.kind == kind]
        period[kind] = own[-1].dts - own[0].dts + own[1].dts - own[0].dts
    ordered = sorted(packets, key=lambda p: p.seconds)
    lap = 0
    while True:
        for packet in ordered:
            shift = lap * period[packet.kind]
            moved = replace(packet, pts=packet.pts + shift, dts=packet.dts + shift)
            if moved.seconds > seconds:
                return
            yield moved
        lap += 1


@pytest.mark.parametrize(
    ("suffix", "fmt", "audio_only"),
    [
        (".mkv", "matroska", False),
        (".mp4", "mp4", False),
        (".flv", "flv", False),
        (".ts", "mpegts", False),
        (".mkv", "matroska", True),
        (".mp4", "mp4", True),
    ],
)
def test_a_killed_recording_plays_to_within_a_gop(
    suffix: str, fmt: str, audio_only: bool, tmp_path: Path
) -> None:
    encoder, packets = encode_loop(tiny_spec(keyframe_seconds=GOP), gops=2)
    templates = (encoder.video_stream, encoder.audio_stream)
    assert keyframe_seconds(encoder.video_stream) == GOP
    path = tmp_path / f"rec{suffix}"
    writer = LocalWriter(Output(str(path), fmt, str(path), {}, audio_only), templates)
    # Mid-GOP, just after a keyframe, just before one.
    kills = [5.5, 8.04, 11.95]
    for packet in laps(packets, 12.5):
        writer.write(packet)
        if kills and packet.seconds >= kills[0]:
            at = kills.pop(0)
            left = tmp_path / f"killed-{at}{suffix}"
            shutil.copyfile(path, left)
            probe = ffprobe(left)
            times = probe.audio_times if audio_only else probe.video_times
            assert max(times) >= at - GOP - INTERLEAVE, (at, max(times))
            assert decode_errors(left) == "", at
    assert not kills
    writer.finish(0)
    closed = ffprobe(path)
    assert closed.duration > 12.0
    assert decode_errors(path) == ""


def test_the_options_per_format() -> None:
    assert recording_options("matroska", 2, audio_only=False) == {
        "flush_packets": "1",
        "cluster_time_limit": "2000",
    }
    mp4 = recording_options("mp4", 4, audio_only=False)
    assert mp4["movflags"] == "frag_keyframe+empty_moov+default_base_moof"
    assert "frag_duration" not in mp4  # a fragment per video keyframe
    assert recording_options("mp4", 4, audio_only=True)["frag_duration"] == "4000000"
    assert recording_options("flv", 2, audio_only=False) == {"flush_packets": "1"}
    assert recording_options("mpegts", 2, audio_only=True) == {"flush_packets": "1"}
