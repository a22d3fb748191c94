"""Shared parts of the benchmarks: the input clip, an nginx-rtmp sink, measured processes.

Nothing here is jalsa code: the benchmarks run ``jalsa`` (``python -m orchestrator.cli``)
and ``ffmpeg`` as separate processes, exactly as a user would, and measure them from
outside (``os.wait4`` rusage, ``/proc/PID/stat`` and ``/proc/PID/status``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
CACHE = BENCH / ".cache"

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

CLK_TCK = os.sysconf("SC_CLK_TCK")

# The job both peers do: a 1080p30 H.264 + AAC clip in, 720p30 out, encoded once.
WIDTH, HEIGHT, FPS = 1280, 720, 30
VIDEO_KBPS, AUDIO_KBPS = 3000, 128
PRESET = "veryfast"
KEYFRAME_SECONDS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the input clip ---------------------------------------------------------------------
def make_clip(seconds: int, cache: Path = CACHE) -> Path:
    """A 1920x1080 30 fps testsrc2 + 440 Hz sine clip (H.264 8 Mb/s + AAC), made once."""
    cache.mkdir(parents=True, exist_ok=True)
    # Any cached clip at least that long will do: both peers stop after their duration.
    cached = sorted(
        (int(p.stem.rsplit("-", 1)[1].rstrip("s")), p)
        for p in cache.glob("testsrc2-1080p30-*s.mp4")
        if p.stem.rsplit("-", 1)[1].rstrip("s").isdigit()
    )
    for length, found in cached:
        if length >= seconds:
            return found
    path = cache / f"testsrc2-1080p30-{seconds}s.mp4"
    log(f"making the input clip {path} ({seconds} s of 1080p30; done once)")
    partial = path.with_suffix(".partial.mp4")
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60",
            "-b:v", "8000k", "-maxrate", "8000k", "-bufsize", "16000k",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2",
            "-movflags", "+faststart", str(partial),
        ],
        check=True,
    )  # fmt: skip
    partial.rename(path)
    return path


# -- the RTMP sink ----------------------------------------------------------------------
class NginxSink:
    """nginx-rtmp on a free loopback port; app ``live`` records every stream it receives.

    Records land in ``recording(stream)`` (``<stream>.flv``), so what reached the "platform"
    can be judged with ffprobe. Runs in the foreground as our child (``daemon off``) and
    is stopped by its pid.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.rec_dir = workdir / "rec"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NginxSink:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def url(self, app: str = "live", stream: str = "") -> str:
        return f"rtmp://127.0.0.1:{self.port}/{app}" + (f"/{stream}" if stream else "")

    def recording(self, stream: str) -> Path:
        return self.rec_dir / f"{stream}.flv"

    def start(self) -> None:
        self.rec_dir.mkdir(parents=True, exist_ok=True)
        # The worker runs as nobody: it must reach and write the record folder.
        self.workdir.chmod(0o755)
        self.rec_dir.chmod(0o777)
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            textwrap.dedent(f"""\
                load_module {RTMP_MODULE};
                pid {self.workdir / "nginx.pid"};
                error_log {self.workdir / "error.log"} warn;
                events {{ worker_connections 256; }}
                rtmp {{ server {{ listen 127.0.0.1:{self.port}; chunk_size 4096;
                  application live {{ live on; record all; record_path {self.rec_dir};
                                     record_unique off; }} }} }}
            """)
        )
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.workdir), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "nginx.out").open("wb"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.workdir / 'nginx.out').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not listen within 10 s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: recordings are closed
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# -- what reached the sink --------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    """What ffprobe reads back from one recording."""

    video_seconds: float  # first to last video pts, plus one frame
    audio_seconds: float
    video_frames: int
    largest_video_gap: float
    width: int | None
    height: int | None
    first_video_pts: float | None = None  # the sender's timestamps: a late start shows here
    last_video_pts: float | None = None


