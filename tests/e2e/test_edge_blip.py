"""An uplink blip the platforms never see: the studio's contribution to a ``jalsa edge``
is cut (a blackhole in a FaultProxy between them) and restored; the edge covers the cut
with its pre-encoded slate and switches back at the studio's next keyframe.

studio ``jalsa run`` -> FaultProxy -> ``jalsa edge`` (HTTPS) -> two nginx-rtmp
"platforms" that record what they get, and the edge's own HLS mirror with its ladder
(made on the edge from the contribution), served from the edge's ``/hls/`` during the
cut and judged by ffprobe after. ``JALSA_EDGE_BLIP_SECONDS`` sets the cut
(default 20 s; the issue asks for up to 60). ``JALSA_EDGE_BLIP_PRESET`` the studio's x264
preset (default ultrafast: the slate finds the studio's SPS/PPS; ``slow`` is one it does
not try, so the switches go through in-band parameter sets).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from background import BackgroundLoop
from edge_process import EDGE_KEY, EdgeProcess, edge_file, studio_file
from faults import FaultProxy
from jalsa_run import JalsaRun, free_port, jalsa
from media import Probe, centre_colour, decode_errors, dominant, ffprobe
from nginx_rtmp import NginxRtmp
from tls_terminator import Certificates, make_certificates
from waiting import wait_for

pytestmark = [pytest.mark.media, pytest.mark.timeout(240)]

BLIP_SECONDS = float(os.environ.get("JALSA_EDGE_BLIP_SECONDS", "20"))
PRESET = os.environ.get("JALSA_EDGE_BLIP_PRESET", "ultrafast")
STREAMS = ("blip-yt-51c0", "blip-fb-7d2a")
EDGE = {"edge": "test-edge"}
MIRROR = """
[[destinations]]
name = "mirror"
url = "hls"
[destinations.ladder]
low_height = 144
low_video_kbps = 150
audio_kbps = 32
"""
RENDITIONS = ("program", "low", "audio")


@dataclass
class Blip:
    probes: dict[str, Probe]
    errors: dict[str, str]
    colours: dict[str, tuple[str, str, str]]  # before, during, after the cut
    walls: dict[str, float]  # each platform's publish to the studio's end
    republished: list[str]
    reconnects: dict[str, float | None]
    slate_seen: tuple[float | None, float | None]  # jalsa_edge_slate_on during, after
    health: dict[str, object]  # /healthz's contribution during the cut
    ended: tuple[object, object]  # slate on, blips: 2 s after the studio stopped
    blips: float | None
    back_after: float  # the link's return to the slate off
    slate_seconds: float  # jalsa_edge_slate_seconds_total once it is off
    slate_spans: dict[str, float]  # the recording's first to last slate frame, seconds
    report: dict[str, object]
    edge_logs: str
    served: dict[str, tuple[int, dict[str, str], bytes]]  # the edge's /hls/mirror/ in the cut
    hls_viewers: float | None  # the edge's jalsa_listeners{platform="hls"} after that
    ladders: list[dict[str, Any]]  # /healthz's ladders["mirror"] in the cut
    mirror: dict[str, Probe]
    mirror_errors: dict[str, str]


class SegmentKeeper(BackgroundLoop):
    """Keeps every segment of a live HLS folder as it appears (a live playlist lists the
    last few only, and jalsa deletes the older ones); :meth:`join` writes each rendition's
    segments, in order, as one MPEG-TS file for ffprobe."""

    def __init__(self, folder: Path, keep: Path) -> None:
        super().__init__(0.2)
        self._folder, self._keep = folder, keep
        keep.mkdir(parents=True, exist_ok=True)

    def tick(self) -> None:
        time.sleep(self.period)
        self._copy()

    def _copy(self) -> None:
        for segment in self._folder.glob("*.ts"):  # finished ones (temp_file: .ts.tmp before)
            kept = self._keep / segment.name
            if not kept.exists():
                # deleted in between: it was kept on an earlier pass, or it is lost
                with contextlib.suppress(FileNotFoundError):
                    shutil.copyfile(segment, kept)

    def join(self, rendition: str) -> Path:
        self._copy()
        number = re.compile(rf"{rendition}-(\d+)-(\d+)\.ts")
        parts = sorted(
            (tuple(map(int, m.groups())), path)
            for path in self._keep.glob(f"{rendition}-*.ts")
            if (m := number.fullmatch(path.name))
        )
        whole = self._keep / f"{rendition}-all.ts"
        with whole.open("wb") as out:
            for _, part in parts:
                out.write(part.read_bytes())
        return whole


def _largest_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _slate_span(path: Path) -> float:
    """Seconds from the recording's first frame of the slate (blue at the centre) to
    the end of its last."""
    blue: list[float] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[0] // 2, rgb.shape[1] // 2
            r, g, b = rgb[h - 8 : h + 8, w - 8 : w + 8].reshape(-1, 3).mean(axis=0)
            if dominant((int(r), int(g), int(b))) == "blue" and frame.time is not None:
                blue.append(frame.time)
    return max(blue) - min(blue) + 1 / 15 if blue else 0.0


@pytest.fixture(scope="module")
def blip(nginx: NginxRtmp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blip]:
    work = tmp_path_factory.mktemp("edge-blip")
    certs = make_certificates(work / "certs")
    edge_port, edge_metrics = free_port(), free_port()
    edge_toml = edge_file(work / "edge.toml", nginx, certs, STREAMS, MIRROR)
    with (
        EdgeProcess(edge_toml, work / "edge-state", edge_port, edge_metrics) as edge,
        FaultProxy("127.0.0.1", edge_port) as proxy,
        SegmentKeeper(work / "edge-state" / "hls" / "mirror", work / "mirror-kept") as kept,
    ):
        studio = studio_file(work / "studio.toml", nginx, certs, proxy.port, PRESET)
        wait_for(edge.metrics, 30, "the edge to serve", ignore=(OSError,))
        with JalsaRun(studio, work / "studio-state", env={"EDGE_KEY": EDGE_KEY}) as run:
            yield _cut_and_restore(edge, proxy, run, nginx, work, certs, kept)


def _get(edge: EdgeProcess, certs: Certificates, path: str) -> tuple[int, dict[str, str], bytes]:
    """``GET path`` on the edge's --listen, as a player (or a CDN) does (header names in
    lower case)."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    request = urllib.request.Request(
        f"https://127.0.0.1:{edge.listen}{path}", headers={"User-Agent": "test-player/1"}
    )
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, response.read()


