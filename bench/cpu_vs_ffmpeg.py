#!/usr/bin/env python3
"""CPU of jalsa against ffmpeg's own CLI doing the same job, in the same run.

The job (both peers): read a 1080p30 H.264 + AAC clip in real time, scale to 720p30,
encode once with x264 veryfast 3000k + AAC 128k, push to N RTMP destinations (a local
nginx-rtmp that records what it receives), for --seconds.

- ffmpeg: ``ffmpeg -re -i clip -t D -vf scale=1280:720 -c:v libx264 … -f tee "[f=flv]…|…"``
- jalsa:  ``jalsa run event.toml`` with one clip speaker, one D-second slot, on_end="stop",
          and N custom RTMP destinations.

Measured per run: CPU seconds (user+sys, ``os.wait4`` rusage), wall seconds, peak RSS
(ru_maxrss), the CPU rate over a steady window in the middle of the run
(/proc/PID/stat), and the media seconds nginx recorded for every destination (ffprobe).
Every configuration runs --repeats times, interleaved; the table quotes medians.

    python bench/cpu_vs_ffmpeg.py --seconds 60 --repeats 3 --destinations 1,3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    CACHE,
    REPO,
    Measurement,
    NginxSink,
    Received,
    StateWatcher,
    ffmpeg_argv,
    free_port,
    jalsa_argv,
    jalsa_event,
    log,
    machine,
    make_clip,
    median,
    received,
    run_measured,
    tree,
    workdir,
    write_json,
)

PEERS = ("ffmpeg", "jalsa")
TARGET_RATIO = 1.15  # jalsa CPU ≤ 1.15 × ffmpeg CLI


@dataclass
class Run:
    peer: str
    destinations: int
    repeat: int
    loadavg_before: float
    measurement: Measurement
    received: list[Received]
    own_view: dict[str, Any] | None = None  # jalsa's /api/state near the end

    @property
    def media_seconds(self) -> float:
        """Media that reached every destination (the least any of them recorded)."""
        return min((r.video_seconds for r in self.received), default=0.0)

    @property
    def cpu_per_media_second(self) -> float | None:
        media = self.media_seconds
        return self.measurement.cpu_seconds / media if media > 0 else None

    def ok(self, seconds: int) -> bool:
        m = self.measurement
        return m.exit_code == 0 and not m.timed_out and self.media_seconds >= 0.9 * seconds


def steady_window(seconds: int) -> tuple[float, float]:
    """Seconds after process start over which both peers are encoding steadily.

    Skips jalsa's start-up (imports, opening the clip) and its 8 s lower third at the
    start of the slot, and both peers' ends.
    """
    end = 0.9 * seconds
    start = max(0.3 * seconds, 14.0)
    if start >= end - 3:
        start = 0.3 * seconds
    return (start, end)


def run_once(
    peer: str,
    n: int,
    repeat: int,
    *,
    clip: Path,
    seconds: int,
    nginx: NginxSink,
    scratch: Path,
) -> Run:
    tag = f"{peer}-n{n}-r{repeat}"
    streams = [f"{tag}-d{i}" for i in range(1, n + 1)]
    urls = [nginx.url("live", s) for s in streams]
    folder = scratch / tag
    folder.mkdir()
    watcher: StateWatcher | None = None
    if peer == "ffmpeg":
        argv = ffmpeg_argv(clip, seconds, urls)
    else:
        event = folder / "event.toml"
        event.write_text(jalsa_event(clip, seconds, urls))
        http_port = free_port()
        argv = jalsa_argv(event, folder / "state", http_port)
        watcher = StateWatcher(http_port, folder / "state", every=2.0)
        watcher.start()
    load = _loadavg()
    log(f"{tag}: running ({seconds} s, load {load:.2f})")
    measurement = run_measured(
        argv,
        log_path=folder / "output.log",
        timeout=seconds + 60,
        steady_window=steady_window(seconds),
        cwd=REPO,
    )
    own_view = None
    if watcher is not None:
        watcher.stop()
        own_view = watcher.summary()
    time.sleep(1.5)  # nginx closes the recordings once the publisher has gone
    got = [received(nginx.recording(s)) for s in streams]
    run = Run(peer, n, repeat, load, measurement, got, own_view)
    log(
        f"{tag}: exit {measurement.exit_code}, cpu {measurement.cpu_seconds:.1f} s, "
        f"wall {measurement.wall_seconds:.1f} s, media {run.media_seconds:.1f} s, "
        f"steady {measurement.steady_cores or 0:.2f} cores, "
        f"rss {measurement.peak_rss_mb:.0f} MB"
    )
    if not run.ok(seconds):
        tail = (folder / "output.log").read_text(errors="replace")[-3000:]
        log(f"{tag}: FAILED or short; jalsa's own view: {own_view}\nlog tail:\n{tail}")
    return run


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@dataclass
class Summary:
    peer: str
    destinations: int
    runs: int
    ok_runs: int
    cpu_seconds: float | None
    media_seconds: float | None
    cpu_per_media_second: float | None
    steady_cores: float | None
    wall_seconds: float | None
    peak_rss_mb: float | None
    exit_codes: list[int]


def summarise(runs: list[Run], peer: str, n: int, seconds: int) -> Summary:
    mine = [r for r in runs if r.peer == peer and r.destinations == n]
    good = [r for r in mine if r.ok(seconds)] or mine
    return Summary(
        peer=peer,
        destinations=n,
        runs=len(mine),
        ok_runs=sum(r.ok(seconds) for r in mine),
        cpu_seconds=median([r.measurement.cpu_seconds for r in good]),
        media_seconds=median([r.media_seconds for r in good]),
        cpu_per_media_second=median([r.cpu_per_media_second for r in good]),
        steady_cores=median([r.measurement.steady_cores for r in good]),
        wall_seconds=median([r.measurement.wall_seconds for r in good]),
        peak_rss_mb=median([r.measurement.peak_rss_mb for r in good]),
        exit_codes=[r.measurement.exit_code for r in mine],
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report(
    summaries: list[Summary], counts: list[int], seconds: int
) -> tuple[str, dict[str, object]]:
    by = {(s.peer, s.destinations): s for s in summaries}
    lines = [
        f"Job: 1080p30 clip → 720p30 x264 veryfast 3000k + AAC 128k → N RTMP, "
        f"{seconds} s, medians of the runs that succeeded.",
        "",
        "| peer | N | ok/runs | CPU s | media s | CPU s / media s | steady cores | wall s "
        "| peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        lines.append(
            f"| {s.peer} | {s.destinations} | {s.ok_runs}/{s.runs} | {_fmt(s.cpu_seconds, 1)} "
            f"| {_fmt(s.media_seconds, 1)} | {_fmt(s.cpu_per_media_second, 3)} "
            f"| {_fmt(s.steady_cores)} | {_fmt(s.wall_seconds, 1)} | {_fmt(s.peak_rss_mb, 0)} |"
        )
    ratios: dict[str, object] = {}
    lines += ["", "| N | jalsa/ffmpeg CPU per media s | jalsa/ffmpeg steady cores | target |",
              "| --- | --- | --- | --- |"]  # fmt: skip
    for n in counts:
        j, f = by.get(("jalsa", n)), by.get(("ffmpeg", n))
        if j is None or f is None:
            continue
        total = _ratio(j.cpu_per_media_second, f.cpu_per_media_second)
        steady = _ratio(j.steady_cores, f.steady_cores)
        ratios[f"n{n}"] = {"cpu_per_media_second": total, "steady_cores": steady}
        verdict = "—" if total is None else ("met" if total <= TARGET_RATIO else "MISSED")
        lines.append(f"| {n} | {_fmt(total)} | {_fmt(steady)} | ≤ {TARGET_RATIO} ({verdict}) |")
    per_dest: dict[str, object] = {}
    if len(counts) >= 2:
        lo, hi = min(counts), max(counts)
        lines += [
            "",
            f"CPU added per extra destination (N={lo} → N={hi}, divided by {hi - lo}):",
            "",
            "| peer | CPU s per media s | total CPU s over the run | steady cores | % of N=1 |",
            "| --- | --- | --- | --- | --- |",
        ]
        for peer in ("ffmpeg", "jalsa"):
            a, b = by.get((peer, lo)), by.get((peer, hi))
            if a is None or b is None:
                continue
            step = hi - lo

            def slope(x: float | None, y: float | None, _step: int = step) -> float | None:
                return (y - x) / _step if x is not None and y is not None else None

            rate = slope(a.cpu_per_media_second, b.cpu_per_media_second)
            total_step = slope(a.cpu_seconds, b.cpu_seconds)
            steady_step = slope(a.steady_cores, b.steady_cores)
            share = _ratio(rate, a.cpu_per_media_second)
            per_dest[peer] = {
                "cpu_per_media_second": rate,
                "cpu_seconds": total_step,
                "steady_cores": steady_step,
                "fraction_of_first": share,
            }
            lines.append(
                f"| {peer} | {_fmt(rate, 4)} | {_fmt(total_step)} | {_fmt(steady_step, 4)} "
                f"| {_fmt(None if share is None else 100 * share, 1)}% |"
            )
    return "\n".join(lines), {"ratios": ratios, "per_extra_destination": per_dest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=60, help="media seconds per run (60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (3)")
    parser.add_argument(
        "--destinations",
        default="1,3",
        help="comma-separated destination counts to run (default 1,3)",
    )
    parser.add_argument(
        "--peers", default="ffmpeg,jalsa", help="which peers to run (default ffmpeg,jalsa)"
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the clip is kept")
    parser.add_argument("--keep", action="store_true", help="keep logs and recordings")
    args = parser.parse_args(argv)
    counts = sorted({int(x) for x in args.destinations.split(",") if x.strip()})
    peers = [p for p in args.peers.split(",") if p in PEERS]
    if not counts or not peers or args.seconds < 5 or args.repeats < 1:
        parser.error("need --seconds ≥ 5, --repeats ≥ 1, some --destinations and --peers")

    info = machine()
    code = tree()
    clip = make_clip(args.seconds + 15, args.cache)
    scratch = workdir("jalsa-bench-cpu-")
    log(f"scratch folder {scratch}")
    runs: list[Run] = []
    try:
        with NginxSink(scratch / "nginx") as nginx:
            for repeat in range(args.repeats):
                for n in counts:
                    # Alternate who goes first, so slow drift in the machine's load
                    # does not always favour the same peer.
                    order = peers if (repeat + n) % 2 == 0 else list(reversed(peers))
                    for peer in order:
                        runs.append(
                            run_once(
                                peer, n, repeat, clip=clip, seconds=args.seconds,
                                nginx=nginx, scratch=scratch,
                            )
                        )  # fmt: skip
                        if not args.keep:
                            for s in range(1, n + 1):
                                nginx.recording(f"{peer}-n{n}-r{repeat}-d{s}").unlink(
                                    missing_ok=True
                                )
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    summaries = [summarise(runs, p, n, args.seconds) for n in counts for p in peers]
    table, derived = report(summaries, counts, args.seconds)
    print(table)
    path = write_json(
        "cpu_vs_ffmpeg",
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "machine": info,
            "tree_at_start": code,
            "tree_at_end": tree(),
            "clip": str(clip),
            "steady_window": steady_window(args.seconds),
            "summaries": [asdict(s) for s in summaries],
            **derived,
            "runs": [
                {
                    "peer": r.peer,
                    "destinations": r.destinations,
                    "repeat": r.repeat,
                    "loadavg_before": r.loadavg_before,
                    "ok": r.ok(args.seconds),
                    "media_seconds": r.media_seconds,
                    "cpu_per_media_second": r.cpu_per_media_second,
                    "measurement": asdict(r.measurement),
                    "received": [asdict(x) for x in r.received],
                    "own_view": r.own_view,
                }
                for r in runs
            ],
            "markdown": table,
        },
    )
    print(f"\nJSON: {path.relative_to(REPO)}")
    return 0 if all(r.ok(args.seconds) for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
