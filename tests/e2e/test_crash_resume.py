"""jalsa survives its own crash: ``kill -9`` mid-item (no hard starts) and ``jalsa run``
again resumes where the show stands on the wall clock, from the journal in the state
dir: the same item on air within 3 s, with its remaining time and every edit kept; a
hold is kept too; ``--fresh`` starts over and keeps the old journal.

One state dir, four runs of a real jalsa: (1) red on air, extended from 20 s to 24 s,
killed 6 s in; (2) red again with what it had left, then blue, held, killed; (3) still
on hold, resumed with blue's remaining time; (4) --fresh: red from its start.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import centre_colour, dominant, ffprobe

pytestmark = pytest.mark.media

RED_SECONDS, RED_EXTENDED, BLUE_SECONDS = 20, 24, 30
BACK_WITHIN = 3.0  # seconds from the restart to the same item on air


def call(run: JalsaRun, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.http_port}{path}", data=data, method=method
    )
    request.add_header("Authorization", f"Bearer {run.token()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def rundown(run: JalsaRun) -> dict[str, Any]:
    status, body = call(run, "GET", "/api/rundown")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def item(status: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for i in status["items"] if i["id"] == item_id)


def on_air(run: JalsaRun, who: str, timeout: float) -> float:
    """Until ``who`` is on air; returns the seconds since the process started."""
    run.wait_for(lambda: run.metric("jalsa_on_air", speaker=who) == 1, timeout, f"{who} on air")
    return time.monotonic() - run.started


class Run(JalsaRun):
    """A JalsaRun that notes when its process started."""

    def start(self) -> None:
        self.started = time.monotonic()
        super().start()


def colour(recording: Path, at: float) -> str:
    return dominant(centre_colour(recording, at))


def test_kill_9_and_restart_resumes_the_show(tmp_path: Path) -> None:
    event = tmp_path / "rally.toml"
    event.write_text(
        event_toml(
            "Crash Test",
            event={"on_end": "stop"},
            program=program(video_bitrate_kbps=300),
            speakers=[speaker("red", source="testsrc"), speaker("blue", source="testsrc")],
            rundown=[slot("red", f"{RED_SECONDS}s"), slot("blue", f"{BLUE_SECONDS}s")],
            destinations=[{"name": "recording", "platform": "custom", "url": "rec/show.mkv"}],
        )
    )
    state = tmp_path / "state"
    journal = state / "rundown-journal.jsonl"

    # (1) red on air, extended, then killed mid-item
    with Run(event, state) as first:
        first.wait_ready()
        on_air(first, "red", 10)
        status, extended = call(
            first, "PATCH", "/api/rundown/items/red", {"version": 0, "duration": f"{RED_EXTENDED}s"}
        )
        assert status == 200, extended
        red = item(extended, "red")
        assert red["end"] - red["start"] == RED_EXTENDED
        first.media_flows(6)
        first.stop(signal.SIGKILL)

    # (2) the same item on air again within 3 s, with its remaining time and the edit
    with Run(event, state) as second:
        took = on_air(second, "red", 20)
        now = time.time()
        resumed = rundown(second)
        assert took <= BACK_WITHIN, second.logs
        assert (resumed["current"], resumed["state"], resumed["version"]) == ("red", "on", 1)
        assert resumed["resumed_at"] == pytest.approx(now, abs=BACK_WITHIN + 1)
        again = item(resumed, "red")
        assert (again["start"], again["duration"]) == (red["start"], RED_EXTENDED)
        # the wall clock ran on while jalsa was down: what is left is what the plan says now
        left = red["start"] + RED_EXTENDED - now
        assert again["end"] - now == pytest.approx(left, abs=2)
        assert "resumed the rundown" in second.logs and "red (red) is on air again" in second.logs
        # red ends when the plan said, not RED_EXTENDED after the restart
        on_air(second, "blue", left + 10)
        assert time.time() == pytest.approx(red["start"] + RED_EXTENDED, abs=1.5)
        second.media_flows(3)
        version = rundown(second)["version"]
        status, held = call(
            second, "POST", "/api/rundown/hold", {"version": version, "text": "Back soon"}
        )
        assert status == 200, held
        blue_left = item(held, "blue")["end"] - time.time()
        second.media_flows(1)
        second.stop(signal.SIGKILL)

    # (3) still on hold after the restart; resumed, blue has what it had left
    with Run(event, state) as third:
        assert on_air(third, "slate", 20) <= BACK_WITHIN
        status_held = rundown(third)
        assert (status_held["state"], status_held["hold"], status_held["current"]) == (
            "hold",
            "Back soon",
            "blue",
        )
        assert "on hold ('Back soon'), blue resumes after it" in third.logs
        third.media_flows(1.5)
        status, back = call(
            third, "POST", "/api/rundown/resume", {"version": status_held["version"]}
        )
        assert status == 200, back
        assert item(back, "blue")["end"] - time.time() == pytest.approx(blue_left, abs=2)
        on_air(third, "blue", 5)
        third.stop(signal.SIGTERM)
    # the picture: red as the second run began, the stand-by slate as the third did
    assert colour(tmp_path / "rec" / "show-1.mkv", 1.0) == "red"
    assert colour(tmp_path / "rec" / "show-2.mkv", 1.0) == "dark"
    lines = journal.read_text().splitlines()[1:]
    assert [json.loads(line)["op"] for line in lines] == ["set_duration", "hold", "resume"]

    # (4) --fresh starts over from red, and keeps the old journal beside the new one
    old = journal.read_bytes()
    with Run(event, state, args=["--fresh"]) as fourth:
        on_air(fourth, "red", 20)
        fresh = rundown(fourth)
        assert (fresh["version"], fresh["resumed_at"], fresh["current"]) == (0, None, "red")
        assert item(fresh, "red")["end"] - time.time() == pytest.approx(RED_SECONDS, abs=2)
        assert "--fresh: the rundown starts over" in fourth.logs
        fourth.stop(signal.SIGTERM)
    kept = [p for p in state.glob("rundown-journal.2*.jsonl")]
    assert len(kept) == 1 and kept[0].read_bytes() == old


def test_a_clip_plays_on_where_the_show_stands(tmp_path: Path) -> None:
    """A recorded speech (6 s red, then blue): paused while held, and after kill -9 and a
    restart started as far in as it had aired, not from its beginning."""
    clip = tmp_path / "speech.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", "color=c=red:s=320x180:r=25:d=6",
         "-f", "lavfi", "-i", "color=c=blue:s=320x180:r=25:d=14",
         "-f", "lavfi", "-i", "sine=f=440:d=20",
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
         "-c:a", "aac", str(clip)],
        check=True, timeout=60,
    )  # fmt: skip
    event = tmp_path / "rally.toml"
    event.write_text(
        event_toml(
            "Clip Test",
            program=program(video_bitrate_kbps=300, keyframe_seconds=1),
            speakers=[speaker("reader", source=clip)],
            rundown=[slot("reader", "20s")],
            destinations=[{"name": "recording", "platform": "custom", "url": "rec/show.mkv"}],
        )
    )
    state = tmp_path / "state"
    with Run(event, state) as first:
        first.wait_ready()
        on_air(first, "reader", 10)
        first.media_flows(2.5)
        status, _ = call(first, "POST", "/api/rundown/hold", {"version": 0, "text": "Wait"})
        assert status == 200
        first.media_flows(4)
        status, _ = call(first, "POST", "/api/rundown/resume", {"version": 1})
        assert status == 200
        first.media_flows(2)
        # 4.5 s aired, 8.5 s since the item began: still the red part, the clip waited
        red_at = first.media_seconds()
        first.media_flows(2.5)  # aired 7 s: the blue part
        aired = rundown(first)["items"][0]
        first.stop(signal.SIGKILL)
        killed = time.time()
    with Run(event, state) as second:
        assert on_air(second, "reader", 20) <= BACK_WITHIN
        second.media_flows(2)
        now = time.time()
        item_now = rundown(second)["items"][0]
        second.stop(signal.SIGTERM)
    # aired: what it had aired at the kill, plus the time since (the show went on)
    assert item_now["held"] == pytest.approx(aired["held"], abs=0.01)
    assert now - item_now["start"] - item_now["held"] > 7 + (now - killed) - 1
    assert dominant(centre_colour(tmp_path / "rec" / "show.mkv", red_at - 0.5)) == "red"
    resumed = tmp_path / "rec" / "show-1.mkv"
    begin = ffprobe(resumed).video_times[0]
    assert dominant(centre_colour(resumed, begin + 1.0)) == "blue"  # not the speech's start