def _healthz(edge: EdgeProcess, certs: Certificates) -> dict[str, Any]:
    contribution: dict[str, Any] = json.loads(_get(edge, certs, "/healthz")[2])["contribution"]
    return contribution


def _serve_mirror(
    edge: EdgeProcess, certs: Certificates
) -> dict[str, tuple[int, dict[str, str], bytes]]:
    """The master playlist, the low rendition's playlist and its newest segment."""
    served = {name: _get(edge, certs, f"/hls/mirror/{name}") for name in ("index.m3u8", "low.m3u8")}
    segment = [line for line in served["low.m3u8"][2].decode().splitlines() if line.endswith(".ts")]
    served["segment"] = _get(edge, certs, f"/hls/mirror/{segment[-1]}")
    return served


def _cut_and_restore(
    edge: EdgeProcess,
    proxy: FaultProxy,
    run: JalsaRun,
    nginx: NginxRtmp,
    work: Path,
    certs: Certificates,
    kept: SegmentKeeper,
) -> Blip:
    run.wait_ready()
    publish_at = {}  # each platform's publish (nginx's exec_publish), wall-clock time
    for stream in STREAMS:
        nginx.wait_published(stream, timeout=30)
        publish_at[stream] = (nginx.published_dir / stream).stat().st_mtime
        (nginx.published_dir / stream).unlink()  # a second publish would make it again
    published = time.monotonic()
    wait_for(lambda: "blip slate ready" in edge.logs, 30, "the slate encoded")
    run.media_flows(5.0)
    cut = time.monotonic() - published
    proxy.set_mode("blackhole")
    slate_on = wait_for(lambda: edge.metric("jalsa_edge_slate_on", **EDGE), 20, "slate on")
    health = _healthz(edge, certs)
    served = _serve_mirror(edge, certs)  # the mirror is live on the slate, from the edge
    hls_viewers = wait_for(
        lambda: edge.metric("jalsa_listeners", platform="hls"), 10, "the edge's hls listeners"
    )
    ladders = json.loads(_get(edge, certs, "/healthz")[2])["ladders"]["mirror"]
    wait_for(
        lambda: (edge.metric("jalsa_edge_slate_seconds_total", **EDGE) or 0) >= BLIP_SECONDS,
        BLIP_SECONDS + 20,
        f"the slate to cover {BLIP_SECONDS:g} s",
    )
    restored = time.monotonic()
    proxy.set_mode("pass")
    wait_for(lambda: edge.metric("jalsa_edge_slate_on", **EDGE) == 0, 60, "the studio back")
    back = time.monotonic()
    slate_off = edge.metric("jalsa_edge_slate_on", **EDGE)
    slate_seconds = edge.metric("jalsa_edge_slate_seconds_total", **EDGE) or 0.0
    run.media_flows(5.0)
    reconnects = {
        name: edge.metric("jalsa_relay_reconnects_total", destination=name, platform="custom")
        for name in ("yt", "fb")
    }
    republished = [s for s in STREAMS if (nginx.published_dir / s).exists() or nginx.recorded(s)]
    # The event ends at the studio: its contribution ends politely, and the edge's
    # silence after it is no blip (no slate for the platforms once the program is over).
    run.stop()
    walls = {s: time.time() - publish_at[s] for s in STREAMS}  # what each was sent for
    wait_for(lambda: "ended its contribution" in edge.logs, 20, "the edge to see the end")
    wait_for(lambda: (_healthz(edge, certs)["idle_seconds"] or 0) > 2.0, 20, "a silence")
    ended = (edge.metric("jalsa_edge_slate_on", **EDGE), _healthz(edge, certs)["blips"])
    blips = edge.metric("jalsa_edge_blips_total", **EDGE)
    assert edge.stop() == 0, edge.logs[-3000:]  # the queues' drain
    nginx.wait_recorded(*STREAMS, timeout=20)
    probes = {s: ffprobe(nginx.recording(s)) for s in STREAMS}
    after = back - published + 3.0
    colours = {
        s: tuple(
            dominant(centre_colour(nginx.recording(s), at))
            for at in (cut - 2.0, cut + 1.0 + BLIP_SECONDS / 2, after)
        )
        for s in STREAMS
    }
    report = jalsa("report", "--state", str(edge.state_dir), "--out", str(work / "report"))
    mirror = {name: kept.join(name) for name in RENDITIONS}
    assert report.returncode == 0, report.stderr
    return Blip(
        probes=probes,
        errors={s: decode_errors(nginx.recording(s)) for s in STREAMS},
        colours=colours,  # type: ignore[arg-type]
        walls=walls,
        republished=republished,
        reconnects=reconnects,
        slate_seen=(slate_on, slate_off),
        health=health,
        ended=ended,
        blips=blips,
        back_after=back - restored,
        slate_seconds=slate_seconds,
        slate_spans={s: _slate_span(nginx.recording(s)) for s in STREAMS},
        report=json.loads((work / "report" / "report.json").read_text()),
        edge_logs=edge.logs,
        served=served,
        hls_viewers=hls_viewers,
        ladders=ladders,
        mirror={name: ffprobe(path) for name, path in mirror.items()},
        mirror_errors={name: decode_errors(path) for name, path in mirror.items()},
    )


