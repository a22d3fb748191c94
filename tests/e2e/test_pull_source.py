"""A pulled RTMP source whose pusher dies mid-segment and comes back.

While it is down the program shows the "reconnecting" slate; when it returns, jalsa
reconnects by itself and the speaker is back on air. The output never has a gap.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun
from media import centre_colour, decode_errors, dominant, ffprobe
from nginx_rtmp import NginxRtmp
from waiting import wait_for

pytestmark = pytest.mark.media

PROGRAM = {"width": 640, "height": 360, "preset": "ultrafast", "video_bitrate_kbps": 600}
KILLED_AT = 9  # seconds after jalsa is up, the field encoder dies…
RESTARTED_AT = 18  # …and comes back


@contextmanager
def pusher(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """An encoder in the field pushing a blue picture and a tone, in real time."""
    process = subprocess.Popen(
        [
            "ffmpeg",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=480x270:r=25",
            "-f",
            "lavfi",
            "-i",
            "sine=f=500:r=44100",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-f",
            "flv",
            url,
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)


def test_a_dropped_pull_is_covered_then_recovered(nginx: NginxRtmp, tmp_path: Path) -> None:
    source = nginx.url("live", "field-encoder")
    event = tmp_path / "pull.toml"
    event.write_text(
        event_toml(
            "Pull Test",
            event={"on_end": "stop"},
            program=PROGRAM,
            speakers=[speaker("field", "Field Reporter", source=source)],
            rundown=[slot("field", "36s")],
            destinations=[{"name": "recording", "platform": "custom", "url": "out/pull.mkv"}],
        )
    )
    with pusher(source) as first:
        nginx.wait_published("field-encoder")  # publishing before jalsa starts
        with JalsaRun(event, tmp_path / "state") as run:
            run.wait_ready()
            # The schedule by the program's clock: the recording's times are its times.
            run.media_flows(KILLED_AT)
            first.kill()
            first.wait(10)
            run.media_flows(RESTARTED_AT - KILLED_AT)
            with pusher(source):
                code = run.wait(timeout=60)
    assert code == 0, run.logs
    recording = tmp_path / "out" / "pull.mkv"
    probe = ffprobe(recording)
    assert probe.largest_video_gap <= 0.2
    assert probe.video_seconds == pytest.approx(36, abs=2)
    assert decode_errors(recording) == ""
    # What was on air, second by second (robust to how fast a loaded machine reconnects):
    # the field encoder (blue), then after the kill the "reconnecting" slate (dark, not a
    # frozen picture), then the encoder again once it is back, without anyone's help.
    begin = probe.video_times[0]
    seen = [dominant(centre_colour(recording, begin + t)) for t in range(1, 36)]
    runs = [(colour, t + 1) for t, colour in enumerate(seen) if t == 0 or seen[t - 1] != colour]
    assert [colour for colour, _ in runs][-3:] == ["blue", "dark", "blue"], runs
    slate_from, back_from = runs[-2][1], runs[-1][1]
    assert KILLED_AT <= slate_from < RESTARTED_AT < back_from, runs
    assert "Reconnecting to Field Reporter" in run.logs


@contextmanager
def hls_origin(folder: Path) -> Iterator[str]:
    """A live HLS stream (green, 1 s segments) served over HTTP, like a CDN origin."""
    folder.mkdir()
    encoder = subprocess.Popen(
        [
            "ffmpeg",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "color=c=green:s=426x240:r=25",
            "-f",
            "lavfi",
            "-i",
            "sine=f=300:r=48000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "6",
            "-hls_flags",
            "delete_segments",
            str(folder / "live.m3u8"),
        ],
        stdin=subprocess.DEVNULL,
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def segments() -> int:
        playlist = folder / "live.m3u8"
        text = playlist.read_text() if playlist.exists() else ""
        return sum(line.endswith(".ts") for line in text.splitlines())

    try:
        wait_for(lambda: segments() >= 3, 20, "a few segments in the origin's playlist")
        yield f"http://127.0.0.1:{server.server_address[1]}/live.m3u8"
    finally:
        server.shutdown()
        server.server_close()
        encoder.kill()
        encoder.wait(10)


def test_a_pulled_hls_stream_goes_on_air(tmp_path: Path) -> None:
    with hls_origin(tmp_path / "origin") as url:
        event = tmp_path / "hls.toml"
        event.write_text(
            event_toml(
                "HLS Pull",
                event={"on_end": "stop"},
                program=PROGRAM,
                speakers=[speaker("cdn", "Relay From Karachi", source=url)],
                rundown=[slot("cdn", "12s")],
                destinations=[{"name": "recording", "platform": "custom", "url": "out/hls.mkv"}],
            )
        )
        with JalsaRun(event, tmp_path / "state") as run:
            code = run.wait(timeout=60)
    assert code == 0, run.logs
    recording = tmp_path / "out" / "hls.mkv"
    probe = ffprobe(recording)
    assert probe.largest_video_gap <= 0.2
    assert dominant(centre_colour(recording, probe.video_times[0] + 9)) == "green"
