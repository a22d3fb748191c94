#!/usr/bin/env python3
"""What the cloud edge costs: ``jalsa edge`` against ``ffmpeg -f tee`` copying the same
contribution to the same N RTMP sinks, in the same run; and the latency it adds.

The input (both peers): ONE contribution, the program a studio would send, made once
with ffmpeg from benchlib's clip: FLV, H.264 1280x720 30 fps veryfast 3000k (keyframe
every 2 s) + AAC 128k 48 kHz stereo.

- jalsa: ``jalsa edge edge.toml`` (plain HTTP on loopback, no TLS) with N RTMP
  destinations; this script is the studio: it PUTs the FLV to ``/contribute`` as jalsa's
  contribution does (chunked, one FLV tag per chunk, ``Expect: 100-continue``), each tag
  paced by its timestamp, and notes the moment it handed each video tag to the socket.
- ffmpeg: ``ffmpeg -re -i contribution.flv -map 0 -c copy -f tee "[f=flv:onfail=ignore]…|…"``.

Measured per run: the peer's CPU rate over a steady window (CPU s per wall s from
/proc/PID/stat, from 0.3 D to 0.9 D after the feed starts: real time, so it is CPU s per
media s), per destination (/ N), and every destination's media by ffprobe. Latency
(jalsa only): a PyAV reader plays the first destination back from nginx; each video
packet it gets is matched to the tag the studio sent by the sequence of packet sizes
(the edge copies packets, so sizes identify frames), and the latency is its arrival
minus the moment the studio wrote it: the edge's intake, demux, queue and RTMP push,
nginx's relay and the reader's demux, on loopback (no network delay).

    python bench/edge_cost.py --seconds 30 --counts 0,1,2,4,8 --repeats 2

``--counts`` 0: the edge serving, sent no contribution (its fixed cost).

``--mirror``: both peers also make an HLS mirror with the default ladder from the same
contribution (the program copied, 640x360 x264 veryfast 440k + AAC 48k with the input's
keyframes, AAC 48k audio only): jalsa's edge file gets ``[[destinations]] url = "hls"``
with an empty ``[destinations.ladder]`` (decoded and encoded on the edge:
orchestrator/edge/mirror_ladders.py); ffmpeg gets a second output in the same process,
``-f hls -var_stream_map "v:0,a:0 v:1,a:1 a:2"`` beside its tee.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from benchlib import (
    CACHE,
    FFMPEG,
    REPO,
    NginxSink,
    _proc_cpu_seconds,
    free_port,
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

KEY = "bench-edge-key-7c1f0a9e3d"
MATCH = 8  # consecutive packet sizes that identify a frame
SKIP_FRAMES = 60  # the reader's first packets wait out its stream probe


def contribution(seconds: int) -> Path:
    """The studio's program as FLV (made once from benchlib's clip)."""
    path = CACHE / f"contribution-720p30-{seconds}s.flv"
    if not path.exists():
        clip = make_clip(seconds)
        log(f"making the contribution {path}")
        subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
             "-t", str(seconds), "-vf", "scale=1280:720", "-c:v", "libx264",
             "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "3000k",
             "-maxrate", "3000k", "-bufsize", "6000k", "-g", "60", "-keyint_min", "60",
             "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
             "-f", "flv", str(path)],
            check=True,
        )  # fmt: skip
    return path


def flv_tags(path: Path) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """The FLV header (with PreviousTagSize0) and every tag: (type, ms, bytes)."""
    data = path.read_bytes()
    head, at, tags = data[:13], 13, []
    while at + 11 <= len(data):
        size = int.from_bytes(data[at + 1 : at + 4], "big")
        stamp = int.from_bytes(data[at + 4 : at + 7], "big") | (data[at + 7] << 24)
        tags.append((data[at], stamp, data[at : at + 11 + size + 4]))
        at += 11 + size + 4
    return head, tags


class Studio(threading.Thread):
    """Sends the contribution in real time; ``sent``: (packet size, wall) per video frame."""

    def __init__(self, port: int, head: bytes, tags: list[tuple[int, int, bytes]]) -> None:
        super().__init__(daemon=True)
        self.port, self.head, self.tags = port, head, tags
        self.sent: list[tuple[int, float]] = []
        self.error = ""

    def run(self) -> None:
        try:
            self._send()
        except OSError as exc:
            self.error = repr(exc)

    def _send(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(
                f"PUT /contribute HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {KEY}\r\nContent-Type: video/x-flv\r\n"
                "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
                "Jalsa-Studio: bench\r\n\r\n".encode()
            )
            answer = sock.recv(4096)
            if not answer.startswith(b"HTTP/1.1 100"):
                raise OSError(f"the edge answered {answer[:80]!r}")
            sock.sendall(_chunk(self.head))
            started = time.monotonic()
            for kind, stamp, tag in self.tags:
                delay = started + stamp / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sock.sendall(_chunk(tag))
                if kind == 9 and tag[12] == 1:  # an AVC NALU packet: a frame
                    self.sent.append((len(tag) - 11 - 4 - 5, time.monotonic()))
            sock.sendall(b"0\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Viewer(threading.Thread):
    """A player at the platform: (packet size, wall) per video packet it gets."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds = url, seconds
        self.got: list[tuple[int, float]] = []

    def run(self) -> None:
        options = {"rtmp_live": "live", "analyzeduration": "0", "probesize": "32768"}
        try:
            # (open, read): the stream's end is 3 s without a packet (nginx keeps a player)
            with av.open(self.url, options=options, timeout=(self.seconds + 30, 3)) as container:
                until = time.monotonic() + self.seconds + 30
                for packet in container.demux(video=0):
                    if packet.size:
                        self.got.append((packet.size, time.monotonic()))
                    if time.monotonic() > until:
                        return
        except (av.error.FFmpegError, OSError) as exc:
            log(f"viewer: {exc}")


