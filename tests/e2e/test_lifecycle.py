"""Stopping jalsa: SIGTERM mid-event closes every output with a valid trailer within 5 s."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path

import pytest
from jalsa_run import JalsaRun
from media import decode_errors, ffprobe

pytestmark = pytest.mark.media


def test_sigterm_closes_every_output_with_a_trailer(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        textwrap.dedent("""
        [event]
        name = "Stop Test"
        on_end = "slate"

        [program]
        width = 640
        height = 360
        preset = "ultrafast"

        [[speakers]]
        id = "host"
        name = "Host"
        source = "testsrc"

        [[rundown]]
        speaker = "host"
        duration = "10m"

        [[destinations]]
        name = "mkv"
        platform = "custom"
        url = "out/show.mkv"

        [[destinations]]
        name = "mp4"
        platform = "custom"
        url = "out/show.mp4"

        [[destinations]]
        name = "flv"
        platform = "custom"
        url = "out/show.flv"

        [[destinations]]
        name = "mirror"
        platform = "custom"
        url = "hls"
    """)
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()
        time.sleep(5)
        code, took = run.stop(signal.SIGTERM)
    assert code == 0, run.logs
    assert took < 5.0
    for name in ("show.mkv", "show.mp4", "show.flv"):
        path = tmp_path / "out" / name
        probe = ffprobe(path)
        assert (probe.video_codec, probe.audio_codec) == ("h264", "aac"), name
        assert probe.duration > 4.0, name
        assert decode_errors(path) == "", name
    assert "#EXT-X-ENDLIST" in (run.state_dir / "hls" / "mirror" / "index.m3u8").read_text()


def test_a_second_signal_forces_exit(tmp_path: Path) -> None:
    with JalsaRun(None, tmp_path / "state") as run:
        run.wait_ready()
        assert run.process is not None
        run.process.send_signal(signal.SIGINT)
        run.process.send_signal(signal.SIGINT)
        code = run.wait(timeout=5)
    assert code in (0, 130)


def test_the_demo_runs_with_no_event_file(tmp_path: Path) -> None:
    with JalsaRun(None, tmp_path / "state") as run:
        run.wait_ready()
        time.sleep(4)
        status, playlist = run.http("/hls/mirror/index.m3u8")
        assert status == 200 and b"#EXTM3U" in playlist
        assert "console:" in run.logs and "#token=" in run.logs
        code, _ = run.stop(signal.SIGINT)
    assert code == 0
    recordings = list((run.state_dir / "recordings").glob("demo-*.mkv"))
    assert len(recordings) == 1
    assert ffprobe(recordings[0]).duration > 3.0
