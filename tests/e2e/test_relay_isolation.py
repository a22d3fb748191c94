"""Isolation through a real ``jalsa run``: a blackholed and a throttled platform, RTMPS
with and without a trusted CA, audio-only RTMP and Icecast, all beside a healthy
platform that must not notice any of it.

One run (module-scoped, about 35 s): the faults are on from the start (the blackhole
accepts TCP and never answers: the case that froze the whole process while PyAV opened
the connection), heal after :data:`FAULT_SECONDS`, then the blackhole comes back just
before SIGTERM, which must still exit within 5 s.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from event_toml import event_toml, slot, speaker
from faults import FaultProxy
from icecast_server import Icecast
from jalsa_run import JalsaRun
from media import Probe, decode_errors, ffprobe
from nginx_rtmp import NginxRtmp
from tls_terminator import TlsTerminator, make_certificates

pytestmark = [pytest.mark.media, pytest.mark.timeout(180)]

FAULT_SECONDS = 12.0
THROTTLE = 40_000  # bytes/s, below the ~140 KB/s the stream needs
KEYS = {
    name: f"{name}-secret-key-{i}7f3"
    for i, name in enumerate(("healthy", "blackhole", "throttled", "audio", "strict", "trusted"))
}
ICECAST_PASSWORD = "icecast-source-pw-5e1"


def make_noise_clip(path: Path, seconds: float) -> Path:
    """Moving noise with a tone: it needs the program's whole video bitrate (a test
    card or a solid colour would fit through any throttle)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"nullsrc=s=160x90:r=30:d={seconds},geq=random(1)*255:128:128",
         "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


def listen(url: str, path: Path, seconds: float) -> Path:
    """What a listener hears for ``seconds``, from the first whole ADTS frame (Icecast
    starts a listener wherever its burst buffer starts, often mid-frame)."""
    data = bytearray()
    with urllib.request.urlopen(url, timeout=10) as response:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            data += response.read(4096)
    start = end_at = next(i for i in range(len(data)) if _adts_chain(data, i))
    while _adts_chain(data, end_at, frames=1):  # and up to the last whole frame
        end_at += _adts_length(data, end_at)
    path.write_bytes(bytes(data[start:end_at]))
    return path


def _adts_length(data: bytearray, at: int) -> int:
    return ((data[at + 3] & 0x03) << 11) | (data[at + 4] << 3) | (data[at + 5] >> 5)


def _adts_chain(data: bytearray, at: int, frames: int = 3) -> bool:
    """True if ``frames`` ADTS headers follow one another from ``at``."""
    for _ in range(frames):
        if at + 7 > len(data) or data[at] != 0xFF or data[at + 1] & 0xF6 != 0xF0:
            return False
        length = _adts_length(data, at)
        if length < 7 or at + length > len(data):
            return False
        at += length
    return True


@dataclass
class Run:
    run: JalsaRun
    nginx: NginxRtmp
    ready_at: float
    healed_at: float
    stopped_at: float
    exit_code: int
    stop_seconds: float
    metrics_faulty: str
    metrics_healed: str
    api_faulty: list[dict[str, Any]]
    api_healed: list[dict[str, Any]]
    pulled_audio: Path

    def probe(self, name: str) -> Probe:
        path = self.nginx.recording(KEYS[name])
        assert path.exists(), f"nothing recorded for {name}:\n{self.run.logs[-3000:]}"
        return ffprobe(path)

    @property
    def wall(self) -> float:
        return self.stopped_at - self.ready_at


def _destinations(api: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in api}


def state(run: JalsaRun, name: str) -> str:
    listing = json.loads(run.http("/api/destinations", token=run.token())[1])
    return str(_destinations(listing)[name]["state"])


