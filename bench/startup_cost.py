"""What starting jalsa costs: ``jalsa check``, a 1 s event, and the first packet out.

Three figures, each beside its peer in the same session (runs interleaved):

- ``jalsa check`` of the job's event file (three RTMP destinations): wall and CPU s,
  beside ``python -c pass`` (the interpreter's own start-up, which no trimming removes);
- a 1 s event (the benchmark job of benchlib: the 1080p clip scaled to 720p30, x264
  veryfast + AAC, one RTMP destination on nginx-rtmp): jalsa's CPU s and wall s, beside
  ``ffmpeg -re … -t 1`` doing the same job into the same nginx;
- the first packet at the destination: from the process's spawn to the first coded video
  frame in nginx's recording of the stream (the FLV file is parsed as nginx writes it,
  every 5 ms), for both peers.

``--tree DIR`` runs jalsa from another checkout as well (``git archive <rev> | tar -x -C
DIR``), interleaved with this one: an A/B of a change on the same machine at the same load.

    python bench/startup_cost.py [--repeats 5] [--tree /tmp/base] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchlib import (
    REPO,
    NginxSink,
    ffmpeg_argv,
    jalsa_argv,
    jalsa_event,
    log,
    machine,
    make_clip,
    median,
    tree,
    workdir,
    write_json,
)


@dataclass(frozen=True)
class Run:
    peer: str  # "python", "jalsa-check", "ffmpeg", "jalsa", or "<label>:..." for --tree
    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    first_packet_seconds: float | None = None


def _measure(argv: list[str], cwd: Path, log_path: Path, watch: Path | None = None) -> Run:
    """Run to the end; CPU from wait4; with ``watch``, when its first video frame landed."""
    first: list[float] = []
    halt = threading.Event()
    with log_path.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if watch is not None:
        threading.Thread(
            target=_first_video_tag, args=(watch, started, first, halt), daemon=True
        ).start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    halt.set()
    return Run(
        "",
        process.returncode,
        wall,
        usage.ru_utime + usage.ru_stime,
        first[0] if first else None,
    )


def _first_video_tag(path: Path, started: float, found: list[float], halt: threading.Event) -> None:
    """Poll an FLV file as it is written; note when a coded video frame (not the AVC
    sequence header) is first in it."""
    while not halt.is_set():
        if _has_coded_video(path):
            found.append(time.monotonic() - started)
            return
        halt.wait(0.005)


def _has_coded_video(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if len(data) < 13 or data[:3] != b"FLV":
        return False
    at = struct.unpack(">I", data[5:9])[0] + 4  # header, then PreviousTagSize0
    while at + 11 <= len(data):
        kind = data[at] & 0x1F
        size = int.from_bytes(data[at + 1 : at + 4], "big")
        body = data[at + 11 : at + 11 + size]
        if len(body) < size:
            return False
        # Video tag, AVC, AVCPacketType 1 (a NAL unit, not the sequence header).
        if kind == 9 and size >= 2 and body[0] & 0x0F == 7 and body[1] == 1:
            return True
        at += 11 + size + 4
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tree", type=Path, help="another checkout to run beside this one")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    trees = {"jalsa": REPO}
    if args.tree is not None:
        trees[f"jalsa@{args.tree.name}"] = args.tree.resolve()
    clip = make_clip(2)
    work = workdir("cost-startup-")
    runs: list[Run] = []
    payload: dict[str, object] = {"machine": machine(), "tree_start": tree(), "runs": runs}
    with NginxSink(work / "nginx") as sink:
        checked = work / "check.toml"
        checked.write_text(jalsa_event(clip, 1, [sink.url(stream=f"c{i}") for i in range(3)]))
        for repeat in range(args.repeats):
            order = [("python", REPO), *((f"{n}-check", t) for n, t in trees.items())]
            order += [("ffmpeg", REPO), *trees.items()]
            if repeat % 2:
                order.reverse()
            for peer, cwd in order:
                stream = f"{peer.replace('@', '-')}-{repeat}"
                log_path = work / f"{stream}.log"
                watch = None
                if peer == "python":
                    command = [sys.executable, "-c", "pass"]
                elif peer.endswith("-check"):
                    command = [sys.executable, "-m", "orchestrator.cli", "check", str(checked)]
                elif peer == "ffmpeg":
                    command = ffmpeg_argv(clip, 1, [sink.url(stream=stream)])
                    watch = sink.recording(stream)
                else:
                    event = work / f"{stream}.toml"
                    event.write_text(jalsa_event(clip, 1, [sink.url(stream=stream)]))
                    command = jalsa_argv(event, work / f"{stream}-state")
                    watch = sink.recording(stream)
                run = _measure(command, cwd, log_path, watch)
                run = Run(peer, run.exit_code, run.wall_seconds, run.cpu_seconds,
                          run.first_packet_seconds)  # fmt: skip
                runs.append(run)
                log(
                    f"{peer}: exit {run.exit_code}, {run.cpu_seconds:.2f} CPU s, "
                    f"{run.wall_seconds:.2f} s wall, first packet {run.first_packet_seconds}"
                )
    peers = list(dict.fromkeys(r.peer for r in runs))
    summary = {}
    print("| peer | runs ok | CPU s | wall s | first packet s |")
    print("| --- | --- | --- | --- | --- |")
    for peer in peers:
        ok = [r for r in runs if r.peer == peer and r.exit_code == 0]
        figures = {
            "cpu": median([r.cpu_seconds for r in ok]),
            "wall": median([r.wall_seconds for r in ok]),
            "first_packet": median([r.first_packet_seconds for r in ok]),
        }
        summary[peer] = figures
        cells = [f"{v:.2f}" if v is not None else "—" for v in figures.values()]
        print(f"| {peer} | {len(ok)}/{args.repeats} | " + " | ".join(cells) + " |")
    payload.update(summary=summary, tree_end=tree(), loadavg_at_end=os.getloadavg())
    payload["runs"] = [asdict(r) for r in runs]
    print(f"raw figures: {write_json('startup_cost', payload)}")
    if args.keep:
        print(f"scratch: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
