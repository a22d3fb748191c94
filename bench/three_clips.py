"""The 36 s three-clip job of issue 16: jalsa (graphics included) beside ``ffmpeg -f concat``.

Three 12 s clips of 640x360, 1280x720 and 854x480 (testsrc2 + a sine, H.264 + AAC, made
once into bench/.cache/), each a rundown item of its own speaker (so three cuts and three
8 s lower thirds), scaled to 720p30, x264 veryfast 3000k + AAC 128k, three RTMP
destinations on nginx-rtmp. The ffmpeg peer: ``ffmpeg -re -f concat -i list -vf
scale=1280:720 … -f tee`` to three streams (no graphics). ``--tree DIR`` runs another
checkout's jalsa too (an A/B). Runs interleaved, the order reversed every other repeat;
CPU s from wait4, media s from ffprobe of every recording (the least).

    python bench/three_clips.py [--repeats 3] [--tree /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchlib import (
    AUDIO_KBPS,
    CACHE,
    FFMPEG,
    FPS,
    KEYFRAME_SECONDS,
    PRESET,
    REPO,
    VIDEO_KBPS,
    NginxSink,
    destination_lines,
    jalsa_argv,
    log,
    machine,
    median,
    received,
    run_measured,
    tree,
    workdir,
    write_json,
)

SIZES = ((640, 360), (1280, 720), (854, 480))
CLIP_SECONDS = 12


def clips() -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    made = []
    for w, h in SIZES:
        path = CACHE / f"testsrc2-{w}x{h}-{CLIP_SECONDS}s.mp4"
        if not path.exists():
            subprocess.run(
                [
                    FFMPEG,
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    f"testsrc2=size={w}x{h}:rate={FPS}",
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=440:sample_rate=48000",
                    "-t",
                    str(CLIP_SECONDS),
                    "-map",
                    "0:v",
                    "-map",
                    "1:a",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                    "-pix_fmt",
                    "yuv420p",
                    "-g",
                    "60",
                    "-c:a",
                    "aac",
                    "-b:a",
                    "128k",
                    "-ac",
                    "2",
                    str(path),
                ],
                check=True,
            )
        made.append(path)
    return made


def jalsa_event(paths: list[Path], urls: list[str]) -> str:
    lines = [
        "[event]",
        'name = "three clips"',
        'on_end = "stop"',
        "[program]",
        "width = 1280",
        "height = 720",
        f"fps = {FPS}",
        f"video_bitrate_kbps = {VIDEO_KBPS}",
        f"audio_bitrate_kbps = {AUDIO_KBPS}",
        f"keyframe_seconds = {KEYFRAME_SECONDS}",
        f'preset = "{PRESET}"',
    ]
    for k, path in enumerate(paths):
        lines += [
            "[[speakers]]",
            f'id = "s{k}"',
            f'name = "Speaker Number {k + 1}"',
            'title = "A title under the name"',
            f"source = {json.dumps(str(path))}",
        ]
    for k in range(len(paths)):
        lines += ["[[rundown]]", f'speaker = "s{k}"', f'duration = "{CLIP_SECONDS}s"']
    lines += destination_lines(urls)
    return "\n".join(lines) + "\n"


def ffmpeg_argv(listing: Path, urls: list[str]) -> list[str]:
    tee = "|".join(f"[f=flv:onfail=ignore:flvflags=no_duration_filesize]{u}" for u in urls)
    gop = FPS * KEYFRAME_SECONDS
    return [
        FFMPEG,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "warning",
        "-re",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(listing),
        "-vf",
        f"scale=1280:720,fps={FPS}",
        "-c:v",
        "libx264",
        "-preset",
        PRESET,
        "-tune",
        "zerolatency",
        "-b:v",
        f"{VIDEO_KBPS}k",
        "-maxrate",
        f"{VIDEO_KBPS}k",
        "-bufsize",
        f"{2 * VIDEO_KBPS}k",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        f"{AUDIO_KBPS}k",
        "-ar",
        "48000",
        "-ac",
        "2",
        "-f",
        "tee",
        "-map",
        "0:v",
        "-map",
        "0:a",
        tee,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tree", type=Path)
    args = parser.parse_args(argv)
    paths = clips()
    work = workdir("cost-three-")
    listing = work / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in paths))
    peers: dict[str, Path] = {"ffmpeg": REPO, "jalsa": REPO}
    if args.tree is not None:
        peers[f"jalsa@{args.tree.name}"] = args.tree.resolve()
    seconds = CLIP_SECONDS * len(paths)
    runs: list[dict[str, Any]] = []
    with NginxSink(work / "nginx") as sink:
        for repeat in range(args.repeats):
            order = list(peers.items())
            if repeat % 2:
                order.reverse()
            for peer, cwd in order:
                tag = f"{peer.replace('@', '-')}-{repeat}"
                urls = [sink.url(stream=f"{tag}-{k}") for k in range(3)]
                if peer == "ffmpeg":
                    command = ffmpeg_argv(listing, urls)
                else:
                    event = work / f"{tag}.toml"
                    event.write_text(jalsa_event(paths, urls))
                    command = jalsa_argv(event, work / f"{tag}-state")
                m = run_measured(
                    command,
                    log_path=work / f"{tag}.log",
                    timeout=seconds + 60,
                    steady_window=(14.0, 0.9 * seconds),
                    cwd=cwd,
                )
                media = min(received(sink.recording(f"{tag}-{k}")).video_seconds for k in range(3))
                ok = m.exit_code == 0 and media >= 0.9 * seconds
                runs.append(
                    {
                        "peer": peer,
                        "repeat": repeat,
                        "ok": ok,
                        "cpu": m.cpu_seconds,
                        "media": media,
                        "steady_cores": m.steady_cores,
                        "wall": m.wall_seconds,
                        "rss_mb": m.peak_rss_mb,
                        "loadavg": os.getloadavg()[0],
                    }
                )
                log(
                    f"{peer}: {'ok' if ok else 'SHORT'} {m.cpu_seconds:.2f} CPU s, media "
                    f"{media:.1f} s, steady {m.steady_cores}"
                )
    base = median([r["cpu"] / r["media"] for r in runs if r["peer"] == "ffmpeg" and r["ok"]])
    print("| peer | ok runs | CPU s (each) | CPU s / media s | / ffmpeg | steady cores |")
    print("| --- | --- | --- | --- | --- | --- |")
    for peer in peers:
        ok = [r for r in runs if r["peer"] == peer and r["ok"]]
        per = median([r["cpu"] / r["media"] for r in ok])
        steady = median([r["steady_cores"] for r in ok])
        each = ", ".join(f"{r['cpu']:.1f}" for r in ok)
        ratio = f"{per / base:.3f}" if per and base else "—"
        print(
            f"| {peer} | {len(ok)}/{args.repeats} | {each} | {per and round(per, 3)} | "
            f"{ratio} | {steady and round(steady, 3)} |"
        )
    path = write_json("three_clips", {"machine": machine(), "tree": tree(), "runs": runs})
    print(f"raw figures: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
