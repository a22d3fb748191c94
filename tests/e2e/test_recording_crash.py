"""kill -9 mid-event: every recording left behind plays to its end, within one GOP of
the kill, and the restarted jalsa records into new files (name-1.mkv), the old ones
untouched."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import decode_errors, ffprobe

pytestmark = pytest.mark.media

KEYFRAME_SECONDS = 2
SUFFIXES = (".mkv", ".mp4", ".flv", ".ts")


def test_a_killed_recording_plays_to_within_a_gop_of_the_kill(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Crash Test",
            program=program(keyframe_seconds=KEYFRAME_SECONDS),
            speakers=[speaker("host", source="testsrc")],
            rundown=[slot("host", "10m")],
            destinations=[
                {"name": f"rec-{suffix[1:]}", "platform": "custom", "url": f"out/show{suffix}"}
                for suffix in SUFFIXES
            ],
        )
    )
    out = tmp_path / "out"
    with JalsaRun(event, tmp_path / "state") as first:
        first.wait_ready()
        first.media_flows(20)
        live = first.media_seconds()  # the program started with the first keyframe
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.wait(10)
    sizes = {}
    for suffix in SUFFIXES:
        path = out / f"show{suffix}"
        probe = ffprobe(path)  # reads it (check=True: ffprobe exits 0)
        assert (probe.video_codec, probe.audio_codec) == ("h264", "aac"), suffix
        lost = live - probe.video_seconds
        assert lost <= KEYFRAME_SECONDS + 0.5, f"{suffix}: {lost:.2f} s lost"
        assert probe.audio_seconds >= live - KEYFRAME_SECONDS - 0.5, suffix
        assert decode_errors(path) == "", suffix  # decodes to its end
        sizes[suffix] = path.stat().st_size

    with JalsaRun(event, tmp_path / "state") as second:
        second.wait_ready()
        second.media_flows(4)
        code, _ = second.stop(signal.SIGTERM)
    assert code == 0, second.logs[-3000:]
    for suffix in SUFFIXES:
        assert (out / f"show{suffix}").stat().st_size == sizes[suffix], suffix
        again = out / f"show-1{suffix}"
        assert ffprobe(again).video_seconds > 3.0, suffix
        assert decode_errors(again) == "", suffix