def test_no_platform_reconnects_through_the_blip(blip: Blip) -> None:
    assert blip.reconnects == {"yt": 0.0, "fb": 0.0}
    assert blip.republished == []  # one publish per platform, its recording never closed
    print(f"the studio back {blip.back_after:.1f} s after the link returned")
    # The bound: the program back within 2 s of the link's return (measured 0.1 s
    # after 20 and 60 s cuts; 0.9 to 2.1 s before the studio asked its encoder for a
    # keyframe as the contribution connects and tried again within a second).
    assert blip.back_after < 2.0, blip.back_after


def test_the_recordings_are_continuous_and_decode_cleanly(blip: Blip) -> None:
    for stream, probe in blip.probes.items():
        assert not blip.errors[stream], blip.errors[stream][:2000]
        assert probe.video_codec == "h264" and probe.audio_codec == "aac"
        for times in (probe.video_times, probe.audio_times):
            assert times == sorted(times), stream
        video_gap, audio_gap = probe.largest_video_gap, _largest_gap(probe.audio_times)
        wall = blip.walls[stream]
        ratio = probe.video_seconds / wall
        print(
            f"{stream}: {probe.video_seconds:.2f} s of video, {probe.audio_seconds:.2f} s of "
            f"audio in {wall:.2f} s of wall; largest gaps {video_gap:.3f} / {audio_gap:.3f} s"
        )
        assert video_gap < 0.5 and audio_gap < 0.5, stream
        # Roughly: the recording starts with what the edge queued before nginx saw the
        # publish (measured 1.02; 1.12 when a packet through the stalled link let the
        # studio's backlog end the slate); the slate's own pacing is checked to the frame
        # below.
        assert 0.9 <= ratio <= 1.1, (stream, probe.video_seconds, wall)


