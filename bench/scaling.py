"""How jalsa's cost grows: with destinations, with speakers waiting, and with hours.

One command per curve; each prints a Markdown table, writes the raw figures to
``bench/results/scaling-<curve>-<UTC time>.json`` and an SVG chart (``--svg PATH``):

- ``destinations``: CPU s per media s and peak RSS against 1, 2, 4, 8, 16, 32 RTMP sinks
  (streams on one nginx-rtmp), jalsa beside ``ffmpeg -f tee`` on the benchmark job of
  benchlib (1080p clip → 720p30 x264 veryfast, encoded once). Runs interleaved, the order
  reversed every other count. Reported: the marginal CPU per destination (least squares
  over the counts) and the same slope over the lower and upper half of the counts: a
  super-linear term shows as an upper slope well above the lower one. Every sink's
  recording is read back with ffprobe: a run counts only if every sink got ≥ 90 % of it.
- ``speakers``: jalsa's cores against 0, 4, 8, 16 live speakers waiting in the green room
  (aiortc WHIP senders in this process, 320x240 15 fps VP8 + Opus each; not counted) while
  a test-pattern host is on air; one jalsa run, speakers added step by step, each level
  measured over ``--seconds`` from /proc/PID/stat.
- ``endurance``: one jalsa run of ``--minutes`` (60 for the real thing) with
  ``--destinations`` RTMP sinks (8) and a Matroska recording; a rundown cycling through
  clips and a pulled RTMP source (an ffmpeg pusher to nginx) that is killed every
  ``--outage-every`` s (600) and restarted ``--outage-seconds`` (20) later; two live
  speakers joining and leaving every ``--speakers-every`` s (300). Per ``--every`` s
  (60): RSS, open fds, threads and CPU.
  Reported: growth of each from the sample at ``--settle`` s (600) to the last (target
  < 5 %), the recording's largest video gap (≤ 0.2 s) and every destination's media/wall
  (≥ 0.99).

    python bench/scaling.py destinations [--counts 1,2,4,8,16,32] [--seconds 30] [--repeats 1]
    python bench/scaling.py speakers [--counts 0,4,8,16] [--seconds 20]
    python bench/scaling.py endurance [--minutes 60] [--every 60] [--settle 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    FFMPEG,
    NginxSink,
    StateWatcher,
    _proc_cpu_seconds,
    _proc_rss_mb,
    destination_lines,
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
from scaling_chart import Series, line_chart


# -- pure summaries -----------------------------------------------------------------------
def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x."""
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def halves(points: Sequence[tuple[float, float]]) -> tuple[float | None, float | None]:
    """The slope over the lower half of the x values and over the upper half (sharing the
    middle one): a super-linear term makes the upper slope the larger."""
    ordered = sorted(points)
    middle = len(ordered) // 2
    return slope(ordered[: middle + 1]), slope(ordered[middle:])


def growth(samples: Sequence[tuple[float, float]], since: float) -> float | None:
    """Relative change from the first sample at or after ``since`` to the last one."""
    later = [(t, v) for t, v in samples if t >= since]
    if len(later) < 2 or later[0][1] == 0:
        return None
    return (later[-1][1] - later[0][1]) / later[0][1]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


