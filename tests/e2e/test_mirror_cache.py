"""The mirror behind a real nginx ``proxy_cache`` (deploy/nginx/jalsa-mirror.conf).

Origin headers first (straight to jalsa): Cache-Control, ETag/304, Last-Modified,
Content-Length, gzip, byte ranges, CORS. Then many simulated players on loopback fetch the
ladder through the cache: jalsa sees at most 2 requests per segment per rendition, no
player misses a segment, gets an error or would stall (each segment there before it is
due, playing from 4 s after the first came), the program keeps its clock and the event's
other destinations (a platform at nginx-rtmp, a recording) keep real time.

The issue asks for 500 players for 60 s. This 2-core machine, shared, runs
``JALSA_MIRROR_PLAYERS`` (default 300) for ``JALSA_MIRROR_SECONDS`` (default 30) in one
Python client process beside jalsa and nginx; 500 for 60 s was run once with
``JALSA_MIRROR_PLAYERS=500 JALSA_MIRROR_SECONDS=60`` (docs/mirror.md), and
bench/mirror_cache.py runs 1,000 for 30 s by default.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hls_players import RENDITIONS, PlayerResult, ladder_event, play
from http_cache import HttpCache
from jalsa_run import JalsaRun
from media import ffprobe
from nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.media

PLAYERS = int(os.environ.get("JALSA_MIRROR_PLAYERS", "300"))
SECONDS = float(os.environ.get("JALSA_MIRROR_SECONDS", "30"))


STREAM = "cache-platform-3b9e"  # the RTMP destination's stream key at nginx


@dataclass
class Mirror:
    run: JalsaRun
    cache: HttpCache
    outputs: dict[str, Path]  # what the other destinations wrote: a platform, a recording


@pytest.fixture(scope="module")
def mirror(nginx: NginxRtmp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    tmp_path = tmp_path_factory.mktemp("mirror-cache")
    event = tmp_path / "event.toml"
    platform = {"name": "yt", "url": f"rtmp://127.0.0.1:{nginx.port}/rec", "key": STREAM}
    recording = {"name": "recording", "url": "recordings/cache.flv"}
    event.write_text(ladder_event("Mirror Cache", also=(platform, recording)))
    with (
        JalsaRun(event, tmp_path / "state") as run,
        HttpCache(tmp_path / "nginx", run.http_port) as cache,
    ):
        run.wait_ready()
        run.wait_for(
            lambda: all(run.http(f"/hls/mirror/{name}")[0] == 200 for name in RENDITIONS),
            30,
            "every rendition's playlist",
        )
        nginx.wait_published(STREAM, timeout=30)
        written = tmp_path / "recordings" / "cache.flv"  # (beside the event file)
        run.wait_for(written.exists, 10, "the recording")
        yield Mirror(run, cache, {"yt": nginx.recording(STREAM), "recording": written})


def request(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        answer = connection.getresponse()
        body = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body
    finally:
        connection.close()


def newest_segment(mirror: Mirror, rendition: str) -> str:
    _, _, body = request(mirror.run.http_port, f"/hls/mirror/{rendition}")
    return [line for line in body.decode().splitlines() if line.endswith(".ts")][-1]


def test_playlists_are_short_lived_and_compressible(mirror: Mirror) -> None:
    port = mirror.run.http_port
    status, headers, body = request(port, "/hls/mirror/low.m3u8")
    assert status == 200 and body.startswith(b"#EXTM3U")
    assert headers["cache-control"] == "public, max-age=1"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["content-length"] == str(len(body))
    assert "last-modified" in headers and headers["vary"] == "Accept-Encoding"
    status, _, _ = request(port, "/hls/mirror/low.m3u8", {"If-None-Match": headers["etag"]})
    assert status in (200, 304)  # 200 only if a segment was added in between
    _, master_headers, master = request(port, "/hls/mirror/index.m3u8")
    assert master_headers["cache-control"] == "public, max-age=10"
    assert b"#EXT-X-STREAM-INF" in master
    again = request(port, "/hls/mirror/index.m3u8", {"If-None-Match": master_headers["etag"]})
    assert again[0] == 304 and again[2] == b""
    _, zipped_headers, zipped = request(port, "/hls/mirror/index.m3u8", {"Accept-Encoding": "gzip"})
    assert zipped_headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped) == master
    assert zipped_headers["etag"] != master_headers["etag"]
    head = request(port, "/hls/mirror/index.m3u8", method="HEAD")
    assert head[0] == 200 and head[1]["content-length"] == str(len(master)) and head[2] == b""


def test_segments_are_immutable_and_ranged(mirror: Mirror) -> None:
    port = mirror.run.http_port
    name = newest_segment(mirror, "program.m3u8")
    status, headers, body = request(port, f"/hls/mirror/{name}")
    assert status == 200 and headers["content-type"] == "video/mp2t"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-length"] == str(len(body)) and headers["accept-ranges"] == "bytes"
    assert body[0] == 0x47  # an MPEG-TS sync byte
    part = request(port, f"/hls/mirror/{name}", {"Range": "bytes=188-375"})
    assert part[0] == 206 and part[2] == body[188:376]
    assert part[1]["content-range"] == f"bytes 188-375/{len(body)}"
    assert request(port, f"/hls/mirror/{name}", {"If-None-Match": headers["etag"]})[0] == 304
    preflight = request(
        port,
        f"/hls/mirror/{name}",
        {"Origin": "https://elsewhere.example", "Access-Control-Request-Headers": "range"},
        method="OPTIONS",
    )
    assert preflight[0] == 204 and "Range" in preflight[1]["access-control-allow-headers"]
    assert request(port, "/hls/mirror/nothere-0-1.ts")[0] == 404
    assert request(port, "/hls/other/index.m3u8")[0] == 404


def test_segment_names_never_repeat_in_an_event(mirror: Mirror) -> None:
    names = [newest_segment(mirror, r) for r in RENDITIONS]
    numbers = [int(re.search(r"-(\d+)\.ts$", n).group(1)) for n in names]  # type: ignore[union-attr]
    # Numbered from the epoch second the output opened: a restart starts above them all.
    assert all(n > 1_700_000_000 for n in numbers), names


def test_many_players_through_the_cache(mirror: Mirror) -> None:
    run, cache = mirror.run, mirror.cache
    late_before = run.metric("jalsa_program_late_resets_total")
    media_before, started = _media_seconds(mirror.outputs), time.monotonic()
    results: list[PlayerResult] = asyncio.run(
        play(cache.url("/hls/mirror"), RENDITIONS, PLAYERS, SECONDS)
    )
    media_after, wall = _media_seconds(mirror.outputs), time.monotonic() - started
    origin = cache.origin_requests()
    segments = {uri: n for uri, n in origin.items() if uri.endswith(".ts")}
    playlists = {uri: n for uri, n in origin.items() if uri.endswith(".m3u8")}
    fetched = sum(len(r.segments) for r in results)
    print(
        f"\n{PLAYERS} players x {SECONDS:g} s: {fetched} segments to players, "
        f"{sum(segments.values())} segment and {sum(playlists.values())} playlist requests "
        f"to jalsa ({len(segments)} segments), "
        f"{sum(r.bytes for r in results) / 1e6:.0f} MB, "
        f"late resets {late_before} -> {run.metric('jalsa_program_late_resets_total')}, "
        f"the longest stall a player would have had {max(r.stalled() for r in results):.2f} s "
        f"({max(r.stalled(2.0) for r in results):.2f} s starting 2 s behind)"
    )
    errors = [e for r in results for e in r.errors]
    assert errors == [], errors[:10]
    assert max(segments.values()) <= 2, sorted(segments.items(), key=lambda kv: -kv[1])[:5]
    assert all(r.gaps == 0 for r in results), [r.segments for r in results if r.gaps][:3]
    # ... and each in time: playing from 4 s after its first segment came, none waits.
    assert all(r.stalled() == 0 for r in results), sorted(r.stalled() for r in results)[-5:]
    # Every player kept up with the live edge: a segment every 2 s, less its start.
    assert min(len(r.segments) for r in results) >= SECONDS / 2 - 3
    assert len(segments) >= 3 * (SECONDS / 2 - 2)  # every rendition's segments went through
    # Playlists: about one refresh a second each, whatever the audience.
    assert sum(playlists.values()) <= 3 * (SECONDS + 10) + 5
    # ... and the program kept its clock, the mirror its pace, while they watched.
    assert run.metric("jalsa_program_late_resets_total") == late_before
    lag = run.metric("jalsa_relay_lag_seconds", destination="mirror", platform="custom")
    assert lag is not None and lag < 3
    # The other destinations, a platform (nginx-rtmp) and a recording, kept real time.
    for name, before in media_before.items():
        ratio = (media_after[name] - before) / wall
        print(f"{name}: {media_after[name] - before:.2f} s of media in {wall:.2f} s of wall")
        assert ratio >= 0.97, (name, media_after[name] - before, wall)
    run.alive()


def _media_seconds(outputs: dict[str, Path]) -> dict[str, float]:
    """How much program each output holds now (its video's span, as ffprobe reads it)."""
    return {name: ffprobe(path).video_seconds for name, path in outputs.items()}
