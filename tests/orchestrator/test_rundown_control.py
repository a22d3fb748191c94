"""The live rundown as the show and the API share it: operations journaled in order, what
the console reads, and the rundown opened at start-up (fresh, resumed, --fresh, ended,
the demo, a journal that cannot resume). Real journals in a temp dir, an injected clock."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.event import Event, parse_event
from orchestrator.journal import Journal
from orchestrator.live_rundown import RundownError, StaleVersion
from orchestrator.rundown_control import (
    DEMO_JOURNAL_FILE,
    JOURNAL_FILE,
    ResumeError,
    RundownControl,
)

T0 = 1_766_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(name: str = "Jalsa", rundown: list[tuple[str, str]] | None = None) -> Event:
    """Speakers host, guest, imam; the rundown host 60 s, guest 120 s, host 30 s."""
    items = rundown or [("host", "60s"), ("guest", "2m"), ("host", "30s")]
    data = {
        "event": {"name": name},
        "speakers": [
            {"id": s, "name": s.capitalize(), "source": "testsrc"}
            for s in ("host", "guest", "imam")
        ],
        "rundown": [{"speaker": s, "duration": d} for s, d in items],
    }
    return parse_event(data, base_dir=Path("/"), env={})


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def kept_aside(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith("rundown-journal.2")]


def opened(tmp_path: Path, clock: Clock, **kw: Any) -> RundownControl:
    return RundownControl.open(tmp_path, kw.pop("ev", None) or event(), clock=clock, **kw)


# --- operations ---------------------------------------------------------------------------


async def test_each_operation_is_applied_and_journaled_in_order(tmp_path: Path) -> None:
    clock = Clock()
    control = opened(tmp_path, clock)
    clock.now = T0 + 10
    change = await control.operate("take", {"item": "guest"}, 0)
    assert (change.version, control.status_json(clock.now)["current"]) == (1, "guest")
    clock.now = T0 + 20
    await control.operate("take_speaker", {"speaker": "imam", "duration": 45.0}, 1)
    await control.operate("hold", {"text": "One moment"}, 2)
    await control.close()
    assert [(r["op"], r["version"], r["now"]) for r in records(tmp_path / JOURNAL_FILE)] == [
        ("take", 1, T0 + 10),
        ("take_speaker", 2, T0 + 20),
        ("hold", 3, T0 + 20),
    ]


async def test_two_operators_on_one_version_one_wins_one_is_stale(tmp_path: Path) -> None:
    control = opened(tmp_path, Clock())
    results = await asyncio.gather(
        control.operate("next", {}, 0),
        control.operate("hold", {"text": "wait"}, 0),
        return_exceptions=True,
    )
    assert results[0].version == 1  # type: ignore[union-attr]
    assert isinstance(results[1], StaleVersion) and results[1].current == 1
    await control.close()
    assert [r["op"] for r in records(tmp_path / JOURNAL_FILE)] == ["next"]


async def test_a_refused_operation_changes_and_journals_nothing(tmp_path: Path) -> None:
    control = opened(tmp_path, Clock())
    with pytest.raises(RundownError) as info:
        await control.operate("take_speaker", {"speaker": "nobody", "duration": 5.0}, 0)
    assert info.value.field == "speaker"
    await control.close()
    assert control.live.version == 0 and records(tmp_path / JOURNAL_FILE) == []


async def test_many_operations_at_once_are_journaled_in_the_order_applied(
    tmp_path: Path,
) -> None:
    control = opened(tmp_path, Clock())
    texts = [f"text {n}" for n in range(20)]
    await asyncio.gather(
        *(control.operate("hold", {"text": text}, n) for n, text in enumerate(texts))
    )
    await control.close()
    assert [r["args"]["text"] for r in records(tmp_path / JOURNAL_FILE)] == texts


async def test_a_failed_journal_write_is_said_and_the_change_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    control = opened(tmp_path, Clock())

    def broken(change: object) -> None:
        raise OSError(28, "No space left on device")

    control._journal.append = broken  # type: ignore[union-attr, method-assign]
    with caplog.at_level(logging.ERROR):
        change = await control.operate("next", {}, 0)
    assert change.version == 1 and control.live.version == 1
    assert "No space left" in (control.journal_error or "")
    assert "could not be journaled" in caplog.text
    assert control.status_json(T0)["journal_error"] == control.journal_error
    await control.close()


# --- what consoles read ----------------------------------------------------------------------


async def test_the_status_is_the_rundown_as_json(tmp_path: Path) -> None:
    clock = Clock()
    control = opened(tmp_path, clock)
    status = control.status_json(T0 + 5)
    json.dumps(status)  # JSON-able
    assert (status["version"], status["state"], status["current"]) == (0, "on", "host")
    assert [(i["id"], i["state"], i["start"] - T0, i["end"] - T0) for i in status["items"]] == [
        ("host", "on", 0, 60),
        ("guest", "next", 60, 180),
        ("host-2", "upcoming", 180, 210),
    ]
    assert status["items"][1]["name"] == "Guest" and status["ends_at"] == T0 + 210
    assert status["resumed_at"] is None
    # the same while nothing changes: a poller can compare
    assert control.status_json(T0 + 6) == status
    await control.close()


async def test_changes_count_operations_and_the_show_moving_on(tmp_path: Path) -> None:
    control = opened(tmp_path, Clock())
    control.tick(T0)
    seen = control.changes
    control.tick(T0 + 1)
    assert control.changes == seen  # nothing new
    waiter = asyncio.create_task(control.wait_change(seen))
    await asyncio.sleep(0)
    assert not waiter.done()
    await control.operate("hold", {"text": ""}, 0)
    assert await asyncio.wait_for(waiter, 1) == control.changes > seen
    control.tick(T0 + 2)
    seen = control.changes
    await control.operate("resume", {}, 1)
    control.tick(T0 + 2)
    seen = control.changes
    control.tick(T0 + 61.5)  # host's item is over: guest on air
    assert control.changes == seen + 1
    await control.close()


# --- opening: fresh, resumed ------------------------------------------------------------------


async def test_a_restart_resumes_where_the_show_stands_now(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    first = opened(tmp_path, clock)
    clock.now = T0 + 10
    await first.operate("set_duration", {"item": "host", "duration": 90.0}, 0)
    await first.operate("insert", {"speaker": "imam", "duration": 20.0, "after": "host"}, 1)
    # killed: no close; restarted 30 s later, mid host's item
    clock.now = T0 + 40
    with caplog.at_level(logging.INFO):
        again = opened(tmp_path, clock)
    assert again.resumed is not None and again.resumed.changes == 2
    assert again.status_json(clock.now) == {**first.status_json(clock.now), "resumed_at": T0 + 40}
    assert "resumed the rundown" in caplog.text
    assert "host (host) is on air again, 50s left" in caplog.text
    # and goes on journaling after the old lines
    await again.operate("next", {}, 2)
    await again.close()
    assert [r["op"] for r in records(tmp_path / JOURNAL_FILE)] == ["set_duration", "insert", "next"]


async def test_a_hold_is_kept_across_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0 + 20)
    first = opened(tmp_path, Clock(T0))
    first._clock = clock
    await first.operate("hold", {"text": "Main address next"}, 0)
    clock.now = T0 + 100
    with caplog.at_level(logging.INFO):
        again = opened(tmp_path, clock)
    status = again.status_json(clock.now)
    assert (status["state"], status["hold"], status["current"]) == (
        "hold",
        "Main address next",
        "host",
    )
    assert "on hold ('Main address next'), host resumes after it" in caplog.text
    await again.operate("resume", {}, 1)
    # the item on air kept its remaining 40 s through the hold and the restart
    assert again.live.at(clock.now).remaining == pytest.approx(40)
    await again.close()


async def test_fresh_starts_over_and_keeps_the_old_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    first = opened(tmp_path, clock)
    await first.operate("next", {}, 0)
    old = (tmp_path / JOURNAL_FILE).read_bytes()
    clock.now = T0 + 30
    with caplog.at_level(logging.INFO):
        again = opened(tmp_path, clock, fresh=True)
    assert again.resumed is None and again.live.starts_at == T0 + 30
    assert again.status_json(clock.now)["current"] == "host"
    kept = kept_aside(tmp_path)
    assert len(kept) == 1 and kept[0].read_bytes() == old
    assert "--fresh: the rundown starts over" in caplog.text and kept[0].name in caplog.text
    assert records(tmp_path / JOURNAL_FILE) == []
    # a second --fresh within the same second never overwrites the first one kept
    opened(tmp_path, clock, fresh=True)
    assert len(kept_aside(tmp_path)) == 2


@pytest.mark.parametrize(
    ("ended", "said"), [("end", "was ended at"), ("clock", "ended at")], ids=["by-end", "by-clock"]
)
async def test_a_show_that_ended_starts_over_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ended: str, said: str
) -> None:
    clock = Clock()
    first = opened(tmp_path, clock)
    if ended == "end":
        clock.now = T0 + 5
        await first.operate("end", {}, 0)
        clock.now = T0 + 10
    else:
        clock.now = T0 + 500  # the 210 s rundown is long over
    with caplog.at_level(logging.INFO):
        again = opened(tmp_path, clock)
    assert again.resumed is None and again.status_json(clock.now)["state"] == "on"
    assert f"the journaled show {said}" in caplog.text and "starts over" in caplog.text
    assert len(kept_aside(tmp_path)) == 1


async def test_the_demo_starts_fresh_every_time(tmp_path: Path) -> None:
    demo = event("Demo", [("host", "20s"), ("guest", "20s")])
    clock = Clock()
    first = opened(tmp_path, clock, ev=demo, loop=True)
    await first.operate("next", {}, 0)
    clock.now = T0 + 5
    again = opened(tmp_path, clock, ev=demo, loop=True)
    assert again.resumed is None and again.live.loop and again.live.version == 0
    assert records(tmp_path / DEMO_JOURNAL_FILE) == []
    assert not (tmp_path / JOURNAL_FILE).exists()


# --- opening: an event file changed, a journal that cannot resume ---------------------------


async def test_an_edited_event_file_is_reconciled_by_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    first = opened(tmp_path, clock)
    await first.operate("set_duration", {"item": "guest", "duration": 60.0}, 0)
    await first.operate("set_duration", {"item": "host-2", "duration": 90.0}, 1)
    clock.now = T0 + 5
    edited = event(rundown=[("host", "60s"), ("imam", "30s"), ("host", "30s")])  # no guest
    with caplog.at_level(logging.WARNING):
        again = opened(tmp_path, clock, ev=edited)
    status = again.status_json(clock.now)
    assert [(i["id"], i["duration"]) for i in status["items"]] == [
        ("host", 60),
        ("imam", 30),
        ("host-2", 90),
    ]
    assert "no longer has the items guest" in caplog.text
    gone, dropped = status["resumed_dropped"]
    assert gone == "item guest: no longer in the event file"
    assert dropped.startswith("line 2: set_duration dropped") and "no item 'guest'" in dropped


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (b'{"journal":1}\n', "needs starts_at"),
        (b"not json\n", "not a JSON line"),
    ],
)
def test_a_damaged_journal_is_an_error_naming_it_and_the_fix(
    tmp_path: Path, damage: bytes, says: str
) -> None:
    (tmp_path / JOURNAL_FILE).write_bytes(damage)
    with pytest.raises(ResumeError) as info:
        opened(tmp_path, Clock(), event_file=Path("rally.toml"))
    message = str(info.value)
    assert str(tmp_path / JOURNAL_FILE) in message and says in message
    assert "jalsa run rally.toml --fresh" in message


async def test_another_events_journal_is_not_resumed(tmp_path: Path) -> None:
    opened(tmp_path, Clock(), ev=event("Yesterday's Rally"))
    with pytest.raises(ResumeError, match=r"of \"Yesterday's Rally\", not of 'Jalsa'.*--fresh"):
        opened(tmp_path, Clock(T0 + 5))


async def test_a_journal_with_none_of_the_events_items_is_not_resumed(tmp_path: Path) -> None:
    live_event = event(rundown=[("imam", "10m")])
    control = opened(tmp_path, Clock())
    await control.close()
    with pytest.raises(ResumeError, match=r"none of its items .* is in EVENT\.toml.*--fresh"):
        opened(tmp_path, Clock(T0 + 5), ev=live_event)


def test_a_journal_from_before_event_names_still_resumes(tmp_path: Path) -> None:
    from orchestrator.live_rundown import LiveRundown

    ev = event()
    live = LiveRundown(ev.rundown, starts_at=T0, speakers=("host", "guest", "imam"))
    Journal.create(tmp_path / JOURNAL_FILE, live).close()  # no event name in the header
    again = opened(tmp_path, Clock(T0 + 70), ev=ev)
    assert again.resumed is not None and again.status_json(T0 + 70)["current"] == "guest"


def test_the_journal_is_fsynced_before_the_operator_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync
    control = opened(tmp_path, Clock())
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])

    async def go() -> None:
        await control.operate("next", {}, 0)
        assert synced  # on disk before operate returned
        await control.close()

    asyncio.run(go())