def received(path: Path) -> Received:
    if not path.exists() or path.stat().st_size == 0:
        return Received(0.0, 0.0, 0, 0.0, None, None)
    out = subprocess.run(
        [
            FFPROBE, "-v", "error", "-of", "json", "-show_streams",
            "-show_entries", "packet=stream_index,pts_time,duration_time", "-show_packets",
            str(path),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.stdout or "{}")
    kinds = {s["index"]: s["codec_type"] for s in data.get("streams", [])}
    video: dict[str, Any] = next(
        (s for s in data.get("streams", []) if s["codec_type"] == "video"), {}
    )
    times: dict[str, list[float]] = {"video": [], "audio": []}
    last_duration: dict[str, float] = {"video": 0.0, "audio": 0.0}
    for packet in data.get("packets", []):
        kind = kinds.get(packet.get("stream_index"))
        if kind in times and packet.get("pts_time") is not None:
            times[kind].append(float(packet["pts_time"]))
            last_duration[kind] = float(packet.get("duration_time") or 0.0)

    def span(kind: str) -> float:
        t = times[kind]
        return (max(t) - min(t) + last_duration[kind]) if t else 0.0

    vt = sorted(times["video"])
    gap = max((b - a for a, b in itertools.pairwise(vt)), default=0.0)
    return Received(
        span("video"),
        span("audio"),
        len(vt),
        gap,
        video.get("width"),
        video.get("height"),
        vt[0] if vt else None,
        vt[-1] if vt else None,
    )


# -- a measured process -----------------------------------------------------------------
@dataclass
class Measurement:
    """One process, measured from outside: rusage at exit, /proc samples while running."""

    exit_code: int
    wall_seconds: float
    user_seconds: float
    sys_seconds: float
    peak_rss_mb: float
    # CPU cores used over the steady window (CPU s per wall s), from /proc/PID/stat.
    steady_cores: float | None
    steady_window: tuple[float, float] | None
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (t, MB)
    timed_out: bool = False

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.sys_seconds


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is state (field 3): utime, stime are fields 14, 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _proc_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_measured(
    argv: Sequence[str],
    *,
    log_path: Path,
    timeout: float,
    steady_window: tuple[float, float] | None = None,
    rss_every: float | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Measurement:
    """Run ``argv`` to its end and measure it.

    CPU and peak RSS come from ``os.wait4`` (the process and every child it waited for);
    ``steady_window`` (seconds after the start) gives the CPU rate over that part of the
    run from /proc/PID/stat; ``rss_every`` samples VmRSS from /proc/PID/status.
    """
    poll = 0.1
    with log_path.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )
    pid = process.pid
    window_cpu: dict[str, tuple[float, float]] = {}
    samples: list[tuple[float, float]] = []
    next_sample = 0.0
    timed_out = False
    signalled = 0
    while True:
        waited, status, usage = os.wait4(pid, os.WNOHANG)
        if waited == pid:
            break
        now = time.monotonic() - started
        if steady_window is not None:
            for edge, at in zip(("start", "end"), steady_window, strict=True):
                if edge not in window_cpu and now >= at:
                    cpu = _proc_cpu_seconds(pid)
                    if cpu is not None:
                        window_cpu[edge] = (now, cpu)
        if rss_every is not None and now >= next_sample:
            rss = _proc_rss_mb(pid)
            if rss is not None:
                samples.append((round(now, 2), rss))
            next_sample += rss_every
        if now > timeout and signalled == 0:
            timed_out = True
            process.send_signal(signal.SIGTERM)
            signalled = 1
        elif now > timeout + 15 and signalled == 1:
            process.kill()
            signalled = 2
        time.sleep(poll)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    steady = None
    if "start" in window_cpu and "end" in window_cpu:
        (t0, c0), (t1, c1) = window_cpu["start"], window_cpu["end"]
        steady = (c1 - c0) / (t1 - t0) if t1 > t0 else None
    return Measurement(
        exit_code=process.returncode,
        wall_seconds=wall,
        user_seconds=usage.ru_utime,
        sys_seconds=usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        steady_cores=steady,
        steady_window=(window_cpu["start"][0], window_cpu["end"][0])
        if steady is not None
        else None,
        rss_samples=samples,
        timed_out=timed_out,
    )


# -- the two peers ----------------------------------------------------------------------
def jalsa_event(clip: Path, seconds: int, destinations: Sequence[str]) -> str:
    """The event file for the benchmark job: one clip speaker, one slot, N RTMP targets.

    ``destinations`` are full RTMP URLs ``rtmp://host:port/app/stream``.
    """
    lines = [
        "[event]",
        'name = "bench"',
        'on_end = "stop"',
        "",
        "[program]",
        f"width = {WIDTH}",
        f"height = {HEIGHT}",
        f"fps = {FPS}",
        f"video_bitrate_kbps = {VIDEO_KBPS}",
        f"audio_bitrate_kbps = {AUDIO_KBPS}",
        f"keyframe_seconds = {KEYFRAME_SECONDS}",
        f'preset = "{PRESET}"',
        "",
        "[[speakers]]",
        'id = "clip"',
        'name = "Bench Clip"',
        f"source = {json.dumps(str(clip))}",
        "",
        "[[rundown]]",
        'speaker = "clip"',
        f'duration = "{seconds}s"',
    ]
    for index, url in enumerate(destinations, 1):
        app_url, _, stream = url.rpartition("/")
        lines += [
            "",
            "[[destinations]]",
            f'name = "d{index}"',
            'platform = "custom"',
            f'url = "{app_url}"',
            f'key = "{stream}"',
        ]
    return "\n".join(lines) + "\n"


def destination_lines(urls: Sequence[str]) -> list[str]:
    """``[[destinations]]`` tables (TOML lines) for RTMP URLs ``rtmp://host:port/app/stream``,
    named d0, d1, …"""
    lines: list[str] = []
    for index, url in enumerate(urls):
        app_url, _, stream = url.rpartition("/")
        lines += ["[[destinations]]", f'name = "d{index}"', 'platform = "custom"']
        lines += [f'url = "{app_url}"', f'key = "{stream}"']
    return lines


def jalsa_argv(event: Path, state: Path, http_port: int | None = None) -> list[str]:
    return [
        sys.executable, "-m", "orchestrator.cli", "run", str(event),
        "--http", f"127.0.0.1:{http_port or free_port()}",
        "--metrics", f"127.0.0.1:{free_port()}",
        "--state", str(state),
    ]  # fmt: skip


class StateWatcher(threading.Thread):
    """Polls jalsa's ``/api/state`` while it runs; keeps the last answer while on air.

    jalsa's own view (frames produced, late re-anchors of the frame clock, per-destination
    drops and reconnects) explains a run whose recording came out short.
    """

    def __init__(self, http_port: int, state_dir: Path, every: float = 1.0) -> None:
        super().__init__(name="state-watcher", daemon=True)
        self.url = f"http://127.0.0.1:{http_port}/api/state"
        self.token_path = state_dir / "operator-token"
        self.every = every
        self.last: dict[str, Any] | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every):
            try:
                token = self.token_path.read_text().strip()
                request = urllib.request.Request(self.url)
                request.add_header("Authorization", f"Bearer {token}")
                with urllib.request.urlopen(request, timeout=2) as response:
                    state = json.loads(response.read())
            except (OSError, ValueError):
                continue
            if state.get("state") != "ended" or self.last is None:
                self.last = state

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def summary(self) -> dict[str, Any] | None:
        if self.last is None:
            return None
        program = self.last.get("program", {})
        return {
            "show_state": self.last.get("state"),
            "program_frames": program.get("frames"),
            "program_seconds": program.get("seconds"),
            "late_resets": program.get("late_resets"),
            "destinations": {
                d.get("name"): {
                    k: d.get(k)
                    for k in (
                        "state",
                        "sent_packets",
                        "reconnects",
                        "dropped_video",
                        "dropped_audio",
                        "lag_seconds",
                        "last_error",
                    )
                }
                for d in self.last.get("destinations", [])
            },
        }