@pytest.fixture(scope="module")
def finished(nginx: NginxRtmp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("relay-isolation")
    certificates = make_certificates(work / "certs")
    noise = make_noise_clip(work / "noise.mp4", seconds=45)
    with (
        FaultProxy("127.0.0.1", nginx.port, mode="blackhole") as blackhole,
        FaultProxy("127.0.0.1", nginx.port, mode="throttle", rate_bytes_per_s=THROTTLE) as slow,
        TlsTerminator(certificates, ("127.0.0.1", nginx.port)) as tls,
        Icecast(work / "icecast", password=ICECAST_PASSWORD) as icecast,
    ):
        rec = f"rtmp://127.0.0.1:{nginx.port}/rec"
        event = work / "event.toml"
        event.write_text(
            event_toml(
                "Relay Isolation",
                event={"on_end": "slate"},
                program={
                    "width": 640,
                    "height": 360,
                    "fps": 30,
                    "video_bitrate_kbps": 1000,
                    "audio_bitrate_kbps": 128,
                    "keyframe_seconds": 2,
                    "preset": "ultrafast",
                },
                speakers=[speaker("host", source=noise)],
                rundown=[slot("host", "10m")],
                destinations=[
                    {"name": "healthy", "url": rec, "key": KEYS["healthy"]},
                    {
                        "name": "blackhole",
                        "url": f"rtmp://127.0.0.1:{blackhole.port}/rec",
                        "key": KEYS["blackhole"],
                    },
                    {
                        "name": "throttled",
                        "url": f"rtmp://127.0.0.1:{slow.port}/rec",
                        "key": KEYS["throttled"],
                    },
                    {"name": "audio", "url": rec, "key": KEYS["audio"], "audio_only": True},
                    {
                        "name": "strict",
                        "url": f"rtmps://127.0.0.1:{tls.port}/rec",
                        "key": KEYS["strict"],
                    },
                    {
                        "name": "trusted",
                        "url": f"rtmps://127.0.0.1:{tls.port}/rec",
                        "key": KEYS["trusted"],
                        "ca_file": certificates.ca,
                    },
                    {"name": "radio", "url": icecast.source_url("radio.aac")},
                ],
            )
        )
        with JalsaRun(event, work / "state") as run:
            run.wait_ready()
            ready_at = time.monotonic()
            run.media_flows(FAULT_SECONDS)  # the program goes on, faults and all
            metrics_faulty = run.metrics_text()
            api_faulty = json.loads(run.http("/api/destinations", token=run.token())[1])
            pulled = listen(icecast.listen_url("radio.aac"), work / "pulled.aac", seconds=3.0)
            healed_at = time.monotonic()
            blackhole.set_mode("pass")
            slow.set_mode("pass")
            run.wait_for(lambda: state(run, "blackhole") == "live", 30, "the blackhole healed")
            run.media_flows(7.0)  # over 5 s recorded, from its first keyframe (every 2 s)
            metrics_healed = run.metrics_text()
            api_healed = json.loads(run.http("/api/destinations", token=run.token())[1])
            # A dead link at shutdown: its writer is abandoned at the deadline.
            blackhole.set_mode("blackhole")
            labels = {"destination": "blackhole", "platform": "custom"}
            run.wait_for(
                lambda: (run.metric("jalsa_relay_lag_seconds", **labels) or 0) > 0.5,
                10,
                "the blackholed link backed up",
            )
            stopped_at = time.monotonic()
            code, took = run.stop(signal.SIGTERM)
        # (Not the blackhole's: the proxy holds its upstream connection open.)
        nginx.wait_recorded(*(KEYS[name] for name in ("healthy", "throttled", "audio", "trusted")))
        yield Run(
            run,
            nginx,
            ready_at,
            healed_at,
            stopped_at,
            code,
            took,
            metrics_faulty,
            metrics_healed,
            api_faulty,
            api_healed,
            pulled,
        )


def test_sigterm_exits_in_time_even_with_a_dead_link(finished: Run) -> None:
    assert finished.exit_code == 0, finished.run.logs[-3000:]
    assert finished.stop_seconds < 5.0


def test_the_healthy_platform_gets_media_in_real_time_without_gaps(finished: Run) -> None:
    probe = finished.probe("healthy")
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
    # Media ≈ wall time: a process-wide freeze (the program thread stalled while a
    # connection was opened) would show as missing seconds here.
    assert probe.video_seconds >= finished.wall - 1.5
    assert probe.largest_video_gap <= 0.2
    assert decode_errors(finished.nginx.recording(KEYS["healthy"])) == ""


def test_faults_show_in_metrics_and_the_api(finished: Run) -> None:
    m = finished.metrics_faulty
    assert 'jalsa_relay_up{destination="healthy",platform="custom"} 1.0' in m
    assert 'jalsa_relay_up{destination="blackhole",platform="custom"} 0.0' in m
    assert 'jalsa_relay_up{destination="throttled",platform="custom"} 1.0' in m
    assert 'jalsa_relay_up{destination="strict",platform="custom"} 0.0' in m
    api = _destinations(finished.api_faulty)
    assert api["blackhole"]["state"] in ("connecting", "retrying")
    assert "did not accept the stream in time" in api["blackhole"]["last_error"]
    assert api["blackhole"]["reconnects"] >= 1
    throttled = api["throttled"]
    assert throttled["dropped_video"] > 0 and throttled["lag_seconds"] > 0.5
    lag = 'jalsa_relay_lag_seconds{destination="throttled",platform="custom"}'
    assert float(next(line for line in m.splitlines() if line.startswith(lag)).split()[-1]) > 0.5
    assert "TLS certificate verification failed" in api["strict"]["last_error"]
    assert api["healthy"]["reconnects"] == 0 and api["healthy"]["dropped_video"] == 0


def test_the_throttled_platform_keeps_continuous_audio(finished: Run) -> None:
    probe = finished.probe("throttled")
    assert probe.audio_seconds >= 0.9 * finished.wall
    assert max(b - a for a, b in itertools.pairwise(sorted(probe.audio_times))) < 0.5
    assert decode_errors(finished.nginx.recording(KEYS["throttled"])) == ""


def test_the_blackholed_platform_recovers_after_the_heal(finished: Run) -> None:
    api = _destinations(finished.api_healed)
    assert api["blackhole"]["state"] == "live"
    probe = finished.probe("blackhole")
    assert probe.video_seconds >= 5.0
    assert probe.keyframe_times[0] == probe.video_times[0]
    assert 'jalsa_relay_up{destination="blackhole",platform="custom"} 1.0' in (
        finished.metrics_healed
    )


def test_rtmps_with_a_trusted_ca_and_audio_only_rtmp_deliver(finished: Run) -> None:
    trusted = finished.probe("trusted")
    assert (trusted.video_codec, trusted.audio_codec) == ("h264", "aac")
    assert trusted.video_seconds >= finished.wall - 2.0
    audio = finished.probe("audio")
    assert (audio.video_codec, audio.audio_codec) == (None, "aac")
    assert audio.audio_seconds >= finished.wall - 2.0
    assert not finished.nginx.recording(KEYS["strict"]).exists()


def test_icecast_listeners_hear_aac(finished: Run) -> None:
    probe = ffprobe(finished.pulled_audio)
    assert (probe.video_codec, probe.audio_codec) == (None, "aac")
    assert probe.audio_seconds >= 2.5
    assert decode_errors(finished.pulled_audio) == ""


def test_keys_and_passwords_never_leak(finished: Run) -> None:
    text = finished.run.logs + finished.metrics_faulty + finished.metrics_healed
    text += json.dumps(finished.api_faulty) + json.dumps(finished.api_healed)
    for secret in (*KEYS.values(), ICECAST_PASSWORD):
        assert secret not in text
