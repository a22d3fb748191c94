"""Which items' sources are open: the one on air, and the next one however far off it is
(so a Next cuts at the following frame), a pulled stream only 10 s ahead; an approved
message reopens the next item with it, never the item on air. Real sources: a test
pattern, a clip decoded by MediaSource."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from waiting import async_wait_for

from orchestrator.event import Event, parse_event
from orchestrator.rundown_control import RundownControl
from orchestrator.slot_media import SlotSources

MINUTES = 600.0  # each item is 10 minutes long


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "message.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=160x120:r=25:d=2",
         "-f", "lavfi", "-i", "sine=f=440:d=2", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture
def event(tmp_path: Path, clip: Path) -> Event:
    return parse_event(
        {
            "event": {"name": "Slot Media", "on_end": "slate"},
            "program": {"width": 160, "height": 120, "fps": 10, "preset": "ultrafast"},
            "speakers": [
                {"id": "host", "name": "Host", "source": "testsrc"},
                {"id": "film", "name": "Film", "source": str(clip)},
                {"id": "remote", "name": "Remote", "source": "rtmp://127.0.0.1:9/live/x"},
            ],
            "rundown": [
                {"speaker": "host", "duration": "10m"},
                {"speaker": "film", "duration": "10m"},
                {"speaker": "remote", "duration": "10m"},
            ],
        },
        base_dir=tmp_path,
        env={},
    )


@pytest.fixture
async def sources(event: Event) -> AsyncIterator[SlotSources]:
    media = SlotSources(event, {})
    try:
        yield media
    finally:
        media.stop()
        await media.join(2)


def open_sources(media: SlotSources) -> set[str]:
    return {snapshot.name for snapshot in media.snapshots()}


async def test_the_next_clip_is_open_ten_minutes_ahead_a_pulled_stream_only_10_s(
    tmp_path: Path, event: Event, sources: SlotSources
) -> None:
    control = RundownControl.open(tmp_path, event, clock=lambda: 0.0)
    await sources.prepare(control.tick(1.0)[0], 1.0)
    assert open_sources(sources) == {"Host", "film"}  # the film is next, 10 min ahead
    await async_wait_for(
        lambda: {s.name: s.state for s in sources.snapshots()}["film"] == "ready",
        10,
        "the next clip armed on its first picture",
    )
    await sources.prepare(control.tick(MINUTES + 1)[0], MINUTES + 1)  # the film on air
    assert open_sources(sources) == {"film"}  # the host's item is over; remote is 10 min off
    await sources.prepare(control.tick(2 * MINUTES - 5)[0], 2 * MINUTES - 5)
    assert open_sources(sources) == {"film", "remote"}  # the stream is connected 10 s ahead
    await control.close()


async def test_an_approved_message_reopens_the_next_item_not_the_one_on_air(
    tmp_path: Path, event: Event, clip: Path
) -> None:
    messages: dict[str, str] = {}
    media = SlotSources(event, messages)
    control = RundownControl.open(tmp_path, event, clock=lambda: 0.0)
    try:
        await media.prepare(control.tick(1.0)[0], 1.0)
        assert open_sources(media) == {"Host", "film"}
        messages["host"] = messages["film"] = str(clip)  # both approve a message
        await media.prepare(control.tick(2.0)[0], 2.0)
        # The film's item (next) is reopened with its message as fallback; the host's item,
        # on air, keeps its sources (the message applies from their next item).
        assert open_sources(media) == {"Host", "film", "film-fallback"}
    finally:
        media.stop()
        await media.join(2)
        await control.close()
