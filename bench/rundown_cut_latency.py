"""From an operator's API call to the cut in the output: ``POST /api/rundown/next`` and
``POST /api/rundown/take``, timed in program frames.

A real ``jalsa run``: four test-pattern speakers (solid red, blue, green and yellow
cards: the colours of ``orchestrator/ingest/test_pattern.py``) in a rundown of 10-minute
items where no two neighbours share a colour; program 1280x720 30 fps, x264 veryfast
``tune=zerolatency`` (no lookahead, no B-frames: a frame's packet leaves the encoder
with that frame), one Matroska recording as the destination. Every ``--every`` seconds
one call, alternating: ``next`` (the following item, opened ahead), then ``take`` of an
item two or more ahead (not open yet: its source is opened by the call).

The program's frame clock is placed on the wall clock by reading its frame counter
from ``/api/state`` every 50 ms throughout (each read bounds when frame 0 was due; see
:class:`Clock`), and each call's wall time (just before the POST is sent) becomes a
position on it. Afterwards the recording is decoded with PyAV: each frame's colour (the
mean of a patch right of the centre, away from the name, the moving bar and the lower
third) is matched to the nearest speaker colour, and each call's cut is the first frame,
from the call on, of the colour of the speaker it put on air. The recording counts its
frames from the program's first (it is opened before the program starts; the summary
compares its length with the program's count).

Latency = from the call to the tick of the cut's first frame, in frames and in ms.
Target: ≤ 1 frame + one encoder delay (with zerolatency, the encode of that one frame:
no frames of delay).

    python bench/rundown_cut_latency.py [--calls 12] [--every 3] [--fps 30]
                                        [--size 1280x720] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import benchlib
from benchlib import log
from event_toml import event_toml, slot, speaker

# orchestrator/ingest/test_pattern.py's PALETTE, by speaker index
COLOURS = {
    "red": (200, 40, 40),
    "blue": (40, 90, 200),
    "green": (30, 150, 60),
    "gold": (190, 140, 20),
}
SPEAKERS = list(COLOURS)


class Jalsa:
    def __init__(self, work: Path, size: tuple[int, int], fps: int, items: int) -> None:
        self.work = work
        self.state = work / "state"
        self.http_port = benchlib.free_port()
        event = work / "event.toml"
        order = [SPEAKERS[i % len(SPEAKERS)] for i in range(items)]
        event.write_text(
            event_toml(
                "Cut Latency",
                event={"on_end": "slate"},
                program={"width": size[0], "height": size[1], "fps": fps, "preset": "veryfast"},
                speakers=[speaker(s, s.capitalize(), source="testsrc") for s in SPEAKERS],
                rundown=[slot(s, "10m") for s in order],
                destinations=[
                    {"name": "recording", "platform": "custom", "url": "recordings/cut.mkv"}
                ],
            )
        )
        argv = benchlib.jalsa_argv(event, self.state, self.http_port)
        self.log_path = work / "jalsa.log"
        self.process = subprocess.Popen(
            argv, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, cwd=work
        )
        self.token = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jalsa exited:\n{self.log_path.read_text()}")
            try:
                self.token = (self.state / "operator-token").read_text().strip()
                status, state = self.call("GET", "/api/state")
                if status == 200 and state["program"]["frames"] > 0:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("jalsa was not ready within 60 s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def recording(self) -> Path:
        return next((self.work / "recordings").glob("cut*.mkv"))


class Clock(threading.Thread):
    """Reads the program's frame counter from ``/api/state`` every 50 ms, to place the
    program's frame clock on the wall clock.

    A read sent at ``sent``, answered at ``answered``, saying ``c`` frames made, means
    frame ``c - 1`` was made before ``answered`` and frame ``c`` not before ``sent``: the
    clock's origin t0 (when frame 0 was due) lies in ``(sent - c/fps, answered -
    (c-1)/fps]``. The reads around a call narrow it (only those within ``WINDOW``
    seconds: a frame clock that fell behind re-anchors, moving t0); frame n is due at
    ``t0 + n/fps``.
    """

    WINDOW = 1.5

    def __init__(self, jalsa: Jalsa, fps: int) -> None:
        super().__init__(name="frame-clock", daemon=True)
        self.jalsa, self.fps = jalsa, fps
        self.reads: list[tuple[float, float, int]] = []  # (sent, answered, frames)
        self.late_resets = 0
        self.frames = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            sent = time.time()
            try:
                status, state = self.jalsa.call("GET", "/api/state")
            except OSError:
                continue
            answered = time.time()
            if status != 200:
                continue
            count = int(state["program"]["frames"])
            self.frames = count
            self.late_resets = int(state["program"]["late_resets"])
            self.reads.append((sent, answered, count))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def origin(self, at: float) -> tuple[float, float]:
        """t0 as the reads around ``at`` place it, and how wide its interval is, in frames
        (negative: the reads disagree by that much, the time a frame takes to be made)."""
        near = [r for r in self.reads if abs(r[0] - at) <= self.WINDOW]
        low = max(sent - count / self.fps for sent, _, count in near)
        high = min(answered - (count - 1) / self.fps for _, answered, count in near)
        return (low + high) / 2, (high - low) * self.fps


def one_call(jalsa: Jalsa, op: str) -> dict[str, Any]:
    while True:
        status, rundown = jalsa.call("GET", "/api/rundown")
        assert status == 200, rundown
        items = rundown["items"]
        on = next(i for i in items if i["state"] == "on")
        coming = [i for i in items if i["state"] in ("next", "upcoming")]
        if op != "next" or coming[0]["speaker"] != on["speaker"]:
            break
        # A take leaves the items before it to come: the next may have the colour on air
        # (no visible cut). Skip it (no cut either), so the next one shows.
        path = f"/api/rundown/items/{coming[0]['id']}"
        status, answer = jalsa.call("DELETE", path, {"version": rundown["version"]})
        assert status == 200, answer
    if op == "next":
        target, body = coming[0], {"version": rundown["version"]}
    else:  # an item not open yet, of another colour than the one on air
        target = next(i for i in coming[2:] if i["speaker"] != on["speaker"])
        body = {"version": rundown["version"], "item": target["id"]}
    called = time.time()
    status, answer = jalsa.call("POST", f"/api/rundown/{op}", body)
    returned = time.time()
    assert status == 200, answer
    return {
        "op": op,
        "speaker": target["speaker"],
        "from": on["speaker"],
        "called": called,
        "post_ms": (returned - called) * 1000,
    }


def classify(frames: list[np.ndarray[Any, Any]]) -> list[str | None]:
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names], dtype=np.float64)
    out: list[str | None] = []
    for rgb in frames:
        distance = np.linalg.norm(palette - rgb, axis=1)
        best = int(np.argmin(distance))
        out.append(names[best] if distance[best] < 40 else None)  # else: a slate, a card
    return out


def decode(path: Path) -> tuple[list[str | None], float]:
    """Each recorded frame's speaker colour, by frame index; and the stream's fps."""
    patches: list[np.ndarray[Any, Any]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        for frame in container.decode(stream):
            picture = frame.to_ndarray(format="rgb24")
            h, w = picture.shape[:2]
            patch = picture[h * 35 // 100 : h * 55 // 100, w * 80 // 100 : w * 95 // 100]
            patches.append(patch.reshape(-1, 3).mean(axis=0))
    return classify(patches), rate


def judge(calls: list[dict[str, Any]], colours: list[str | None], fps: int, clock: Clock) -> None:
    for call in calls:
        t0, call["clock_interval_frames"] = clock.origin(call["called"])
        call["frame_at_call"] = (call["called"] - t0) * fps  # where the frame clock stood
        start = max(0, int(call["frame_at_call"]) - 2 * fps)  # never much before the call
        cut = next(
            (
                i
                for i in range(max(1, start), len(colours))
                if colours[i] == call["speaker"] and colours[i - 1] != call["speaker"]
            ),
            None,
        )
        call["cut_frame"] = cut
        if cut is not None:
            call["latency_frames"] = cut - call["frame_at_call"]  # the call → the cut's tick
            call["latency_ms"] = call["latency_frames"] / fps * 1000
            # from the POST's answer (the change applied and journaled) to the cut's tick
            call["after_answer_frames"] = call["latency_frames"] - call["post_ms"] / 1000 * fps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between calls")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", default="1280x720", help="the program's WIDTHxHEIGHT")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = benchlib.workdir("jalsa-cut-")
    session_start = benchlib.tree()
    width, height = (int(n) for n in args.size.split("x"))
    jalsa = Jalsa(work, (width, height), args.fps, items=args.calls * 3 + 8)
    calls: list[dict[str, Any]] = []
    clock = Clock(jalsa, args.fps)
    try:
        jalsa.wait_ready()
        clock.start()
        time.sleep(3)  # past the start-up
        for n in range(args.calls):
            calls.append(one_call(jalsa, "next" if n % 2 == 0 else "take"))
            log(f"call {n + 1}/{args.calls}: {calls[-1]['op']} → {calls[-1]['speaker']}")
            time.sleep(args.every)
    finally:
        clock.stop()
        jalsa.stop()
    colours, rate = decode(jalsa.recording())
    judge(calls, colours, args.fps, clock)
    found = [c for c in calls if c.get("latency_frames") is not None]
    summary: dict[str, Any] = {}
    for op in ("next", "take", "all"):
        these = [c for c in found if op in ("all", c["op"])]
        if these:
            frames = [c["latency_frames"] for c in these]
            summary[op] = {
                "n": len(these),
                "median_frames": statistics.median(frames),
                "max_frames": max(frames),
                "median_ms": statistics.median(frames) / args.fps * 1000,
                "max_ms": max(frames) / args.fps * 1000,
                "post_median_ms": statistics.median(c["post_ms"] for c in these),
                "after_answer_median_frames": statistics.median(
                    c["after_answer_frames"] for c in these
                ),
                "after_answer_max_frames": max(c["after_answer_frames"] for c in these),
            }
    print(f"{len(found)}/{len(calls)} cuts found; recording {len(colours)} frames at {rate:g} fps")
    spread = statistics.median(c["clock_interval_frames"] for c in calls)
    print(
        f"frame clock placed by {len(clock.reads)} reads of /api/state (interval around a"
        f" call: {spread:+.2f} frames, median); late re-anchors {clock.late_resets};"
        f" program frames at the last read {clock.frames} (recording: {len(colours)})"
    )
    for op, s in summary.items():
        print(
            f"{op:>4}: n={s['n']} median {s['median_frames']:.2f} frames "
            f"({s['median_ms']:.0f} ms), max {s['max_frames']:.2f} frames ({s['max_ms']:.0f} ms);"
            f" POST answered in {s['post_median_ms']:.1f} ms; from its answer: median"
            f" {s['after_answer_median_frames']:.2f}, max {s['after_answer_max_frames']:.2f} frames"
        )
    print("target: ≤ 1 frame + one encoder delay (x264 zerolatency: 0 frames of lookahead)")
    path = benchlib.write_json(
        "rundown_cut_latency",
        {
            "machine": benchlib.machine(),
            "tree": {"start": session_start, "end": benchlib.tree()},
            "args": vars(args),
            "calls": calls,
            "summary": summary,
            "recording_frames": len(colours),
            "final_program_frames": clock.frames,
            "clock": {"reads": len(clock.reads), "late_resets": clock.late_resets},
        },
    )
    log(f"wrote {path}")
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if len(found) == len(calls) else 1


if __name__ == "__main__":
    sys.exit(main())