# -- destinations ---------------------------------------------------------------------------
def destinations(args: argparse.Namespace) -> int:
    counts = [int(c) for c in args.counts.split(",")]
    clip = make_clip(args.seconds + 2)
    work = workdir("cost-scaling-")
    runs: list[dict[str, Any]] = []
    window = (max(0.3 * args.seconds, 8.0), 0.9 * args.seconds)
    with NginxSink(work / "nginx") as sink:
        for repeat in range(args.repeats):
            for i, n in enumerate(counts):
                peers = ["ffmpeg", "jalsa"] if (i + repeat) % 2 == 0 else ["jalsa", "ffmpeg"]
                for peer in peers:
                    tag = f"{peer}-n{n}-r{repeat}"
                    urls = [sink.url(stream=f"{tag}-{k}") for k in range(n)]
                    watcher = None
                    if peer == "ffmpeg":
                        argv = ffmpeg_argv(clip, args.seconds, urls)
                    else:
                        event = work / f"{tag}.toml"
                        event.write_text(jalsa_event(clip, args.seconds, urls))
                        port = free_port()
                        argv = jalsa_argv(event, work / f"{tag}-state", port)
                        # jalsa's own view explains a short run: late frames, drops.
                        watcher = StateWatcher(port, work / f"{tag}-state", every=2.0)
                        watcher.start()
                    m = run_measured(
                        argv,
                        log_path=work / f"{tag}.log",
                        timeout=args.seconds + 60,
                        steady_window=window,
                    )
                    if watcher is not None:
                        watcher.stop()
                    got = [received(sink.recording(f"{tag}-{k}")).video_seconds for k in range(n)]
                    least = min(got) if got else 0.0
                    ok = m.exit_code == 0 and least >= 0.9 * args.seconds
                    runs.append(
                        {
                            "peer": peer,
                            "n": n,
                            "repeat": repeat,
                            "ok": ok,
                            "cpu_seconds": m.cpu_seconds,
                            "media_seconds": least,
                            "cpu_per_media_second": m.cpu_seconds / least if least else None,
                            "steady_cores": m.steady_cores,
                            "peak_rss_mb": m.peak_rss_mb,
                            "wall_seconds": m.wall_seconds,
                            "loadavg": os.getloadavg()[0],
                            "media_per_sink": got,
                            "jalsa_state": watcher.summary() if watcher else None,
                        }
                    )
                    log(
                        f"{peer} N={n}: {'ok' if ok else 'SHORT'} {m.cpu_seconds:.1f} CPU s, "
                        f"media {least:.1f} s, steady {_fmt(m.steady_cores)} cores, "
                        f"RSS {m.peak_rss_mb:.0f} MB"
                    )
                    for k in range(n):  # 32 recordings of a minute add up
                        sink.recording(f"{tag}-{k}").unlink(missing_ok=True)
    table: dict[str, dict[int, dict[str, float | None]]] = {}
    for peer in ("ffmpeg", "jalsa"):
        table[peer] = {}
        for n in counts:
            # Every run: a short one (the program starved by the machine's other load,
            # see media s) is marked in the table, not left out of the curve.
            ok = [r for r in runs if r["peer"] == peer and r["n"] == n]
            table[peer][n] = {
                "least_media_seconds": median([r["media_seconds"] for r in ok]),
                "cpu_per_media_second": median([r["cpu_per_media_second"] for r in ok]),
                "steady_cores": median([r["steady_cores"] for r in ok]),
                "peak_rss_mb": median([r["peak_rss_mb"] for r in ok]),
            }
    print(
        "| N | ffmpeg CPU s / media s | jalsa CPU s / media s | jalsa/ffmpeg | "
        "ffmpeg steady cores | jalsa steady cores | ffmpeg RSS MB | jalsa RSS MB | "
        "least media s (ffmpeg / jalsa) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in counts:
        f, j = table["ffmpeg"][n], table["jalsa"][n]
        fc, jc = f["cpu_per_media_second"], j["cpu_per_media_second"]
        ratio = jc / fc if fc and jc else None
        print(
            f"| {n} | {_fmt(fc)} | {_fmt(jc)} | {_fmt(ratio, 2)} | {_fmt(f['steady_cores'])} | "
            f"{_fmt(j['steady_cores'])} | {_fmt(f['peak_rss_mb'], 0)} | "
            f"{_fmt(j['peak_rss_mb'], 0)} | "
            f"{_fmt(f['least_media_seconds'], 1)} / {_fmt(j['least_media_seconds'], 1)} |"
        )
    marginal: dict[str, dict[str, float | None]] = {}
    for peer in ("ffmpeg", "jalsa"):
        for figure in ("steady_cores", "peak_rss_mb"):
            points = [(float(n), v) for n in counts if (v := table[peer][n][figure]) is not None]
            low, high = halves(points)
            marginal[f"{peer} {figure}"] = {"slope": slope(points), "lower": low, "upper": high}
    print("\n| per extra destination | slope (all counts) | lower half | upper half |")
    print("| --- | --- | --- | --- |")
    for name, m in marginal.items():
        print(f"| {name} | {_fmt(m['slope'], 4)} | {_fmt(m['lower'], 4)} | {_fmt(m['upper'], 4)} |")
    if args.svg:
        series = [
            Series(
                f"{peer} steady cores", [(float(n), table[peer][n]["steady_cores"]) for n in counts]
            )
            for peer in ("ffmpeg", "jalsa")
        ]
        line_chart(
            args.svg,
            series,
            x_label="RTMP destinations",
            y_label="CPU cores (steady)",
            title="CPU against destinations (jalsa vs ffmpeg -f tee)",
            log_x=True,
        )
        log(f"chart: {args.svg}")
    path = write_json(
        "scaling-destinations",
        {
            "machine": machine(),
            "tree": tree(),
            "args": vars(args) | {"svg": str(args.svg)},
            "runs": runs,
            "table": table,
            "marginal": marginal,
        },
    )
    print(f"raw figures: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["ok"] for r in runs) else 1


async def _publish_all(publish: Any, urls: list[str]) -> list[Any]:
    """Connect a WHIP sender to each URL at once."""
    return list(await asyncio.gather(*(publish(url) for url in urls)))


# -- speakers waiting --------------------------------------------------------------------------
def speakers(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from jalsa_run import JalsaRun
    from speaker_latency import _publish, cores, event_file, links
    from whip_client import WhipClient

    counts = sorted(int(c) for c in args.counts.split(","))
    ids = [f"g{i}" for i in range(1, max(counts) + 1)]
    work = workdir("cost-speakers-")
    levels: list[dict[str, Any]] = []
    with NginxSink(work / "nginx") as sink:
        event = work / "green.toml"
        event_file(event, ids, sink.url("live", "green"), host=True)
        with JalsaRun(event, work / "green-state") as run:
            run.wait_ready()
            assert run.process is not None
            pid = run.process.pid
            whip = links(run)
            loop = asyncio.new_event_loop()
            pump = threading.Thread(target=loop.run_forever, daemon=True)
            pump.start()
            clients: list[WhipClient] = []
            try:
                time.sleep(3)  # past the start-up and the host's lower third
                for n in counts:
                    more = ids[len(clients) : n]
                    started = asyncio.run_coroutine_threadsafe(
                        _publish_all(_publish, [whip[s] for s in more]), loop
                    )
                    clients += started.result(60)
                    deadline = time.monotonic() + 30
                    while not all(
                        run.metric("jalsa_speaker_connected", speaker=s) == 1 for s in ids[:n]
                    ):
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"not all {n} connected\n{run.logs[-2000:]}")
                        time.sleep(0.2)
                    time.sleep(2)  # past the connections' set-up
                    level = {
                        "waiting": n,
                        "cores": cores(pid, args.seconds),
                        "rss_mb": _proc_rss_mb(pid),
                        "loadavg": os.getloadavg()[0],
                    }
                    levels.append(level)
                    log(f"{n} waiting: {level['cores']:.3f} cores, RSS {level['rss_mb']:.0f} MB")
            finally:
                for client in clients:
                    asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
                loop.call_soon_threadsafe(loop.stop)
                pump.join(5)
            run.stop()
    base = levels[0]["cores"]
    print("| speakers waiting | jalsa cores | added over 0 | per waiting speaker | RSS MB |")
    print("| --- | --- | --- | --- | --- |")
    for level in levels:
        n, added = level["waiting"], level["cores"] - base
        per = added / n if n else None
        print(
            f"| {n} | {level['cores']:.3f} | {added:+.3f} | {_fmt(per)} | {level['rss_mb']:.0f} |"
        )
    points = [(float(level["waiting"]), level["cores"]) for level in levels]
    low, high = halves(points)
    print(
        f"\nslope {_fmt(slope(points), 4)} cores per waiting speaker "
        f"(lower half {_fmt(low, 4)}, upper half {_fmt(high, 4)})"
    )
    if args.svg:
        line_chart(
            args.svg,
            [Series("jalsa cores", points)],
            x_label="live speakers waiting",
            y_label="CPU cores",
            title="CPU against speakers in the green room",
        )
    path = write_json(
        "scaling-speakers",
        {
            "machine": machine(),
            "tree": tree(),
            "levels": levels,
            "client": "aiortc WhipClient, 320x240 15 fps VP8 + Opus, in the bench process",
        },
    )
    print(f"raw figures: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


# -- endurance -------------------------------------------------------------------------------
def _fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _threads(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


class Pusher:
    """An encoder in the field: ffmpeg pushing a test pattern to nginx, killed and
    restarted on demand (the pulled source that dies and returns)."""

    def __init__(self, url: str, log_path: Path) -> None:
        self.url, self.log_path = url, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                FFMPEG,
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=660:sample_rate=48000",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-g",
                "60",
                "-b:v",
                "800k",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-f",
                "flv",
                self.url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("ab"),
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _endurance_event(
    path: Path, clip: Path, pulled: str, sinks: list[str], recording: Path, live: list[str]
) -> None:
    lines = [
        "[event]",
        'name = "endurance"',
        "[program]",
        "width = 1280",
        "height = 720",
        "fps = 30",
        'preset = "veryfast"',
    ]
    lines += ["[[speakers]]", 'id = "clip"', 'name = "Clip"', f"source = {json.dumps(str(clip))}"]
    lines += ["[[speakers]]", 'id = "field"', 'name = "Field"', f"source = {json.dumps(pulled)}"]
    for sid in live:
        lines += ["[[speakers]]", f'id = "{sid}"', f'name = "Live {sid}"']
    # A rundown cycling: clip, the pulled source, each live speaker, 45 s each; looped by
    # making it long (the run is stopped by the bench).
    items = ["clip", "field", *live]
    for k in range(400):
        lines += ["[[rundown]]", f'speaker = "{items[k % len(items)]}"', 'duration = "45s"']
    lines += destination_lines(sinks)
    lines += [
        "[[destinations]]",
        'name = "rec"',
        'platform = "custom"',
        f"url = {json.dumps(str(recording))}",
    ]
    path.write_text("\n".join(lines) + "\n")


def endurance(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from jalsa_run import JalsaRun
    from speaker_latency import _publish, links
    from whip_client import WhipClient

    seconds = args.minutes * 60
    clip = make_clip(30)
    work = workdir("cost-endurance-")
    samples: list[dict[str, Any]] = []
    live = ["s1", "s2"]
    with NginxSink(work / "nginx") as sink:
        sinks = [sink.url(stream=f"d{k}") for k in range(args.destinations)]
        recording = work / "recordings" / "endurance.mkv"
        pusher = Pusher(sink.url(stream="field"), work / "pusher.log")
        pusher.start()
        event = work / "endurance.toml"
        _endurance_event(event, clip, sink.url(stream="field"), sinks, recording, live)
        loop = asyncio.new_event_loop()
        pump = threading.Thread(target=loop.run_forever, daemon=True)
        pump.start()
        clients: list[WhipClient] = []
        with JalsaRun(event, work / "state") as run:
            run.wait_ready()
            assert run.process is not None
            pid = run.process.pid
            whip = links(run)
            started = time.monotonic()
            next_sample, next_outage, next_speakers = 0.0, args.outage_every, 0.0
            last_cpu: float | None = None  # the first sample has no rate yet
            last_t = 0.0
            back_at: float | None = None  # when the killed pusher comes back
            while (now := time.monotonic() - started) < seconds:
                if now >= next_speakers:  # join, or leave, in turn
                    if clients:
                        for client in clients:
                            asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
                        clients = []
                    else:
                        clients = asyncio.run_coroutine_threadsafe(
                            _publish_all(_publish, [whip[s] for s in live]), loop
                        ).result(60)
                    next_speakers += args.speakers_every
                if now >= next_outage:
                    pusher.kill()
                    log(f"pulled source killed; back in {args.outage_seconds:g} s")
                    back_at = now + args.outage_seconds
                    next_outage += args.outage_every
                if back_at is not None and now >= back_at:
                    pusher.start()
                    back_at = None
                if now >= next_sample:
                    cpu = _proc_cpu_seconds(pid)
                    rate = (
                        (cpu - last_cpu) / (now - last_t)
                        if cpu is not None and last_cpu is not None and now > last_t
                        else None
                    )
                    sample = {
                        "t": round(now, 1),
                        "rss_mb": _proc_rss_mb(pid),
                        "fds": _fds(pid),
                        "threads": _threads(pid),
                        "cores": rate,
                        "speakers": len(clients),
                    }
                    samples.append(sample)
                    last_cpu, last_t = cpu, now
                    log(
                        f"t={now:.0f}s RSS {sample['rss_mb']} MB, fds {sample['fds']}, "
                        f"threads {sample['threads']}, cores {_fmt(rate)}"
                    )
                    next_sample += args.every
                time.sleep(0.5)
            for client in clients:
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
            wall = time.monotonic() - started
            run.stop()
        loop.call_soon_threadsafe(loop.stop)
        pump.join(5)
        pusher.kill()
        got = {f"d{k}": received(sink.recording(f"d{k}")) for k in range(args.destinations)}
        recorded = sorted((work / "recordings").glob("endurance*.mkv"))
        rec = received(recorded[0]) if recorded else None
    figures: dict[str, Any] = {}
    for key in ("rss_mb", "fds", "threads", "cores"):
        series = [(s["t"], s[key]) for s in samples if s[key] is not None and s["t"] > 0]
        figures[key] = growth(series, args.settle)
    ratios = {name: r.video_seconds / wall for name, r in got.items()}
    print("| t s | RSS MB | open fds | threads | cores | live speakers |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in samples:
        print(
            f"| {s['t']:.0f} | {_fmt(s['rss_mb'], 1)} | {s['fds']} | {s['threads']} | "
            f"{_fmt(s['cores'])} | {s['speakers']} |"
        )
    print("\n| growth after the settle | RSS | fds | threads | cores |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| from t = {args.settle:.0f} s | "
        + " | ".join(
            _fmt(figures[k] and 100 * figures[k], 1) + " %"
            for k in ("rss_mb", "fds", "threads", "cores")
        )
        + " |"
    )
    worst = min(ratios.values()) if ratios else None
    print(
        f"\nleast media/wall over the {len(ratios)} RTMP destinations: {_fmt(worst)}; "
        f"the recording's largest video gap: {_fmt(rec.largest_video_gap if rec else None)} s"
    )
    if args.svg:
        line_chart(
            args.svg,
            [Series("RSS MB", [(s["t"] / 60, s["rss_mb"]) for s in samples])],
            x_label="minutes",
            y_label="RSS MB",
            title="jalsa's RSS over the run",
        )
    path = write_json(
        "scaling-endurance",
        {
            "machine": machine(),
            "tree": tree(),
            "args": vars(args) | {"svg": str(args.svg)},
            "samples": samples,
            "growth": figures,
            "media_over_wall": ratios,
            "wall": wall,
            "recording": rec,
        },
    )
    print(f"raw figures: {path}")
    shutil.rmtree(work, ignore_errors=True)
    ok = worst is not None and worst >= 0.99 and rec is not None and rec.largest_video_gap <= 0.2
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    curves = parser.add_subparsers(dest="curve", required=True)
    d = curves.add_parser("destinations")
    d.add_argument("--counts", default="1,2,4,8,16,32")
    d.add_argument("--seconds", type=int, default=30)
    d.add_argument("--repeats", type=int, default=1)
    s = curves.add_parser("speakers")
    s.add_argument("--counts", default="0,4,8,16")
    s.add_argument("--seconds", type=float, default=20)
    e = curves.add_parser("endurance")
    e.add_argument("--minutes", type=float, default=60)
    e.add_argument("--destinations", type=int, default=8)
    e.add_argument("--every", type=float, default=60, help="seconds between samples")
    e.add_argument("--settle", type=float, default=600, help="growth is measured from here")
    e.add_argument("--outage-every", type=float, default=600)
    e.add_argument("--outage-seconds", type=float, default=20, help="how long it stays dead")
    e.add_argument("--speakers-every", type=float, default=300)
    for p in (d, s, e):
        p.add_argument("--svg", type=Path, help="write the chart here")
    args = parser.parse_args(argv)
    return {"destinations": destinations, "speakers": speakers, "endurance": endurance}[args.curve](
        args
    )


if __name__ == "__main__":
    sys.exit(main())
