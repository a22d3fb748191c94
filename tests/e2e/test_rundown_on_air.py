"""The operator runs the rundown live, as a real ``jalsa run`` to a real platform: next,
take a speaker now, hold and resume, extend, end, each over /api/rundown, judged by
ffprobe in the recording (the colour mid-item, a keyframe at each cut, no gap) and by
nginx-rtmp (the platform never saw a reconnect).

One run (module-scoped) plays: red on air; next (blue); take green for 10 s; hold;
resume (green's remaining time kept); extend green to 16 s (no cut); green ends, red's
second item follows; end (on_end = "stop": jalsa exits 0).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import centre_colour, decode_errors, dominant, ffprobe
from nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.media

KEY = "live-rundown"
GOP_SECONDS = 10  # cuts, not the GOP, make the keyframes in this run


def call(
    run: JalsaRun,
    method: str,
    path: str,
    body: object = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One API call: (status, JSON answer)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.http_port}{path}", data=data, method=method
    )
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def post_huge_without_token(run: JalsaRun, path: str, size: int) -> int:
    """POST a ``size``-byte JSON body without a token, as a client that streams it: the
    status line of the answer, read while the body is still being sent."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", run.http_port), timeout=10) as sock:
        sock.sendall(head + b'{"version": 0, "text": "')

        def stream() -> None:
            chunk = b"x" * 65536
            try:
                for _ in range(size // len(chunk)):
                    sock.sendall(chunk)
            except OSError:
                pass  # answered and closed: the rest is never read

        sender = threading.Thread(target=stream, daemon=True)
        sender.start()
        answer = sock.makefile("rb").readline()
        sender.join(10)
    return int(answer.split()[1])


@dataclass
class Mark:
    """An operation: the program's media time just before the call and once answered,
    the wall clock then, and the answer."""

    before: float
    after: float
    wall: float
    answer: dict[str, Any]


@dataclass
class Played:
    run: JalsaRun
    exit_code: int
    recording: Path
    platform: Path
    marks: dict[str, Mark] = field(default_factory=dict)
    stale: tuple[int, Any] = (0, None)
    big_without_token: int = 0
    reconnects: float | None = None
    relay_up: float | None = None
    final: dict[str, Any] = field(default_factory=dict)  # /api/rundown just before end

    def media_time(self, wall: float) -> float:
        """A wall-clock instant as the program's (and the recording's) media time."""
        offsets = [m.wall - m.after for m in self.marks.values()]
        return wall - sum(offsets) / len(offsets)


@pytest.fixture(scope="module")
def played(nginx: NginxRtmp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    work = tmp_path_factory.mktemp("live-rundown")
    event = work / "rally.toml"
    event.write_text(
        event_toml(
            "Live Rundown",
            event={"on_end": "stop"},
            program=program(
                width=640, height=360, video_bitrate_kbps=600, keyframe_seconds=GOP_SECONDS
            ),
            speakers=[
                speaker("red", source="testsrc"),  # test patterns: red, blue, green cards
                speaker("blue", source="testsrc"),
                speaker("green", source="testsrc"),
            ],
            rundown=[slot("red", "60s"), slot("blue", "60s"), slot("red", "60s")],
            destinations=[
                {"name": "platform", "platform": "custom", "url": nginx.url("rec", ""), "key": KEY},
                {"name": "recording", "platform": "custom", "url": "recordings/show.mkv"},
            ],
        )
    )
    with JalsaRun(event, work / "state") as run:
        played = Played(run, -1, work / "recordings" / "show.mkv", nginx.recording(KEY))
        run.wait_ready()
        token = run.token()

        def on_air(who: str, timeout: float = 10) -> None:
            run.wait_for(lambda: run.metric("jalsa_on_air", speaker=who) == 1, timeout, who)

        def operate(name: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            version = call(run, "GET", "/api/rundown", token=token)[1]["version"]
            before = run.media_seconds()
            status, answer = call(run, method, path, {"version": version, **body}, token=token)
            assert status == 200, answer
            played.marks[name] = Mark(before, run.media_seconds(), time.time(), answer)
            return answer

        on_air("red")
        run.media_flows(3)
        operate("next", "POST", "/api/rundown/next", {})
        on_air("blue")
        run.media_flows(3)
        operate("take", "POST", "/api/rundown/take", {"speaker": "green", "duration": "10s"})
        on_air("green")
        played.stale = call(run, "POST", "/api/rundown/next", {"version": 0}, token=token)
        played.big_without_token = post_huge_without_token(
            run, "/api/rundown/hold", 8 * 1024 * 1024
        )
        run.media_flows(3)
        operate("hold", "POST", "/api/rundown/hold", {"text": "Back in a moment"})
        on_air("slate")
        run.media_flows(3)
        operate("resume", "POST", "/api/rundown/resume", {})
        on_air("green")
        run.media_flows(2)
        operate("extend", "PATCH", "/api/rundown/items/green.1", {"duration": "16s"})
        on_air("red", timeout=25)  # green's 16 s are over: red's second item
        run.media_flows(2)
        labels = {"destination": "platform", "platform": "custom"}
        played.reconnects = run.metric("jalsa_relay_reconnects_total", **labels)
        played.relay_up = run.metric("jalsa_relay_up", **labels)
        played.final = call(run, "GET", "/api/rundown", token=token)[1]
        operate("end", "POST", "/api/rundown/end", {})
        played.exit_code = run.wait(timeout=30)
        nginx.wait_recorded(KEY)
        yield played


def item(rundown: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for i in rundown["items"] if i["id"] == item_id)


def colour(played: Played, at: float) -> str:
    return dominant(centre_colour(played.recording, at))


def test_end_puts_up_the_end_slate_then_stops_jalsa_cleanly(played: Played) -> None:
    assert played.exit_code == 0, played.run.logs
    mark = played.marks["end"]
    assert mark.answer["state"] == "ended"
    assert "rundown: end() -> version 6" in played.run.logs
    assert colour(played, mark.before - 0.5) == "red"
    assert colour(played, mark.after + 1.0) == "dark"  # "Thank you for joining", 2 s
    assert ffprobe(played.recording).duration == pytest.approx(mark.after + 2.0, abs=0.7)


@pytest.mark.parametrize(
    ("op", "was", "becomes"),
    [
        ("next", "red", "blue"),
        ("take", "blue", "green"),
        ("hold", "green", "dark"),  # the stand-by slate
        ("resume", "dark", "green"),
    ],
)
def test_each_operation_changes_the_picture_then(
    played: Played, op: str, was: str, becomes: str
) -> None:
    mark = played.marks[op]
    assert colour(played, mark.before - 0.5) == was
    assert colour(played, mark.after + 1.0) == becomes


@pytest.mark.parametrize("op", ["next", "take", "hold", "resume", "end"])
def test_each_cut_starts_with_a_keyframe_at_once(played: Played, op: str) -> None:
    mark = played.marks[op]
    keyframes = ffprobe(played.recording).keyframe_times
    # from the call to the next show step (a tick) and the next frame
    assert any(mark.before - 0.1 <= t <= mark.after + 0.3 for t in keyframes), (
        mark,
        keyframes,
    )


def test_an_extension_cuts_nothing_and_keeps_the_speaker_on(played: Played) -> None:
    mark = played.marks["extend"]
    keyframes = ffprobe(played.recording).keyframe_times
    assert not any(mark.before - 0.1 <= t <= mark.after + 0.3 for t in keyframes)
    green = item(played.final, "green.1")
    assert (green["duration"], green["state"]) == (16, "done")
    held = played.marks["resume"].after - played.marks["hold"].before
    assert green["held"] == pytest.approx(held, abs=0.5)
    # 16 s of air time from the take, plus the hold
    assert green["end"] - green["start"] - green["held"] == pytest.approx(16, abs=0.2)
    ends = played.media_time(green["end"])
    assert colour(played, ends - 5.0) == "green"  # past its first 10 s: extended
    assert colour(played, ends - 0.7) == "green"
    assert colour(played, ends + 1.0) == "red"


def test_the_hold_kept_greens_remaining_time(played: Played) -> None:
    hold, resume = played.marks["hold"].answer, played.marks["resume"].answer
    assert (hold["state"], hold["hold"], hold["current"]) == ("hold", "Back in a moment", "green.1")
    left_at_hold = item(hold, "green.1")["end"] - played.marks["hold"].wall
    left_at_resume = item(resume, "green.1")["end"] - played.marks["resume"].wall
    assert left_at_resume == pytest.approx(left_at_hold, abs=0.5)


def test_the_rundown_answers_each_operation(played: Played) -> None:
    take = played.marks["take"].answer
    assert (take["added"], take["current"], take["cut"]) == ("green.1", "green.1", [])
    assert [(i["id"], i["state"]) for i in played.final["items"]] == [
        ("red", "done"),
        ("blue", "done"),
        ("green.1", "done"),
        ("red-2", "on"),
    ]


def test_a_stale_version_is_409_with_the_rundown(played: Played) -> None:
    status, body = played.stale
    assert (status, body["field"], body["version"]) == (409, "version", 2)
    assert body["rundown"]["current"] == "green.1"


def test_no_token_is_401_before_a_huge_body_is_read(played: Played) -> None:
    assert played.big_without_token == 401


def test_the_recording_and_the_platform_never_gap(played: Played) -> None:
    for path in (played.recording, played.platform):
        probe = ffprobe(path)
        assert probe.largest_video_gap <= 0.2, path
        assert decode_errors(path) == "", path
    # the platform got the whole show, continuous, on one connection (and the end slate)
    duration = played.marks["end"].after + 2.0
    assert ffprobe(played.platform).video_seconds == pytest.approx(duration, abs=1.5)


def test_the_platform_never_reconnected(played: Played) -> None:
    assert (played.reconnects, played.relay_up) == (0, 1)


def test_every_operation_is_journaled(played: Played) -> None:
    journal = played.run.state_dir / "rundown-journal.jsonl"
    ops = [json.loads(line)["op"] for line in journal.read_text().splitlines()[1:]]
    assert ops == ["next", "take_speaker", "hold", "resume", "set_duration", "end"]
