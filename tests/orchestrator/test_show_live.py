"""The show runs the live rundown: each operation cuts the program once, at once, on a
keyframe; a hold puts up its slate and holds it (no cut per tick); an extension or an
edit of what is to come cuts nothing. A real Show in-process (PyAV encode, test-pattern
speakers), its packets taken from the relay's door."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from waiting import async_wait_for

from orchestrator.event import parse_event
from orchestrator.rundown_control import RundownControl
from orchestrator.show import Show
from relays.packet import EncodedPacket

FPS = 10
GOP = 10 * FPS


class Packets:
    def __init__(self) -> None:
        self.video: list[EncodedPacket] = []
        self.lock = threading.Lock()

    def __call__(self, packets: list[EncodedPacket]) -> None:
        with self.lock:
            self.video.extend(p for p in packets if p.kind == "video")

    def keyframes(self, since: int = 0) -> list[int]:
        """The cuts' keyframes from frame ``since`` on (not the GOP's own)."""
        with self.lock:
            return [p.pts for p in self.video if p.keyframe and p.pts >= since and p.pts % GOP]


@pytest.fixture
async def show(tmp_path: Path) -> AsyncIterator[tuple[Show, Packets]]:
    event = parse_event(
        {
            "event": {"name": "Show Test", "on_end": "slate"},
            # A keyframe every GOP frames: any other keyframe is a cut's.
            "program": {
                "width": 320,
                "height": 180,
                "fps": FPS,
                "preset": "ultrafast",
                "keyframe_seconds": GOP // FPS,
            },
            "speakers": [
                {"id": s, "name": s.capitalize(), "source": "testsrc"}
                for s in ("red", "blue", "green")
            ],
            "rundown": [
                {"speaker": "red", "duration": "10m"},
                {"speaker": "blue", "duration": "10m"},
            ],
        },
        base_dir=tmp_path,
        env={},
    )
    show = Show(event, tmp_path, RundownControl.open(tmp_path, event))
    packets = Packets()
    show.relay.publish = packets  # type: ignore[method-assign]
    task = asyncio.create_task(show.run())
    try:
        await on_air(show, "red")
        yield show, packets
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await show.close(2.0)


async def on_air(show: Show, label: str, description: str | None = None) -> float:
    """Until the program shows ``label``; returns how long that took."""
    started = time.monotonic()

    def shown() -> bool:
        feed = show.program.feed
        return feed.label == label and description in (None, feed.description)

    await async_wait_for(shown, 5, f"{label} on air")
    return time.monotonic() - started


async def program_seconds(show: Show, seconds: float) -> None:
    until = show.program.snapshot().frames + seconds * FPS
    await async_wait_for(lambda: show.program.snapshot().frames >= until, seconds + 5, "program")


def cuts(show: Show) -> int:
    return show.program.feed.cut


async def test_each_operation_cuts_once_at_once_on_a_keyframe(
    show: tuple[Show, Packets],
) -> None:
    live, packets = show
    await program_seconds(live, 0.5)
    before, first = cuts(live), live.program.snapshot().frames
    await live.operate("next", {}, 0)
    assert await on_air(live, "blue") < 0.5  # the next step, not the next tick
    await program_seconds(live, 0.3)  # (two cuts within a frame would share its keyframe)
    await live.operate("take_speaker", {"speaker": "green", "duration": 60.0}, 1)
    await on_air(live, "green")
    await program_seconds(live, 0.5)
    await live.operate("hold", {"text": "Back in a moment"}, 2)
    await on_air(live, "slate", "Back in a moment")
    await program_seconds(live, 1.5)  # fifteen ticks held: still one cut
    await live.operate("resume", {}, 3)
    await on_air(live, "green")
    assert cuts(live) == before + 4
    await program_seconds(live, 0.5)
    # a keyframe at each of the four cuts, and only there
    assert len(packets.keyframes(since=first)) == 4, packets.keyframes()


async def test_an_extension_or_an_edit_to_come_does_not_cut(
    show: tuple[Show, Packets],
) -> None:
    live, packets = show
    await program_seconds(live, 0.3)  # red's keyframe is out
    before, keyframes = cuts(live), len(packets.keyframes())
    await live.operate("set_duration", {"item": "red", "duration": 900.0}, 0)
    await live.operate("insert", {"speaker": "green", "duration": 30.0, "after": "red"}, 1)
    await live.operate("skip", {"item": "blue"}, 2)
    await program_seconds(live, 1.0)
    assert (cuts(live), len(packets.keyframes())) == (before, keyframes)
    status = live.rundown_status()
    assert [(i["id"], i["state"]) for i in status["items"]] == [
        ("red", "on"),
        ("green.1", "next"),
        ("blue", "skipped"),
    ]


async def test_the_snapshot_says_hold_and_end(show: tuple[Show, Packets]) -> None:
    live, _ = show
    await live.operate("hold", {"text": ""}, 0)
    await on_air(live, "slate", "Please stand by")
    snapshot = live.snapshot()
    assert (snapshot.state, snapshot.hold, snapshot.slate) == ("hold", "Please stand by", "hold")
    await live.operate("end", {}, 1)
    await on_air(live, "slate", "Show Test")  # the end slate (on_end = "slate": it stays)
    assert live.snapshot().state == "ended" and live.snapshot().slate == "ended"


async def test_a_console_is_woken_by_a_change(show: tuple[Show, Packets]) -> None:
    live, _ = show
    seen = live.rundown_changes
    waiting = asyncio.create_task(live.wait_rundown_change(seen))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing changed in three ticks
    await live.operate("next", {}, 0)
    assert await asyncio.wait_for(waiting, 1) > seen
    assert live.rundown_status()["current"] == "blue"