def latencies(sent: list[tuple[int, float]], got: list[tuple[int, float]]) -> list[float]:
    """Arrival minus send, per frame matched by the sizes of MATCH frames in a row."""
    index: dict[tuple[int, ...], int] = {}
    sizes = [s for s, _ in sent]
    for i in range(len(sizes) - MATCH):
        index.setdefault(tuple(sizes[i : i + MATCH]), i)
    got_sizes = [s for s, _ in got]
    found = []
    for j in range(SKIP_FRAMES, len(got) - MATCH):
        i = index.get(tuple(got_sizes[j : j + MATCH]))
        if i is not None:
            found.append(got[j][1] - sent[i][1])
    return found


@dataclass
class Run:
    peer: str
    destinations: int
    repeat: int
    steady_cores: float | None
    media_seconds: list[float]
    load: float
    latency_ms: dict[str, float] | None = None


def _edge_file(path: Path, urls: list[str], mirror: bool) -> Path:
    lines = ["[edge]", 'name = "bench-edge"', f'key = "{KEY}"']
    for index, url in enumerate(urls):
        app, _, stream = url.rpartition("/")
        lines += ["", "[[destinations]]", f'name = "d{index}"', f'url = "{app}"']
        lines += [f'key = "{stream}"']
    if mirror:
        lines += ["", "[[destinations]]", 'name = "mirror"', 'url = "hls"']
        lines += ["[destinations.ladder]"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def run_edge(
    nginx: NginxSink, work: Path, flv: Path, n: int, seconds: int, tag: str, mirror: bool
) -> Run:
    """``n`` destinations; ``n == 0``: the edge serving one but sent no contribution (its
    fixed cost: uvicorn, /metrics, the control routes)."""
    urls = [nginx.url("live", f"{tag}-{i}") for i in range(max(n, 1))]
    port = free_port()
    edge_toml = _edge_file(work / f"{tag}.toml", urls, mirror)
    argv = [sys.executable, "-m", "orchestrator.cli", "edge", str(edge_toml),
            "--listen", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{free_port()}",
            "--state", str(work / f"{tag}-state")]  # fmt: skip
    with (work / f"{tag}.log").open("wb") as out:
        edge = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not _serving(port):
            if time.monotonic() > deadline or edge.poll() is not None:
                raise RuntimeError(f"the edge did not serve: {(work / f'{tag}.log').read_text()}")
            time.sleep(0.2)
        if n == 0:
            idle = _window(edge.pid, time.monotonic(), seconds)
            return Run("jalsa edge", 0, 0, idle, [], os.getloadavg()[0])
        viewer = Viewer(urls[0], seconds)
        viewer.start()
        head, tags = flv_tags(flv)
        studio = Studio(port, head, tags)
        started = time.monotonic()
        studio.start()
        cpu = _window(edge.pid, started, seconds)
        studio.join(seconds + 30)
        time.sleep(2)  # the edge's queues drain to nginx
    finally:
        edge.send_signal(signal.SIGTERM)
        edge.wait(30)
    viewer.join(seconds + 40)
    if studio.error:
        log(f"studio: {studio.error}")
    found = latencies(studio.sent, viewer.got)
    latency = None
    if found:
        ms = sorted(x * 1000 for x in found)
        latency = {"median": statistics.median(ms), "p95": ms[int(0.95 * (len(ms) - 1))],
                   "max": ms[-1], "frames": len(ms)}  # fmt: skip
    nginx_media = [received(nginx.recording(f"{tag}-{i}")).video_seconds for i in range(n)]
    return Run("jalsa edge", n, 0, cpu, nginx_media, os.getloadavg()[0], latency)


def _window(pid: int, started: float, seconds: int) -> float | None:
    """The CPU rate of ``pid`` from 0.3 to 0.9 of ``seconds`` after ``started``."""
    marks = []
    for at in (0.3 * seconds, 0.9 * seconds):
        time.sleep(max(0.0, started + at - time.monotonic()))
        cpu = _proc_cpu_seconds(pid)
        if cpu is None:
            return None
        marks.append((time.monotonic(), cpu))
    (t0, c0), (t1, c1) = marks
    return (c1 - c0) / (t1 - t0)


def run_ffmpeg(
    nginx: NginxSink, work: Path, flv: Path, n: int, seconds: int, tag: str, mirror: bool
) -> Run:
    urls = [nginx.url("live", f"{tag}-{i}") for i in range(n)]
    slaves = "|".join(f"[f=flv:onfail=ignore]{url}" for url in urls)
    argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", str(flv),
            "-map", "0", "-c", "copy", "-f", "tee", slaves]  # fmt: skip
    if mirror:
        hls = work / f"{tag}-hls"
        hls.mkdir()
        argv += ["-filter_complex", "[0:v]scale=-2:360[low]",
                 "-map", "0:v", "-map", "0:a", "-map", "[low]", "-map", "0:a", "-map", "0:a",
                 "-c:v:0", "copy", "-c:a:0", "copy",
                 "-c:v:1", "libx264", "-preset:v:1", "veryfast", "-b:v:1", "440k",
                 "-force_key_frames:v:1", "source",
                 "-c:a:1", "aac", "-b:a:1", "48k", "-c:a:2", "aac", "-b:a:2", "48k",
                 "-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
                 "-hls_flags", "delete_segments+independent_segments",
                 "-var_stream_map", "v:0,a:0 v:1,a:1 a:2", "-master_pl_name", "index.m3u8",
                 "-hls_segment_filename", str(hls / "%v-%d.ts"), str(hls / "%v.m3u8")]  # fmt: skip
    measured = run_measured(
        argv, log_path=work / f"{tag}.log", timeout=seconds + 60,
        steady_window=(0.3 * seconds, 0.9 * seconds),
    )  # fmt: skip
    time.sleep(1)
    nginx_media = [received(nginx.recording(f"{tag}-{i}")).video_seconds for i in range(n)]
    return Run("ffmpeg tee", n, 0, measured.steady_cores, nginx_media, os.getloadavg()[0])


