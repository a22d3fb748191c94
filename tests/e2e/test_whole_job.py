"""The whole job, as an operator runs it: an event file in, platforms fed, judged by ffprobe.

One jalsa run (module-scoped) feeds two RTMP "platforms" (nginx-rtmp recording what it
receives), a refusing endpoint, a Matroska recording and the HLS mirror, through a
rundown of three clips; the tests then check what each destination received.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun, free_port
from media import Probe, centre_colour, decode_errors, dominant, ffprobe
from nginx_rtmp import NginxRtmp
from PIL import Image

pytestmark = pytest.mark.media

CUSTOM_KEY = "custom-secret-key-9f8e7d"
YT_KEY = "yt-secret-key-1a2b3c"
SLOT = 6.0  # seconds per rundown item
SLOTS = 4


@dataclass
class Finished:
    run: JalsaRun
    exit_code: int
    nginx: NginxRtmp
    recording: Path
    metrics_live: str
    scraped_at: float  # Unix time of metrics_live
    state_live: bytes
    state_unauthorised: int


@pytest.fixture(scope="module")
def finished(
    nginx: NginxRtmp, clips: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Finished]:
    work = tmp_path_factory.mktemp("whole-job")
    # A message with no video track, from a speaker with a (red) photo.
    message, photo = work / "radio.m4a", work / "radio.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=550:d=8", "-c:a", "aac",
         str(message)],
        check=True, timeout=60,
    )  # fmt: skip
    Image.new("RGB", (320, 180), (220, 20, 20)).save(photo)
    refused = free_port()  # nothing listens here
    event = work / "rally.toml"
    event.write_text(
        event_toml(
            "Test Jalsa",
            event={"on_end": "stop"},
            program={
                "width": 640,
                "height": 360,
                "fps": 30,
                "video_bitrate_kbps": 800,
                "audio_bitrate_kbps": 96,
                "keyframe_seconds": 2,
                "preset": "ultrafast",
            },
            speakers=[
                speaker("red", "Red Speaker", title="First", source=clips / "red.mp4"),
                speaker("blue", "Blue Speaker", source=clips / "blue.mp4"),
                speaker("green", "Green Speaker", source=clips / "green.mp4"),
                speaker("radio", "Radio Speaker", source=message, photo=photo),
            ],
            rundown=[slot(who, f"{SLOT:g}s") for who in ("red", "blue", "green", "radio")],
            destinations=[
                {
                    "name": "custom",
                    "platform": "custom",
                    "url": nginx.url("rec", ""),
                    "key": CUSTOM_KEY,
                },
                {
                    "name": "yt",
                    "platform": "youtube",
                    "url": nginx.url("rec", ""),
                    "key": "${YT_TEST_KEY}",
                },
                {
                    "name": "refusing",
                    "platform": "custom",
                    "url": f"rtmp://127.0.0.1:{refused}/live",
                    "key": "refused-key",
                },
                {"name": "recording", "platform": "custom", "url": "recordings/show.mkv"},
                {"name": "mirror", "platform": "custom", "url": "hls"},
            ],
        )
    )
    with JalsaRun(event, work / "state", env={"YT_TEST_KEY": YT_KEY}) as run:
        run.wait_ready()
        # Mid-way through blue's slot: on air, then half a slot of program.
        run.wait_for(lambda: run.metric("jalsa_on_air", speaker="blue") == 1, SLOT + 10, "blue")
        run.media_flows(SLOT / 2)
        scraped_at = time.time()
        metrics_live = run.metrics_text()
        _, state_live = run.http("/api/state", token=run.token())
        unauthorised, _ = run.http("/api/state")
        exit_code = run.wait(timeout=SLOTS * SLOT + 30)
        nginx.wait_recorded(CUSTOM_KEY, YT_KEY)
        yield Finished(
            run,
            exit_code,
            nginx,
            work / "recordings" / "show.mkv",
            metrics_live,
            scraped_at,
            state_live,
            unauthorised,
        )


def _platform(finished: Finished, key: str) -> Probe:
    path = finished.nginx.recording(key)
    assert path.exists(), f"nginx recorded nothing for that stream:\n{finished.run.logs}"
    return ffprobe(path)


def test_the_rundown_ends_and_jalsa_exits_cleanly(finished: Finished) -> None:
    assert finished.exit_code == 0, finished.run.logs


@pytest.mark.parametrize("key", [CUSTOM_KEY, YT_KEY])
def test_each_platform_receives_the_configured_program(finished: Finished, key: str) -> None:
    probe = _platform(finished, key)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
    assert (probe.width, probe.height) == (640, 360)
    # The whole rundown, without gaps: duration ≈ wall time of the rundown.
    assert probe.video_seconds == pytest.approx(SLOTS * SLOT, abs=1.5)
    assert probe.audio_seconds == pytest.approx(SLOTS * SLOT, abs=1.5)
    assert probe.largest_video_gap <= 0.2
    assert decode_errors(finished.nginx.recording(key)) == ""


def test_keyframes_every_two_seconds_at_most(finished: Finished) -> None:
    keyframes = _platform(finished, CUSTOM_KEY).keyframe_times
    gaps = [b - a for a, b in itertools.pairwise(keyframes)]
    assert gaps and max(gaps) <= 2.0 + 0.05


def test_the_right_speaker_is_on_air_mid_segment(finished: Finished) -> None:
    path = finished.nginx.recording(CUSTOM_KEY)
    start = ffprobe(path).video_times[0]
    seen = [dominant(centre_colour(path, start + t)) for t in (SLOT * 0.5, SLOT * 1.5)]
    assert seen == ["red", "blue"]
    # green's clip is 3 s long in a 6 s slot: green first, then the slate covers the rest.
    assert dominant(centre_colour(path, start + SLOT * 2 + 1.0)) == "green"
    assert dominant(centre_colour(path, start + SLOT * 3 - 1.0)) == "dark"
    # radio's message has no video: their photo (red) is on air, not the slate held over.
    assert dominant(centre_colour(path, start + SLOT * 3.5)) == "red"


def test_a_refusing_destination_does_not_disturb_the_others(finished: Finished) -> None:
    metrics = finished.metrics_live
    assert 'jalsa_relay_up{destination="refusing",platform="custom"} 0.0' in metrics
    assert 'jalsa_relay_up{destination="custom",platform="custom"} 1.0' in metrics
    assert 'jalsa_relay_up{destination="yt",platform="youtube"} 1.0' in metrics
    reconnects = [
        line
        for line in metrics.splitlines()
        if line.startswith('jalsa_relay_reconnects_total{destination="refusing"')
    ]
    assert reconnects and float(reconnects[0].split()[-1]) >= 1


def test_metrics_show_who_is_on_air(finished: Finished) -> None:
    assert "jalsa_program_up 1.0" in finished.metrics_live
    assert 'jalsa_on_air{speaker="blue"} 1.0' in finished.metrics_live
    assert 'jalsa_on_air{speaker="red"} 0.0' in finished.metrics_live


def test_metrics_say_when_the_event_ends(finished: Finished) -> None:
    line = next(
        line
        for line in finished.metrics_live.splitlines()
        if line.startswith("jalsa_event_end_timestamp_seconds ")
    )
    # Scraped 1.5 slots into the rundown (and after start-up): at most SLOTS - 1.5 to go.
    remaining = float(line.split()[-1]) - finished.scraped_at
    assert 0 < remaining <= SLOT * (SLOTS - 1.5) + 0.5


def test_the_recording_is_complete_and_finalised(finished: Finished) -> None:
    probe = ffprobe(finished.recording)
    assert (probe.video_codec, probe.audio_codec, probe.width) == ("h264", "aac", 640)
    assert probe.duration == pytest.approx(SLOTS * SLOT, abs=1.5)
    assert decode_errors(finished.recording) == ""


def test_the_hls_mirror_ends_with_an_endlist(finished: Finished) -> None:
    playlist = finished.run.state_dir / "hls" / "mirror" / "index.m3u8"
    text = playlist.read_text()
    assert "#EXT-X-ENDLIST" in text
    segments = [line for line in text.splitlines() if line.endswith(".ts")]
    assert segments
    assert decode_errors(playlist) == ""


def test_the_api_needs_the_operator_token(finished: Finished) -> None:
    assert finished.state_unauthorised == 401
    assert b'"on_air": "blue"' in finished.state_live or b'"on_air":"blue"' in finished.state_live


def test_stream_keys_never_appear_in_logs_metrics_or_api(finished: Finished) -> None:
    for key in (CUSTOM_KEY, YT_KEY, "refused-key"):
        assert key not in finished.run.logs
        assert key not in finished.metrics_live
        assert key.encode() not in finished.state_live
