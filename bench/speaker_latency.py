"""Speakers: (a) glass-to-RTMP latency added by jalsa, (b) CPU of a full green room.

(a) A WHIP client (aiortc, ``tests/whip_client.py``'s machinery) sends 640x360 30 fps
black, and every ``--every`` seconds switches to white (then back to black, alternating);
the instant the first frame of the new colour leaves the track's ``recv()`` is T0. jalsa
(the live speaker is the only rundown slot; program 1280x720 30 fps, veryfast, one RTMP
destination) pushes to nginx-rtmp; a reader pulls the stream back with PyAV
(``fflags=nobuffer``, ``flags=low_delay``, small probesize, one decoder thread) and notes
the wall-clock time each switch is first visible (mean luma of the centre crosses 128).

The same loop WITHOUT jalsa: a PyAV x264 encoder (veryfast, zerolatency, 1280x720 30 fps)
pushes the same black/white frames straight to nginx; the same reader. Its latency is
the encoder + RTMP + nginx + reader path; jalsa's added latency is
median(jalsa) − median(direct).

(b) One jalsa run: a testsrc host on air (10 min slot), four live speakers with later
slots. jalsa's CPU (cores, /proc/PID/stat) over ``--cpu-seconds`` with nobody connected,
then with the four connected as WHIP clients (320x240 15 fps each) in the green room.
The WHIP clients run in this process, not in jalsa's, so they are not counted.

    python bench/speaker_latency.py [--switches 6] [--every 2] [--cpu-seconds 20] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import shutil
import statistics
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import benchlib
from aiortc import MediaStreamTrack
from benchlib import FPS, HEIGHT, PRESET, WIDTH, NginxSink, log
from jalsa_run import JalsaRun, jalsa
from whip_client import WhipClient

THRESHOLD = 128.0
SEND_SIZE = (640, 360)


# -- the switching picture ----------------------------------------------------------------
class Flasher:
    """Black or white; ``request(white)`` flips it, the first frame made after is T0."""

    def __init__(self) -> None:
        self.white = False
        self._pending: bool | None = None
        self.switches: list[tuple[float, bool]] = []  # (T0 wall clock, now white)
        self._lock = threading.Lock()

    def request(self, white: bool) -> None:
        with self._lock:
            self._pending = white

    def colour_now(self) -> bool:
        """Called as a frame is made: applies a pending switch and stamps T0."""
        with self._lock:
            if self._pending is not None and self._pending != self.white:
                self.white = self._pending
                self.switches.append((time.time(), self.white))
            self._pending = None
            return self.white


def _yuv(size: tuple[int, int], white: bool) -> np.ndarray:
    width, height = size
    rgb = np.full((height, width, 3), 255 if white else 0, dtype=np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()


class FlashTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, flasher: Flasher, fps: int = FPS, size: tuple[int, int] = SEND_SIZE):
        super().__init__()
        self.flasher = flasher
        self._planes = {False: _yuv(size, False), True: _yuv(size, True)}
        self._fps = fps
        self._index = 0
        self._start = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        self._index += 1
        await asyncio.sleep(max(0.0, self._start + self._index / self._fps - time.monotonic()))
        white = self.flasher.colour_now()
        frame = av.VideoFrame.from_ndarray(self._planes[white], format="yuv420p")
        frame.pts = self._index * 90000 // self._fps
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


# -- the reader -----------------------------------------------------------------------------
class Reader(threading.Thread):
    """Pulls the RTMP stream back; notes (wall clock, white?) at every luma crossing."""

    def __init__(self, url: str) -> None:
        super().__init__(name="reader", daemon=True)
        self.url = url
        self.frames = 0
        self.transitions: list[tuple[float, bool]] = []
        self.error: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        options = {
            "fflags": "nobuffer",
            "flags": "low_delay",
            "probesize": "32768",
            "analyzeduration": "0",
            "rtmp_live": "live",
            "rw_timeout": "5000000",
        }
        deadline = time.monotonic() + 30
        while not self._halt.is_set() and time.monotonic() < deadline:
            try:
                container = av.open(self.url, options=options, timeout=5)
                break
            except av.FFmpegError as error:
                self.error = str(error)
                time.sleep(0.3)
        else:
            return
        try:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
            stream.codec_context.flags |= av.codec.context.Flags.low_delay
            white: bool | None = None
            for packet in container.demux(stream):
                if self._halt.is_set():
                    break
                for frame in packet.decode():
                    now = time.time()
                    self.frames += 1
                    luma = frame.to_ndarray(format="gray")
                    h, w = luma.shape
                    mean = float(luma[h * 2 // 5 : h * 3 // 5, w * 2 // 5 : w * 3 // 5].mean())
                    is_white = mean > THRESHOLD
                    if is_white != white:
                        white = is_white
                        self.transitions.append((now, is_white))
        except (av.FFmpegError, OSError) as error:
            self.error = str(error)
        finally:
            container.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(8)


def latencies(switches: list[tuple[float, bool]], seen: list[tuple[float, bool]]) -> list[float]:
    """For each switch, the first crossing to its colour after T0 (before the next switch)."""
    out = []
    for i, (t0, white) in enumerate(switches):
        until = switches[i + 1][0] if i + 1 < len(switches) else float("inf")
        hit = next((t for t, w in seen if w == white and t0 <= t < until), None)
        if hit is not None:
            out.append(hit - t0)
    return out


def summary(values: list[float], expected: int) -> dict[str, Any]:
    return {
        "switches": expected,
        "seen": len(values),
        "median_ms": round(statistics.median(values) * 1000, 1) if values else None,
        "max_ms": round(max(values) * 1000, 1) if values else None,
        "min_ms": round(min(values) * 1000, 1) if values else None,
        "all_ms": [round(v * 1000, 1) for v in values],
    }


def flash(flasher: Flasher, switches: int, every: float) -> None:
    for i in range(switches):
        time.sleep(every)
        flasher.request(i % 2 == 0)
    time.sleep(every)  # let the last one arrive


def _wait_frames(reader: Reader, count: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while reader.frames < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: the reader saw {reader.frames} frames ({reader.error})")
        time.sleep(0.1)


# -- (a) through jalsa ----------------------------------------------------------------------
def event_file(path: Path, speakers: list[str], rtmp: str, host: bool) -> None:
    app_url, _, stream = rtmp.rpartition("/")
    text = f"""
        [event]
        name = "Speaker bench"
        [program]
        width = {WIDTH}
        height = {HEIGHT}
        fps = {FPS}
        video_bitrate_kbps = {benchlib.VIDEO_KBPS}
        keyframe_seconds = {benchlib.KEYFRAME_SECONDS}
        preset = "{PRESET}"
        """
    if host:
        text += """
        [[speakers]]
        id = "host"
        name = "Host"
        source = "testsrc"
        [[rundown]]
        speaker = "host"
        duration = "10m"
        """
    for sid in speakers:
        text += f"""
        [[speakers]]
        id = "{sid}"
        name = "Speaker {sid}"
        [[rundown]]
        speaker = "{sid}"
        duration = "10m"
        """
    text += f"""
        [[destinations]]
        name = "nginx"
        platform = "custom"
        url = "{app_url}"
        key = "{stream}"
        """
    path.write_text(textwrap.dedent(text))


def links(run: JalsaRun) -> dict[str, str]:
    assert run.event is not None
    printed = jalsa(
        "links", str(run.event), "--base-url", f"http://127.0.0.1:{run.http_port}",
        "--state", str(run.state_dir),
    )  # fmt: skip
    if printed.returncode != 0:
        raise RuntimeError(printed.stderr)
    return {
        sid: url.replace("/join/", "/whip/")
        for sid, url in (line.split(" ", 1) for line in printed.stdout.splitlines())
    }


async def _publish(url: str, track: MediaStreamTrack | None = None) -> WhipClient:
    client = WhipClient(url, colour=(0, 200, 0) if track is None else None, audio=True)
    if track is not None:
        client.video = track  # type: ignore[assignment]
    status = await client.publish()
    if status != 201:
        raise RuntimeError(f"WHIP {url}: {status} {client.body}")
    return client


def through_jalsa(work: Path, sink: NginxSink, switches: int, every: float) -> dict[str, Any]:
    event = work / "latency.toml"
    event_file(event, ["live"], sink.url("live", "viajalsa"), host=False)
    flasher = Flasher()
    with JalsaRun(event, work / "latency-state") as run:
        run.wait_ready()
        url = links(run)["live"]
        loop = asyncio.new_event_loop()
        client = loop.run_until_complete(_publish(url, FlashTrack(flasher)))
        pump = threading.Thread(target=loop.run_forever, daemon=True)
        pump.start()
        try:
            deadline = time.monotonic() + 20
            while run.metric("jalsa_speaker_connected", speaker="live") != 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"speaker never connected\n{run.logs[-2000:]}")
                time.sleep(0.2)
            reader = Reader(sink.url("live", "viajalsa"))
            reader.start()
            _wait_frames(reader, 30, 20, "via jalsa")
            time.sleep(1.0)
            flash(flasher, switches, every)
            reader.stop()
        finally:
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            pump.join(5)
        run.stop()
    values = latencies(flasher.switches, reader.transitions)
    return {**summary(values, len(flasher.switches)), "reader_frames": reader.frames}


# -- (a) directly: PyAV x264 zerolatency → nginx ---------------------------------------------
def direct(sink: NginxSink, switches: int, every: float) -> dict[str, Any]:
    url = sink.url("live", "direct")
    flasher = Flasher()
    halt = threading.Event()
    planes = {False: _yuv((WIDTH, HEIGHT), False), True: _yuv((WIDTH, HEIGHT), True)}

    def encode() -> None:
        out = av.open(url, "w", format="flv", options={"flvflags": "no_duration_filesize"})
        gop = FPS * benchlib.KEYFRAME_SECONDS
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = benchlib.VIDEO_KBPS * 1000
        stream.codec_context.gop_size = gop
        stream.options = {
            "preset": PRESET, "tune": "zerolatency", "sc_threshold": "0",
            "keyint_min": str(gop),
        }  # fmt: skip
        start = time.monotonic()
        index = 0
        while not halt.is_set():
            time.sleep(max(0.0, start + index / FPS - time.monotonic()))
            frame = av.VideoFrame.from_ndarray(planes[flasher.colour_now()], format="yuv420p")
            frame.pts = index
            frame.time_base = fractions.Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
            index += 1
        out.close()

    encoder = threading.Thread(target=encode, name="direct-encoder", daemon=True)
    encoder.start()
    time.sleep(0.5)
    reader = Reader(url)
    reader.start()
    _wait_frames(reader, 30, 20, "direct")
    time.sleep(1.0)
    flash(flasher, switches, every)
    reader.stop()
    halt.set()
    encoder.join(5)
    values = latencies(flasher.switches, reader.transitions)
    return {**summary(values, len(flasher.switches)), "reader_frames": reader.frames}


# -- (b) the green room ------------------------------------------------------------------------
def cores(pid: int, seconds: float) -> float:
    c0, t0 = benchlib._proc_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = benchlib._proc_cpu_seconds(pid), time.monotonic()
    assert c0 is not None and c1 is not None
    return (c1 - c0) / (t1 - t0)


def green_room(work: Path, sink: NginxSink, seconds: float) -> dict[str, Any]:
    event = work / "green.toml"
    ids = [f"g{i}" for i in range(1, 5)]
    event_file(event, ids, sink.url("live", "green"), host=True)
    with JalsaRun(event, work / "green-state") as run:
        run.wait_ready()
        assert run.process is not None
        pid = run.process.pid
        whip = links(run)
        time.sleep(3)  # past the start-up and the host's first seconds
        idle = cores(pid, seconds)
        log(f"green room: nobody connected {idle:.3f} cores")
        loop = asyncio.new_event_loop()

        async def publish_all() -> list[WhipClient]:
            return list(await asyncio.gather(*(_publish(whip[s]) for s in ids)))

        clients = loop.run_until_complete(publish_all())
        pump = threading.Thread(target=loop.run_forever, daemon=True)
        pump.start()
        try:
            deadline = time.monotonic() + 20
            while not all(run.metric("jalsa_speaker_connected", speaker=s) == 1 for s in ids):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not all connected\n{run.logs[-2000:]}")
                time.sleep(0.2)
            time.sleep(2)
            connected = cores(pid, seconds)
            log(f"green room: four connected {connected:.3f} cores")
            on_air = run.metric("jalsa_on_air", speaker="host")
        finally:
            for client in clients:
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            pump.join(5)
        run.stop()
    return {
        "window_seconds": seconds,
        "idle_cores": round(idle, 3),
        "four_waiting_cores": round(connected, 3),
        "added_cores": round(connected - idle, 3),
        "added_cores_per_speaker": round((connected - idle) / 4, 3),
        "host_on_air_metric": on_air,
        "client_video": "320x240 15 fps VP8 + Opus tone (aiortc, in the bench process)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--switches", type=int, default=6)
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    parser.add_argument("--skip", default="", help="comma list of: jalsa,direct,green")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = benchlib.workdir("jalsa-speaker-bench-")
    results: dict[str, Any] = {"machine": benchlib.machine(), "tree_start": benchlib.tree()}
    results["settings"] = {
        "switches": args.switches, "every_s": args.every, "threshold_luma": THRESHOLD,
        "program": f"{WIDTH}x{HEIGHT} {FPS} fps {PRESET}", "speaker_send": "640x360 30 fps",
    }  # fmt: skip
    started = time.monotonic()
    try:
        with NginxSink(work / "nginx") as sink:
            if "direct" not in skip:
                log("direct: PyAV x264 zerolatency → nginx → reader")
                results["direct"] = direct(sink, args.switches, args.every)
                log(f"direct: {results['direct']}")
            if "jalsa" not in skip:
                log("via jalsa: WHIP → jalsa → nginx → reader")
                results["jalsa"] = through_jalsa(work, sink, args.switches, args.every)
                log(f"via jalsa: {results['jalsa']}")
            if "green" not in skip:
                log("green room CPU")
                results["green_room"] = green_room(work, sink, args.cpu_seconds)
    finally:
        results["wall_seconds"] = round(time.monotonic() - started, 1)
        results["tree_end"] = benchlib.tree()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    d, j = results.get("direct", {}), results.get("jalsa", {})
    added = (
        round(j["median_ms"] - d["median_ms"], 1)
        if j.get("median_ms") is not None and d.get("median_ms") is not None
        else None
    )
    results["jalsa_added_median_ms"] = added
    path = benchlib.write_json("speaker_latency", results)
    print("| path | switches seen | median ms | max ms |")
    print("| --- | --- | --- | --- |")
    for name, row in (
        ("direct (x264 zerolatency → nginx → reader)", d),
        ("via jalsa (WHIP → jalsa → nginx → reader)", j),
    ):
        if row:
            seen = f"{row['seen']}/{row['switches']}"
            print(f"| {name} | {seen} | {row['median_ms']} | {row['max_ms']} |")
    print(f"\njalsa's added latency (median − median): **{added} ms** (target ≤ 400)\n")
    g = results.get("green_room")
    if g:
        print("| green room | jalsa cores |")
        print("| --- | --- |")
        print(f"| nobody connected | {g['idle_cores']} |")
        print(f"| four speakers waiting | {g['four_waiting_cores']} |")
        print(f"| added (per speaker) | {g['added_cores']} ({g['added_cores_per_speaker']}) |")
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