def _runs(args: argparse.Namespace, nginx: NginxSink, work: Path, flv: Path) -> Iterator[Run]:
    for repeat in range(args.repeats):
        for n in args.counts:
            for peer, runner in (("jalsa", run_edge), ("ffmpeg", run_ffmpeg)):
                if n == 0 and peer == "ffmpeg":
                    continue
                tag = f"{peer}-{n}-{repeat}"
                log(f"{peer}, {n} destination(s), repeat {repeat + 1}")
                run = runner(nginx, work, flv, n, args.seconds, tag, args.mirror)
                run.repeat = repeat
                log(f"  {run}")
                yield run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")],
                        default=[0, 1, 2, 4, 8])  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--mirror", action="store_true", help="an HLS mirror with its ladder too")
    args = parser.parse_args()
    flv = contribution(args.seconds)
    work = workdir("edge-cost-")
    started = {"machine": machine(), "tree": tree()}
    with NginxSink(work / "nginx") as nginx:
        runs = list(_runs(args, nginx, work, flv))
    idle = median([r.steady_cores for r in runs if r.destinations == 0]) or 0.0
    print(f"\nthe edge serving, no contribution: {idle:.3f} cores")
    print(
        "\n| N | jalsa edge cores | per destination | above idle, per destination "
        "| ffmpeg tee cores | per destination "
        "| jalsa/ffmpeg | edge latency median / p95 ms | least media s (jalsa, ffmpeg) | load |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in [n for n in args.counts if n]:
        mine = [r for r in runs if r.destinations == n and r.peer == "jalsa edge"]
        peer = [r for r in runs if r.destinations == n and r.peer == "ffmpeg tee"]
        a, b = median([r.steady_cores for r in mine]), median([r.steady_cores for r in peer])
        lat = median([r.latency_ms["median"] for r in mine if r.latency_ms])
        p95 = median([r.latency_ms["p95"] for r in mine if r.latency_ms])
        least = (min(min(r.media_seconds) for r in mine), min(min(r.media_seconds) for r in peer))
        load = median([r.load for r in mine + peer])
        print(f"| {n} | {a or 0:.3f} | {(a or 0) / n:.3f} | {((a or 0) - idle) / n:.3f} "
              f"| {b or 0:.3f} | {(b or 0) / n:.3f} "
              f"| {(a or 0) / b if b else float('nan'):.1f} | {lat or 0:.0f} / {p95 or 0:.0f} "
              f"| {least[0]:.1f}, {least[1]:.1f} | {load or 0:.1f} |")  # fmt: skip
    path = write_json("edge_cost", {**started, "args": vars(args), "runs": runs,
                                    "tree_end": tree()})  # fmt: skip
    print(f"\nraw figures: {path}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