def test_the_slate_is_paced_in_real_time(blip: Blip) -> None:
    """The slate's media spans the time it was on, plus the stall it took to see
    (1 s, covered at once): no time lost, none made up."""
    for stream, span in blip.slate_spans.items():
        print(f"{stream}: {span:.2f} s of slate for {blip.slate_seconds:.2f} s on (+1 s)")
        assert abs(span - (blip.slate_seconds + 1.0)) < 0.5, (stream, span, blip.slate_seconds)


def test_the_slate_covers_the_cut_and_the_studio_comes_back(blip: Blip) -> None:
    for stream, (before, during, after) in blip.colours.items():
        assert during == "blue", (stream, before, during, after)
        assert before != "blue" and after != "blue", (stream, before, during, after)
    assert blip.slate_seen == (1.0, 0.0)
    assert blip.health["slate_on"] is True and blip.health["blips"] == 1, blip.health


def test_the_end_of_the_event_is_not_a_blip(blip: Blip) -> None:
    assert blip.ended == (0.0, 1)
    assert blip.blips == 1.0
    assert "the slate is on" in blip.edge_logs and "ends the slate" in blip.edge_logs
    sets = "in-band: not the studio's" if PRESET == "slow" else "the studio's)"
    assert f"parameter sets {sets}" in blip.edge_logs


def test_the_report_shows_the_blip_as_an_uplink_outage(blip: Blip) -> None:
    outages = blip.report["outages"]
    assert isinstance(outages, list) and len(outages) == 1, outages
    window = outages[0]
    assert (window["scope"], window["platform"], window["open"]) == (
        "uplink",
        "contribution",
        False,
    )
    assert window["seconds"] >= BLIP_SECONDS, window


def test_the_edge_serves_its_mirror_with_the_cache_headers(blip: Blip) -> None:
    """The origin a CDN fronts is the edge: listeners never load the venue's uplink."""
    (status, master_headers, master), low, segment = (
        blip.served[k] for k in ("index.m3u8", "low.m3u8", "segment")
    )
    assert status == 200 and master.decode().count("#EXT-X-STREAM-INF") == 3, master
    assert "RESOLUTION=256x144" in master.decode() and "RESOLUTION=320x180" in master.decode()
    assert master_headers["cache-control"] == "public, max-age=10"
    assert low[1]["cache-control"] == "public, max-age=1" and b"#EXTINF" in low[2]
    assert segment[0] == 200 and segment[1]["cache-control"].endswith("immutable")
    assert segment[2][:1] == b"G" and len(segment[2]) % 188 == 0  # MPEG-TS packets
    assert blip.hls_viewers == 1.0  # this test's player, counted on the edge


def test_the_edge_ladder_decodes_and_is_aligned_through_the_blip(blip: Blip) -> None:
    program, low, audio = (blip.mirror[name] for name in RENDITIONS)
    for name in RENDITIONS:
        assert blip.mirror_errors[name] == "", (name, blip.mirror_errors[name][:2000])
    assert (low.video_codec, low.width, low.height, audio.video_codec) == ("h264", 256, 144, None)
    # The slate came through the ladder too: no gap in the low rendition across the cut.
    assert low.video_seconds > BLIP_SECONDS + 5 and low.largest_video_gap < 0.5
    start = max(min(program.video_times), min(low.video_times))
    end = min(max(program.video_times), max(low.video_times))
    # As frame numbers: the program rendition has FLV's whole milliseconds (8.199 s), the
    # low one its frame's exact time (8.2 s): the same frame.
    common = [round(t * 15) for t in program.keyframe_times if start <= t <= end]
    assert len(common) >= BLIP_SECONDS / 3  # the studio's GOPs and the slate's
    assert common == [round(t * 15) for t in low.keyframe_times if start <= t <= end]
    # One timeline for audio too, by AAC frame (1024 samples at 48 kHz).
    frames = [{round(t * 48000 / 1024) for t in p.audio_times} for p in (program, audio)]
    shared = frames[0] & frames[1]
    assert len(shared) > 0.9 * len(audio.audio_times), (len(shared), len(audio.audio_times))
    for rendition in blip.ladders:
        assert rendition["up"] and rendition["error"] is None and rendition["sent_bytes"] > 0