def ffmpeg_argv(clip: Path, seconds: int, destinations: Sequence[str]) -> list[str]:
    """The same job by ffmpeg's CLI: one encode, ``-f tee`` fan-out to every destination."""
    tee = "|".join(
        f"[f=flv:onfail=ignore:flvflags=no_duration_filesize]{url}" for url in destinations
    )
    gop = FPS * KEYFRAME_SECONDS
    return [
        FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
        "-re", "-i", str(clip), "-t", str(seconds),
        "-vf", f"scale={WIDTH}:{HEIGHT}",
        "-c:v", "libx264", "-preset", PRESET, "-tune", "zerolatency",
        "-b:v", f"{VIDEO_KBPS}k", "-maxrate", f"{VIDEO_KBPS}k", "-bufsize", f"{2 * VIDEO_KBPS}k",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ar", "48000", "-ac", "2",
        "-f", "tee", "-map", "0:v", "-map", "0:a", tee,
    ]  # fmt: skip


# -- reporting --------------------------------------------------------------------------
def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def machine() -> dict[str, object]:
    load = os.getloadavg()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    try:
        import av  # the one jalsa encodes with (bundles its own FFmpeg and x264)

        versions["pyav"] = av.__version__
        versions["pyav_libavcodec"] = ".".join(map(str, av.library_versions["libavcodec"]))
    except ImportError:
        pass
    ff = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True, check=False)
    versions["ffmpeg_cli"] = ff.stdout.split("\n", 1)[0]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "loadavg_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "kernel": platform.release(),
        **versions,
    }


def tree() -> dict[str, object]:
    """Which jalsa code was measured: HEAD, plus a digest of the working tree's sources.

    Others edit the tree while benchmarks run; the digest tells two runs' code apart.
    """
    digest = hashlib.sha256()
    newest = 0.0
    for package in ("orchestrator", "relays", "monitoring"):
        for path in sorted((REPO / package).rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
            newest = max(newest, path.stat().st_mtime)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "orchestrator", "relays", "monitoring"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return {
        "git_head": head,
        "changed_source_files": len(status),
        "sources_sha256": digest.hexdigest()[:16],
        "newest_source_mtime": datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds"),
    }


def write_json(name: str, payload: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[call-overload]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def workdir(prefix: str) -> Path:
    """A scratch folder that nginx's worker (user nobody) can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
