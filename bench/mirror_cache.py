#!/usr/bin/env python3
"""Origin requests per 1,000 viewers: the mirror's ladder behind the documented nginx cache.

A real ``jalsa run`` (one testsrc speaker, a 640x360 program with the HLS ladder) behind
a real nginx running deploy/nginx/jalsa-mirror.conf (tests/http_cache.py), and --players
simulated live players on loopback (tests/hls_players.py: master playlist, then their
rendition's playlist every second and every new segment) for --seconds. Counted from
nginx's log: every request it passed to jalsa. Reported: requests to jalsa per segment
per rendition, per minute, and per 1,000 viewers per minute; what the players got
(segments, bytes, errors, segments skipped); the program's late resets.

    python bench/mirror_cache.py --players 1000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from benchlib import log, machine, tree, write_json
from hls_players import RENDITIONS, ladder_event, play
from http_cache import HttpCache
from jalsa_run import JalsaRun


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mirror-cache-"))
    scratch.chmod(0o755)
    event = scratch / "event.toml"
    event.write_text(ladder_event("Mirror bench"))
    started = tree()
    with (
        JalsaRun(event, scratch / "state") as run,
        HttpCache(scratch / "nginx", run.http_port) as cache,
    ):
        run.wait_ready()
        run.wait_for(
            lambda: all(run.http(f"/hls/mirror/{r}")[0] == 200 for r in RENDITIONS),
            40,
            "every rendition",
        )
        late = run.metric("jalsa_program_late_resets_total")
        results = asyncio.run(
            play(cache.url("/hls/mirror"), RENDITIONS, args.players, args.seconds)
        )
        late_after = run.metric("jalsa_program_late_resets_total")
        origin = cache.origin_requests()
    segments = {u: n for u, n in origin.items() if u.endswith(".ts")}
    playlists = {u: n for u, n in origin.items() if u.endswith(".m3u8")}
    total = sum(origin.values())
    minutes = args.seconds / 60
    summary = {
        "players": args.players,
        "seconds": args.seconds,
        "segments_to_players": sum(len(r.segments) for r in results),
        "megabytes_to_players": round(sum(r.bytes for r in results) / 1e6, 1),
        "player_errors": sum(len(r.errors) for r in results),
        "players_with_gaps": sum(1 for r in results if r.gaps),
        "origin_requests": total,
        "origin_segment_requests": sum(segments.values()),
        "distinct_segments": len(segments),
        "max_requests_per_segment": max(segments.values(), default=0),
        "origin_playlist_requests": sum(playlists.values()),
        "origin_requests_per_minute": round(total / minutes, 1),
        "origin_requests_per_1000_viewers_per_minute": round(
            total / minutes * 1000 / args.players, 1
        ),
        "late_resets": (late, late_after),
    }
    for key, value in summary.items():
        log(f"{key}: {value}")
    path = write_json(
        "mirror-cache",
        {"args": vars(args), "machine": machine(), "tree": {"start": started, "end": tree()},
         "summary": summary},
    )  # fmt: skip
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
