#!/usr/bin/env python3
"""Where a peer's CPU goes, thread by thread, over a steady window of the benchmark job.

Whole-process CPU is too noisy on a shared machine to see what one extra destination
costs (about 1% of the job). Per-thread CPU from /proc/PID/task/TID/stat isolates it:
jalsa's relay threads (``dest-*`` and ``relay-pump``) against ffmpeg's main thread,
where ``-f tee`` muxes and writes every slave.

Python 3.11 does not give threads OS names, so jalsa's thread names are read with
``py-spy dump`` (pass --py-spy PATH, or have py-spy on PATH; without it jalsa's threads
show as "python" and only the libav decoder threads are named). py-spy is not a jalsa
dependency: install it anywhere, e.g. ``pip install --target /tmp/pyspy py-spy``.

    python bench/thread_cpu.py --peer jalsa --destinations 1,3 --repeats 2
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from benchlib import (
    CACHE,
    CLK_TCK,
    REPO,
    NginxSink,
    ffmpeg_argv,
    jalsa_argv,
    jalsa_event,
    log,
    make_clip,
    median,
    workdir,
    write_json,
)

Sample = dict[str, tuple[str, float]]  # tid -> (OS thread name, CPU seconds)


def threads(pid: int) -> Sample:
    out: Sample = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[task.name] = (comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def python_names(pid: int, py_spy: str | None) -> dict[str, str]:
    if py_spy is None:
        return {}
    dump = subprocess.run(
        [py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return {m[1]: m[2] for m in re.finditer(r'Thread (\d+) \([^)]*\): "([^"]+)"', dump)}


def group(name: str, tid: str, pid: int, peer: str) -> str:
    if peer == "ffmpeg":
        return "main (demux, filter, tee mux + send)" if tid == str(pid) else "other threads"
    if name.startswith("dest-") or name == "relay-pump":
        return "relays (dest-*, relay-pump)"
    if name.startswith("av:"):
        return "libav decoder threads"
    if name == "python":
        return "unnamed native (x264 threads)"
    return name


def measure(
    peer: str, n: int, clip: Path, seconds: int, window: tuple[float, float], py_spy: str | None
) -> dict[str, float]:
    scratch = workdir("jalsa-bench-threads-")
    try:
        with NginxSink(scratch / "nginx") as nginx:
            urls = [nginx.url("live", f"{peer}-{i}") for i in range(n)]
            if peer == "jalsa":
                event = scratch / "event.toml"
                event.write_text(jalsa_event(clip, seconds, urls))
                argv = jalsa_argv(event, scratch / "state")
            else:
                argv = ffmpeg_argv(clip, seconds, urls)
            with (scratch / "output.log").open("wb") as out:
                process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
            time.sleep(window[0])
            first, started = threads(process.pid), time.monotonic()
            time.sleep(window[1] - window[0])
            last, wall = threads(process.pid), time.monotonic() - started
            names = python_names(process.pid, py_spy) if peer == "jalsa" else {}
            process.wait(seconds + 60)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cores: dict[str, float] = defaultdict(float)
    for tid, (comm, cpu) in last.items():
        before = first.get(tid, (comm, 0.0))[1]
        cores[group(names.get(tid, comm), tid, process.pid, peer)] += (cpu - before) / wall
    cores["TOTAL"] = sum(cores.values())
    return dict(cores)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--peer", choices=("jalsa", "ffmpeg"), action="append")
    parser.add_argument("--destinations", default="1,3")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=30, help="length of each run (30)")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    peers = args.peer or ["jalsa", "ffmpeg"]
    counts = sorted({int(x) for x in args.destinations.split(",")})
    window = (max(0.3 * args.seconds, 12.0), 0.9 * args.seconds)
    if window[1] - window[0] < 5:
        parser.error("--seconds too short for a steady window")
    clip = make_clip(args.seconds + 15, args.cache)
    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    for repeat in range(args.repeats):
        for n in counts:
            for peer in peers:
                log(f"{peer} N={n} run {repeat + 1}/{args.repeats}")
                results[f"{peer} N={n}"].append(
                    measure(peer, n, clip, args.seconds, window, args.py_spy)
                )
    lines = [
        f"CPU cores by thread, {window[0]:.0f}-{window[1]:.0f} s into each run, "
        f"median of {args.repeats}:",
        "",
        "| peer, N | thread group | cores |",
        "| --- | --- | --- |",
    ]
    for key, runs in results.items():
        groups = sorted({g for r in runs for g in r}, key=lambda g: (g == "TOTAL", g))
        for g in groups:
            lines.append(f"| {key} | {g} | {median([r.get(g, 0.0) for r in runs]) or 0:.4f} |")
    table = "\n".join(lines)
    print(table)
    path = write_json(
        "thread_cpu", {"args": {k: str(v) for k, v in vars(args).items()}, "runs": results}
    )
    print(f"\nJSON: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
