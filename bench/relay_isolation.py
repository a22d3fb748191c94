#!/usr/bin/env python3
"""Relay isolation: one healthy platform, one choked to ~40 KB/s, three relays, one run.

The scenario: a 720p30 3 Mb/s program for --seconds (30), two RTMP
destinations on a local nginx-rtmp that records what it receives; the "choked" one sits
behind the tests' FaultProxy throttled to --choke bytes/s (40 000). Peers, in turn:

- jalsa:        ``jalsa run`` with both destinations (one encode, our own publisher);
- ffmpeg tee:   ``ffmpeg -re -i clip … -f tee "[f=flv:onfail=ignore]healthy|…choked"``;
- nginx push:   ffmpeg pushes once to an nginx-rtmp relay whose application ``push``-es
                to both destinations.

Each peer runs until the healthy sink has received --seconds of wall time (measured from
its first byte), then is stopped (SIGTERM, SIGINT for ffmpeg; killed after a grace
period). Printed per peer: the healthy destination's media seconds / wall seconds, the
choked destination's audio seconds (and / wall), its video seconds, and the decode
errors ffmpeg finds in what it received. Targets: healthy ≥ 0.97, choked audio ≥ 0.9.

    python bench/relay_isolation.py --seconds 30 --choke 40000 --repeats 3

For jalsa it also reads the program's own media seconds over the window from /metrics:
"healthy/program" near 1 with "media/wall" below target means the machine was too busy
to produce the program in real time (the relay kept up with what there was).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from benchlib import (
    FFMPEG,
    NGINX,
    REPO,
    RTMP_MODULE,
    NginxSink,
    Received,
    ffmpeg_argv,
    free_port,
    jalsa_argv,
    jalsa_event,
    log,
    machine,
    make_clip,
    received,
    tree,
    workdir,
    write_json,
)

sys.path.insert(0, str(REPO / "tests"))
from faults import FaultProxy  # the tests' fault-injecting proxy

PEERS = ("jalsa", "ffmpeg-tee", "nginx-push")
TARGET_HEALTHY = 0.97
TARGET_CHOKED_AUDIO = 0.9
GRACE = 8.0  # seconds a peer gets to exit after the stop signal


@dataclass
class Outcome:
    peer: str
    wall_seconds: float
    healthy: Received
    choked: Received
    choked_decode_errors: int
    stop_seconds: float
    cpu_seconds: float
    # jalsa only: program media produced over the window (from its /metrics), to tell a
    # relay problem from a machine too busy to produce the program in real time.
    program_seconds: float | None = None

    @property
    def healthy_ratio(self) -> float:
        return self.healthy.video_seconds / self.wall_seconds

    @property
    def healthy_of_program(self) -> float | None:
        if not self.program_seconds:
            return None
        return self.healthy.video_seconds / self.program_seconds

    @property
    def choked_audio_ratio(self) -> float:
        return self.choked.audio_seconds / self.wall_seconds


def decode_errors(path: Path) -> int:
    """Lines of errors ffmpeg prints decoding ``path`` (-1: nothing to decode)."""
    if not path.exists() or path.stat().st_size == 0:
        return -1
    result = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return len([line for line in result.stderr.splitlines() if line.strip()])


class NginxPush:
    """An nginx-rtmp relay: application ``in`` pushes every stream to ``targets``."""

    def __init__(self, folder: Path, targets: list[str]) -> None:
        self.folder = folder
        self.port = free_port()
        self.targets = targets
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NginxPush:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        pushes = " ".join(f"push {url};" for url in self.targets)
        conf = self.folder / "nginx.conf"
        conf.write_text(
            textwrap.dedent(f"""\
                load_module {RTMP_MODULE};
                pid {self.folder / "nginx.pid"};
                error_log {self.folder / "error.log"} warn;
                events {{ worker_connections 256; }}
                rtmp {{ server {{ listen 127.0.0.1:{self.port}; chunk_size 4096;
                  application in {{ live on; record off; {pushes} }} }} }}
            """)
        )
        with (self.folder / "nginx.out").open("wb") as out:
            self.process = subprocess.Popen(
                [NGINX, "-p", str(self.folder), "-c", str(conf), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.port}/in/program"


def run_peer(peer: str, clip: Path, seconds: float, choke: float, folder: Path) -> Outcome:
    with (
        NginxSink(folder / "sink") as sink,
        FaultProxy("127.0.0.1", sink.port, mode="throttle", rate_bytes_per_s=choke) as proxy,
    ):
        healthy_url = sink.url("live", "healthy")
        choked_url = f"rtmp://127.0.0.1:{proxy.port}/live/choked"
        long_enough = int(seconds) + 60  # the peers are stopped, never run out of input
        if peer == "jalsa":
            event = folder / "event.toml"
            event.write_text(jalsa_event(clip, long_enough, [healthy_url, choked_url]))
            argv, stop = jalsa_argv(event, folder / "state"), signal.SIGTERM
            outcome = _measure(peer, argv, stop, sink, seconds, folder)
        elif peer == "ffmpeg-tee":
            argv = ffmpeg_argv(clip, long_enough, [healthy_url, choked_url])
            outcome = _measure(peer, argv, signal.SIGINT, sink, seconds, folder)
        else:
            with NginxPush(folder / "relay", [healthy_url, choked_url]) as relay:
                argv = ffmpeg_argv(clip, long_enough, [relay.url()])
                outcome = _measure(peer, argv, signal.SIGINT, sink, seconds, folder)
    # The sink is stopped gracefully (recordings closed) before they are read.
    choked_path = sink.recording("choked")
    return Outcome(
        peer,
        outcome.wall_seconds,
        received(sink.recording("healthy")),
        received(choked_path),
        decode_errors(choked_path),
        outcome.stop_seconds,
        outcome.cpu_seconds,
        outcome.program_seconds,
    )


@dataclass
class _Measured:
    wall_seconds: float
    stop_seconds: float
    cpu_seconds: float
    program_seconds: float | None


def _program_seconds(argv: list[str]) -> float | None:
    """jalsa_program_media_seconds from a ``jalsa run`` argv's --metrics address."""
    if "--metrics" not in argv:
        return None
    address = argv[argv.index("--metrics") + 1]
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("jalsa_program_media_seconds_total "):
            return float(line.split()[-1])
    return None


