#!/usr/bin/env python3
"""Memory soak: jalsa on the benchmark job for a long time, its RSS sampled every 5 s.

The job is the one of cpu_vs_ffmpeg.py (1080p30 clip → 720p30 x264 veryfast 3000k +
AAC 128k → N RTMP destinations on a local nginx-rtmp), one slot of --seconds. VmRSS of
the jalsa process is read from /proc/PID/status every --every seconds. Reported: RSS
after the first minute, at the end of the slot, the growth between them (target < 10%),
the least-squares slope after minute 1, the peak, and the media nginx received.

    python bench/memory_soak.py --seconds 600
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchlib import (
    CACHE,
    REPO,
    NginxSink,
    StateWatcher,
    free_port,
    jalsa_argv,
    jalsa_event,
    log,
    machine,
    make_clip,
    received,
    run_measured,
    tree,
    workdir,
    write_json,
)

TARGET_GROWTH = 0.10
WARM_UP = 60.0  # growth is measured from the end of the first minute


def slope_mb_per_minute(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 3:
        return None
    fit = statistics.linear_regression([t for t, _ in samples], [mb for _, mb in samples])
    return fit.slope * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=600, help="length of the slot (600)")
    parser.add_argument("--destinations", type=int, default=3, help="RTMP destinations (3)")
    parser.add_argument("--every", type=float, default=5.0, help="sampling interval, s (5)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the clip is kept")
    parser.add_argument("--keep", action="store_true", help="keep logs and recordings")
    args = parser.parse_args(argv)
    if args.seconds < WARM_UP + 30:
        parser.error(f"--seconds must be at least {WARM_UP + 30:.0f}")

    info = machine()
    code = tree()
    clip = make_clip(args.seconds + 15, args.cache)
    scratch = workdir("jalsa-bench-soak-")
    log(f"scratch folder {scratch}")
    try:
        with NginxSink(scratch / "nginx") as nginx:
            streams = [f"soak-d{i}" for i in range(1, args.destinations + 1)]
            event = scratch / "event.toml"
            event.write_text(
                jalsa_event(clip, args.seconds, [nginx.url("live", s) for s in streams])
            )
            log(f"jalsa: {args.seconds} s, {args.destinations} destinations")
            http_port = free_port()
            watcher = StateWatcher(http_port, scratch / "state", every=args.every)
            watcher.start()
            m = run_measured(
                jalsa_argv(event, scratch / "state", http_port),
                log_path=scratch / "jalsa.log",
                timeout=args.seconds + 60,
                rss_every=args.every,
                cwd=REPO,
            )
            watcher.stop()
            own_view = watcher.summary()
            time.sleep(1.5)
            got = [received(nginx.recording(s)) for s in streams]
            jalsa_log = (scratch / "jalsa.log").read_text(errors="replace")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    # The show is on air from start-up (~1-2 s) to args.seconds; keep the samples inside.
    live = [(t, mb) for t, mb in m.rss_samples if t <= args.seconds]
    after = [(t, mb) for t, mb in live if t >= WARM_UP]
    if not after:
        log(f"no RSS samples after minute 1; jalsa exited {m.exit_code}:\n{jalsa_log[-3000:]}")
        return 1
    first_t, first_mb = after[0]
    end_t, end_mb = after[-1]
    growth = (end_mb - first_mb) / first_mb
    slope = slope_mb_per_minute(after)
    media = min((r.video_seconds for r in got), default=0.0)
    largest_gap = max((r.largest_video_gap for r in got), default=0.0)
    ok = m.exit_code == 0 and media >= 0.9 * args.seconds
    lines = [
        f"Memory soak: jalsa, {args.seconds} s slot, {args.destinations} RTMP destinations, "
        f"VmRSS every {args.every:g} s.",
        "",
        "| t (s) | RSS MB |",
        "| --- | --- |",
    ]
    minute_marks = [s for s in live if s[0] < 5 or int(s[0]) % 60 < args.every]
    if live[-1] not in minute_marks:
        minute_marks.append(live[-1])
    lines += [f"| {t:.0f} | {mb:.1f} |" for t, mb in minute_marks]
    verdict = "met" if growth < TARGET_GROWTH else "MISSED"
    lines += [
        "",
        f"- RSS after minute 1 (t={first_t:.0f} s): {first_mb:.1f} MB",
        f"- RSS at the end of the slot (t={end_t:.0f} s): {end_mb:.1f} MB",
        f"- growth: {100 * growth:+.1f}% (target < {100 * TARGET_GROWTH:.0f}%: {verdict})",
        f"- trend after minute 1: {slope or 0:+.2f} MB/min (least squares)",
        f"- peak RSS (ru_maxrss): {m.peak_rss_mb:.1f} MB",
        f"- CPU: {m.cpu_seconds:.1f} s over {m.wall_seconds:.1f} s wall "
        + (f"({m.cpu_seconds / media:.3f} CPU s per media s)" if media > 0 else "(no media!)"),
        "- media received per destination (s): " + ", ".join(f"{r.video_seconds:.1f}" for r in got),
        f"- largest video gap received: {largest_gap:.3f} s",
        f"- exit code {m.exit_code}; jalsa's own view near the end: {own_view}",
    ]
    table = "\n".join(lines)
    print(table)
    path = write_json(
        "memory_soak",
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "machine": info,
            "tree_at_start": code,
            "tree_at_end": tree(),
            "clip": str(clip),
            "rss_after_minute_1_mb": first_mb,
            "rss_end_mb": end_mb,
            "growth": growth,
            "slope_mb_per_minute": slope,
            "ok": ok,
            "measurement": asdict(m),
            "received": [asdict(r) for r in got],
            "own_view": own_view,
            "markdown": table,
        },
    )
    print(f"\nJSON: {path.relative_to(REPO)}")
    if not ok:
        log(f"jalsa exited {m.exit_code}, media {media:.1f} s; log tail:\n{jalsa_log[-3000:]}")
    return 0 if ok and growth < TARGET_GROWTH else 1


if __name__ == "__main__":
    sys.exit(main())
