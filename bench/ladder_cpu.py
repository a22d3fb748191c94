#!/usr/bin/env python3
"""CPU of jalsa's HLS ladder against ffmpeg's CLI making the same ladder in one process.

The job (both peers, in real time, for --seconds): read the 1080p30 H.264 + AAC bench clip,
make the program at 1280x720 30 fps (x264 veryfast 3000k + AAC 128k, keyframe every 2 s)
and an HLS ladder of it on disk: the program rendition, 640x360 at 440k + AAC 48k, and
AAC 48k audio only; 2 s segments, a master playlist.

- ffmpeg: ``ffmpeg -re -i clip -filter_complex "scale,split,scale" … -f hls
  -var_stream_map "v:0,a:0 v:1,a:1 a:2" -master_pl_name index.m3u8``: one decode, three
  video/audio encodes, one process.
- jalsa: ``jalsa run`` with one clip speaker, one slot, ``on_end = "stop"`` and one HLS
  mirror with ``[destinations.ladder]`` (the defaults); ``--peers jalsa-program`` runs the
  mirror without a ladder, for what the ladder itself adds.

Measured per run (benchlib.run_measured): CPU seconds (rusage), CPU over a steady window in
the middle, peak RSS; each rendition's playlist ends with #EXT-X-ENDLIST (the run was
whole). --repeats runs per peer, interleaved; the summary quotes medians.

    python bench/ladder_cpu.py --seconds 30 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchlib import (
    AUDIO_KBPS,
    FFMPEG,
    FPS,
    HEIGHT,
    KEYFRAME_SECONDS,
    PRESET,
    REPO,
    VIDEO_KBPS,
    WIDTH,
    Measurement,
    StateWatcher,
    free_port,
    jalsa_argv,
    log,
    machine,
    make_clip,
    median,
    run_measured,
    tree,
    workdir,
    write_json,
)

PEERS = ("ffmpeg", "jalsa")
TARGET_RATIO = 1.15
LOW_HEIGHT, LOW_KBPS, LOW_AUDIO_KBPS, AUDIO_ONLY_KBPS = 360, 440, 48, 48


@dataclass
class Run:
    peer: str
    repeat: int
    measurement: Measurement
    complete: dict[str, bool]  # playlist -> ends with #EXT-X-ENDLIST
    # jalsa's own view near the end: program frames and late resets, and per rendition
    # its frames and dropped frames (/api/state).
    own_view: dict[str, object] | None = None

    @property
    def ok(self) -> bool:
        m = self.measurement
        return m.exit_code == 0 and not m.timed_out and all(self.complete.values())


def jalsa_event(clip: Path, seconds: int, ladder: bool) -> str:
    lines = [
        "[event]", 'name = "bench"', 'on_end = "stop"', "",
        "[program]", f"width = {WIDTH}", f"height = {HEIGHT}", f"fps = {FPS}",
        f"video_bitrate_kbps = {VIDEO_KBPS}", f"audio_bitrate_kbps = {AUDIO_KBPS}",
        f"keyframe_seconds = {KEYFRAME_SECONDS}", f'preset = "{PRESET}"', "",
        "[[speakers]]", 'id = "clip"', 'name = "Bench Clip"', f"source = {json.dumps(str(clip))}",
        "", "[[rundown]]", 'speaker = "clip"', f'duration = "{seconds}s"', "",
        "[[destinations]]", 'name = "mirror"', 'platform = "custom"', 'url = "hls"',
    ]  # fmt: skip
    if ladder:
        lines += [
            "", "[destinations.ladder]", f"low_height = {LOW_HEIGHT}",
            f"low_video_kbps = {LOW_KBPS}", f"low_audio_kbps = {LOW_AUDIO_KBPS}",
            f"audio_kbps = {AUDIO_ONLY_KBPS}",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


def ffmpeg_argv(clip: Path, seconds: int, out: Path) -> list[str]:
    gop = FPS * KEYFRAME_SECONDS
    low_width = round(LOW_HEIGHT * WIDTH / HEIGHT / 2) * 2

    def x264(index: int, kbps: int) -> list[str]:
        return [
            f"-c:v:{index}", "libx264", f"-preset:v:{index}", PRESET,
            f"-tune:v:{index}", "zerolatency", f"-b:v:{index}", f"{kbps}k",
            f"-maxrate:v:{index}", f"{kbps}k", f"-bufsize:v:{index}", f"{2 * kbps}k",
        ]  # fmt: skip

    return [
        FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
        "-re", "-i", str(clip), "-t", str(seconds),
        "-filter_complex",
        f"[0:v]scale={WIDTH}:{HEIGHT},split=2[v0][v1];[v1]scale={low_width}:{LOW_HEIGHT}[v1o]",
        "-map", "[v0]", "-map", "0:a", "-map", "[v1o]", "-map", "0:a", "-map", "0:a",
        *x264(0, VIDEO_KBPS), *x264(1, LOW_KBPS),
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})",
        "-c:a", "aac", "-ar", "48000", "-ac", "2",
        "-b:a:0", f"{AUDIO_KBPS}k", "-b:a:1", f"{LOW_AUDIO_KBPS}k", "-b:a:2", f"{AUDIO_ONLY_KBPS}k",
        "-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
        "-hls_flags", "delete_segments+independent_segments+temp_file",
        "-var_stream_map", "v:0,a:0 v:1,a:1 a:2", "-master_pl_name", "index.m3u8",
        "-hls_segment_filename", str(out / "%v-%d.ts"), str(out / "%v.m3u8"),
    ]  # fmt: skip


def run_once(peer: str, repeat: int, clip: Path, seconds: int, scratch: Path) -> Run:
    tag = f"{peer}-r{repeat}"
    folder = scratch / tag
    folder.mkdir()
    watcher: StateWatcher | None = None
    if peer == "ffmpeg":
        hls = folder / "hls"
        hls.mkdir()
        argv = ffmpeg_argv(clip, seconds, hls)
        playlists = [hls / f"{n}.m3u8" for n in range(3)]
    else:
        event = folder / "event.toml"
        event.write_text(jalsa_event(clip, seconds, ladder=peer == "jalsa"))
        http_port = free_port()
        argv = jalsa_argv(event, folder / "state", http_port)
        watcher = StateWatcher(http_port, folder / "state", every=2.0)
        watcher.start()
        hls = folder / "state" / "hls" / "mirror"
        names = ("program", "low", "audio") if peer == "jalsa" else ("index",)
        playlists = [hls / f"{n}.m3u8" for n in names]
    log(f"{tag}: running ({seconds} s)")
    window = (max(0.3 * seconds, 10.0), 0.9 * seconds)
    measurement = run_measured(
        argv, log_path=folder / "output.log", timeout=seconds + 60, steady_window=window, cwd=REPO
    )
    complete = {p.name: p.exists() and "#EXT-X-ENDLIST" in p.read_text() for p in playlists}
    own_view = None
    if watcher is not None:
        watcher.stop()
        last = watcher.last or {}
        program = last.get("program", {})
        own_view = {
            "program_frames": program.get("frames"),
            "late_resets": program.get("late_resets"),
            "ladder": {
                r["name"]: {"frames": r["frames"], "dropped_frames": r["dropped_frames"]}
                for r in last.get("ladders", {}).get("mirror", [])
            },
        }
    run = Run(peer, repeat, measurement, complete, own_view)
    log(
        f"{tag}: exit {measurement.exit_code}, cpu {measurement.cpu_seconds:.1f} s, "
        f"steady {measurement.steady_cores or 0:.2f} cores, rss {measurement.peak_rss_mb:.0f} MB, "
        f"complete {complete}, jalsa's view {own_view}"
    )
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peers", default=",".join(PEERS), help="ffmpeg,jalsa,jalsa-program")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    peers = args.peers.split(",")
    clip = make_clip(args.seconds + 5)
    scratch = workdir("ladder-cpu")
    started = tree()
    runs = [
        run_once(peer, r, clip, args.seconds, scratch)
        for r in range(1, args.repeats + 1)
        for peer in peers
    ]
    summary: dict[str, dict[str, float | None]] = {}
    for peer in peers:
        mine = [r for r in runs if r.peer == peer and r.ok]
        summary[peer] = {
            "runs_ok": len(mine),
            "cpu_seconds": median([r.measurement.cpu_seconds for r in mine]),
            "steady_cores": median([r.measurement.steady_cores for r in mine]),
            "peak_rss_mb": median([r.measurement.peak_rss_mb for r in mine]),
        }
        log(f"{peer}: {summary[peer]}")
    if "ffmpeg" in summary and "jalsa" in summary:
        ours, theirs = summary["jalsa"]["steady_cores"], summary["ffmpeg"]["steady_cores"]
        if ours and theirs:
            ratio = ours / theirs
            verdict = "meets" if ratio <= TARGET_RATIO else "misses"
            log(f"ladder steady CPU jalsa/ffmpeg: {ratio:.2f} ({verdict} <= {TARGET_RATIO})")
    path = write_json(
        "ladder-cpu",
        {
            "args": vars(args),
            "machine": machine(),
            "tree": {"start": started, "end": tree()},
            "summary": summary,
            "runs": [asdict(r) for r in runs],
        },
    )
    log(f"results: {path}")
    if args.keep:
        log(f"kept: {scratch}")
    else:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    time.sleep(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