def _measure(
    peer: str, argv: list[str], stop: signal.Signals, sink: NginxSink, seconds: float, folder: Path
) -> _Measured:
    log(f"{peer}: starting")
    with (folder / f"{peer}.log").open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    healthy = sink.recording("healthy")
    deadline = time.monotonic() + 60
    while not (healthy.exists() and healthy.stat().st_size > 0):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"{peer} never reached the healthy sink (see {folder})")
        time.sleep(0.05)
    started = time.monotonic()
    program_start = _program_seconds(argv)
    log(f"{peer}: streaming; stopping it in {seconds:g} s")
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    program_end = _program_seconds(argv)
    wall = time.monotonic() - started
    process.send_signal(stop)
    stopping = time.monotonic()
    usage = None
    while time.monotonic() - stopping < GRACE:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        time.sleep(0.05)
    else:
        log(f"{peer}: did not exit {GRACE:g} s after the stop signal; killed")
        process.kill()
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    stop_seconds = time.monotonic() - stopping
    time.sleep(1.0)  # the sink finishes writing
    cpu = usage.ru_utime + usage.ru_stime if usage is not None else 0.0
    program = None
    if program_start is not None and program_end is not None:
        program = program_end - program_start
    return _Measured(wall, stop_seconds, cpu, program)


def report(outcomes: list[Outcome]) -> str:
    """Per run, then the medians per peer."""
    header = (
        f"{'peer':<11} {'wall s':>6} {'healthy media/wall':>18} {'healthy/program':>15} "
        f"{'choked audio s':>14} {'audio/wall':>10} {'choked video s':>14} "
        f"{'decode errors':>13} {'stop s':>6} {'CPU s':>6}"
    )
    rows = ["each run:", header]
    for o in outcomes:
        rows.append(_row(o.peer, [o]))
    rows += ["", "medians:", header]
    for peer in dict.fromkeys(o.peer for o in outcomes):
        rows.append(_row(peer, [o for o in outcomes if o.peer == peer]))
    jalsa = [o for o in outcomes if o.peer == "jalsa"]
    if jalsa:
        healthy = statistics.median(o.healthy_ratio for o in jalsa)
        audio = statistics.median(o.choked_audio_ratio for o in jalsa)
        ok = healthy >= TARGET_HEALTHY and audio >= TARGET_CHOKED_AUDIO
        rows.append(
            f"jalsa targets (healthy ≥ {TARGET_HEALTHY}, choked audio ≥ "
            f"{TARGET_CHOKED_AUDIO} of wall): {'met' if ok else 'NOT met'}"
        )
    return "\n".join(rows)


def _row(peer: str, runs: list[Outcome]) -> str:
    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    def fmt(value: float | None, width: int, digits: int) -> str:
        return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.{digits}f}"

    return " ".join(
        [
            f"{peer:<11}",
            fmt(med([o.wall_seconds for o in runs]), 6, 1),
            fmt(med([o.healthy_ratio for o in runs]), 18, 3),
            fmt(med([o.healthy_of_program for o in runs]), 15, 3),
            fmt(med([o.choked.audio_seconds for o in runs]), 14, 1),
            fmt(med([o.choked_audio_ratio for o in runs]), 10, 3),
            fmt(med([o.choked.video_seconds for o in runs]), 14, 1),
            fmt(med([float(o.choked_decode_errors) for o in runs]), 13, 0),
            fmt(med([o.stop_seconds for o in runs]), 6, 1),
            fmt(med([o.cpu_seconds for o in runs]), 6, 1),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="wall seconds per peer")
    parser.add_argument("--choke", type=float, default=40_000, help="bytes/s to the choked one")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--repeats", type=int, default=1, help="runs per peer (interleaved)")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {PEERS}")
    clip = make_clip(int(args.seconds) + 60)
    outcomes = []
    for repeat in range(args.repeats):
        for peer in peers:
            folder = workdir(f"relay-isolation-{peer}-")
            log(f"{peer}: run {repeat + 1}/{args.repeats}, load average {os.getloadavg()[0]:.1f}")
            outcomes.append(run_peer(peer, clip, args.seconds, args.choke, folder))
            log(f"{peer}: done ({folder})")
    text = report(outcomes)
    print(text)
    path = write_json(
        "relay_isolation",
        {
            "seconds": args.seconds,
            "repeats": args.repeats,
            "choke_bytes_per_second": args.choke,
            "machine": machine(),
            "tree": tree(),
            "outcomes": [
                {
                    **asdict(o),
                    "healthy_ratio": o.healthy_ratio,
                    "choked_audio_ratio": o.choked_audio_ratio,
                    "healthy_of_program": o.healthy_of_program,
                }
                for o in outcomes
            ],
            "report": text,
        },
    )
    log(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
