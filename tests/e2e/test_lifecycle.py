"""Stopping jalsa: SIGTERM mid-event closes every output with a valid trailer within 5 s;
a second signal while an output is still closing exits at once with 130."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from event_toml import event_toml, program, slot, speaker
from faults import FaultProxy
from jalsa_run import JalsaRun
from media import decode_errors, ffprobe
from nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.media

HOST = [speaker("host", source="testsrc")]
TEN_MINUTES = [slot("host", "10m")]


def test_sigterm_closes_every_output_with_a_trailer(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Stop Test",
            event={"on_end": "slate"},
            program={"width": 640, "height": 360, "preset": "ultrafast"},
            speakers=HOST,
            rundown=TEN_MINUTES,
            destinations=[
                {"name": "mkv", "platform": "custom", "url": "out/show.mkv"},
                {"name": "mp4", "platform": "custom", "url": "out/show.mp4"},
                {"name": "flv", "platform": "custom", "url": "out/show.flv"},
                {"name": "mirror", "platform": "custom", "url": "hls"},
            ],
        )
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()
        run.media_flows(5)  # more than 4 s of program in every output before the stop
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


def test_a_second_signal_forces_exit(nginx: NginxRtmp, tmp_path: Path) -> None:
    # An RTMP platform that stops reading mid-stream: closing its output waits on it (up
    # to the stop's deadline), so the stop is still in progress when the second signal
    # comes.
    with FaultProxy("127.0.0.1", nginx.port) as platform:
        event = tmp_path / "event.toml"
        event.write_text(
            event_toml(
                "Second Signal",
                program=program(),
                speakers=HOST,
                rundown=TEN_MINUTES,
                destinations=[
                    {"name": "stuck", "url": f"rtmp://127.0.0.1:{platform.port}/live", "key": "k"}
                ],
            )
        )
        with JalsaRun(event, tmp_path / "state") as run:
            run.wait_ready()
            labels = {"destination": "stuck", "platform": "custom"}
            run.wait_for(lambda: run.metric("jalsa_relay_up", **labels) == 1, 20, "live")
            platform.set_mode("blackhole")
            run.wait_for(
                lambda: (run.metric("jalsa_relay_lag_seconds", **labels) or 0) > 0.5,
                10,
                "the output backed up behind the blackhole",
            )
            assert run.process is not None
            run.process.send_signal(signal.SIGINT)
            run.wait_for(
                lambda: "stopping: closing every output" in run.logs, 5, "the stop to begin"
            )
            run.process.send_signal(signal.SIGINT)
            code = run.wait(timeout=5)
    # 130: forced out mid-stop (a stop that finishes exits 0, as the test above shows).
    assert code == 130, run.logs[-3000:]
    assert "second signal, exiting now" in run.logs


def test_the_demo_runs_with_no_event_file(tmp_path: Path) -> None:
    with JalsaRun(None, tmp_path / "state") as run:
        run.wait_ready()
        run.media_flows(4)  # over 3 s recorded
        status, playlist = run.wait_for(
            lambda: (answer := run.http("/hls/mirror/index.m3u8"))[0] == 200 and answer,
            10,
            "the mirror's playlist",
        )
        assert status == 200 and b"#EXTM3U" in playlist
        assert "console:" in run.logs and "#token=" in run.logs
        code, _ = run.stop(signal.SIGINT)
    assert code == 0
    recordings = list((run.state_dir / "recordings").glob("demo-*.mkv"))
    assert len(recordings) == 1
    assert ffprobe(recordings[0]).duration > 3.0
