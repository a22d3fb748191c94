import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator import journal as journal_module
from orchestrator.event import SegmentSpec
from orchestrator.journal import (
    MAX_LINE,
    Journal,
    JournalError,
    apply,
    open_journal,
    read,
    replay,
)
from orchestrator.live_rundown import LiveRundown, RundownError

T0 = 1_766_000_000.0
SEGMENTS = [SegmentSpec("host", 60), SegmentSpec("guest", 120), SegmentSpec("host", 30)]
SPEAKERS = ("host", "guest", "imam")


def fresh(segments: list[SegmentSpec] = SEGMENTS) -> LiveRundown:
    return LiveRundown(segments, starts_at=T0, speakers=SPEAKERS)


def played(path: Path) -> LiveRundown:
    """A rundown with a few changes, journaled at ``path``."""
    live = fresh()
    journal = Journal.create(path, live)
    journal.append(live.take("guest", now=T0 + 10, version=0))
    journal.append(live.take_speaker("imam", 45, now=T0 + 20, version=1))
    journal.append(live.hold("One moment", now=T0 + 30, version=2))
    journal.append(live.resume(now=T0 + 40, version=3))
    journal.append(live.insert("host", 15, "host-2", now=T0 + 41, version=4))
    journal.close()
    return live


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_change_is_one_json_line_after_a_header(tmp_path: Path) -> None:
    path = tmp_path / "rundown.journal"
    played(path)
    header, *records = lines(path)
    assert header == {
        "journal": 1,
        "starts_at": T0,
        "loop": False,
        "items": ["host", "guest", "host-2"],
    }
    assert records[0] == {"op": "take", "args": {"item": "guest"}, "now": T0 + 10, "version": 1}
    assert records[1]["args"] == {"speaker": "imam", "duration": 45.0}
    assert records[4]["args"] == {"speaker": "host", "duration": 15.0, "after": "host-2"}
    assert [r["op"] for r in records] == ["take", "take_speaker", "hold", "resume", "insert"]


def test_replay_rebuilds_the_same_rundown(tmp_path: Path) -> None:
    path = tmp_path / "rundown.journal"
    live = played(path)
    again = replay(path, SEGMENTS, speakers=SPEAKERS)
    assert again.version == live.version == 5
    for t in (T0 + 41, T0 + 100, T0 + 300):
        assert again.status(t) == live.status(t)
        assert again.at(t) == live.at(t)


def test_each_line_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    live = fresh()
    journal = Journal.create(tmp_path / "j", live)
    assert len(synced) == 2  # the header, and the folder holding the new file
    journal.append(live.next(now=T0, version=0))
    assert len(synced) == 3
    journal.close()


def test_a_journal_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "j"
    Journal.create(path, fresh()).close()
    with pytest.raises(FileExistsError):
        Journal.create(path, fresh())


def test_reopen_appends(tmp_path: Path) -> None:
    path = tmp_path / "j"
    played(path)
    live = replay(path, SEGMENTS, speakers=SPEAKERS)
    journal = Journal.reopen(path)
    journal.append(live.next(now=T0 + 50, version=5))
    journal.close()
    assert replay(path, SEGMENTS, speakers=SPEAKERS).status(T0 + 50) == live.status(T0 + 50)


def test_open_journal_starts_fresh_then_goes_on_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "rundown.journal"
    live, journal = open_journal(path, SEGMENTS, starts_at=T0, speakers=SPEAKERS)
    assert live.version == 0 and read(path).header.starts_at == T0
    journal.append(live.take("guest", now=T0 + 10, version=0))
    journal.close()
    # after a restart, a later starts_at is ignored: the journal's header says when
    again, journal = open_journal(path, SEGMENTS, starts_at=T0 + 999, speakers=SPEAKERS)
    assert again.status(T0 + 20) == live.status(T0 + 20)
    journal.append(again.next(now=T0 + 30, version=1))
    journal.close()
    assert len(read(path).records) == 2


# --- damage -----------------------------------------------------------------------------


def test_a_torn_last_line_is_ignored_then_cut_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j"
    live = played(path)
    whole = path.read_bytes()
    with open(path, "ab") as file:
        file.write(b'{"op":"next","args":{},"now":17660')  # the crash came mid-write
    with caplog.at_level(logging.WARNING):
        again = replay(path, SEGMENTS, speakers=SPEAKERS)
    assert "torn" in caplog.text and ":7:" in caplog.text
    assert again.status(T0 + 60) == live.status(T0 + 60)
    journal = Journal.reopen(path)
    assert path.read_bytes() == whole
    journal.append(again.next(now=T0 + 60, version=5))
    journal.close()
    contents = read(path)
    assert not contents.torn and len(contents.records) == 6


def test_a_whole_line_without_its_newline_is_still_torn(tmp_path: Path) -> None:
    path = tmp_path / "j"
    played(path)
    path.write_bytes(path.read_bytes() + b'{"op":"next","args":{},"now":1766000050.0,"version":6}')
    contents = read(path)
    assert contents.torn and len(contents.records) == 5


@pytest.mark.parametrize(
    ("damage", "line", "message"),
    [
        (b"not json\n", 7, "not a JSON line"),
        (b"[1, 2]\n", 7, "not a JSON object"),
        (b'{"op": "next", "args": {}, "now": "soon", "version": 6}\n', 7, "now"),
        (b'{"op": 1, "args": {}, "now": 1.0, "version": 6}\n', 7, "op"),
        (b"\xff\xfe\n", 7, "not a JSON line"),
    ],
)
def test_a_damaged_line_is_an_error(tmp_path: Path, damage: bytes, line: int, message: str) -> None:
    path = tmp_path / "j"
    played(path)
    path.write_bytes(
        path.read_bytes() + damage + b'{"op":"next","args":{},"now":1.0,"version":7}\n'
    )
    with pytest.raises(JournalError) as info:
        replay(path, SEGMENTS)
    assert info.value.line == line and message in str(info.value)


def test_a_line_over_64_kib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    played(path)
    long = json.dumps({"op": "hold", "args": {"text": "x" * MAX_LINE}, "now": 1.0, "version": 6})
    path.write_bytes(path.read_bytes() + long.encode() + b"\n")
    with pytest.raises(JournalError, match="longer than 65536 bytes"):
        read(path)
    # exactly at the limit is fine (as JSON, it is not a change though)
    path.write_bytes(b"x" * MAX_LINE + b"\n")
    with pytest.raises(JournalError, match="not a JSON line"):
        read(path)


def test_writing_a_line_over_64_kib_is_refused(tmp_path: Path) -> None:
    segments = [SegmentSpec(f"s{i}", 1, id=f"item-{i:035d}") for i in range(2000)]
    with pytest.raises(JournalError, match="over 65536"):
        Journal.create(tmp_path / "j", LiveRundown(segments, starts_at=T0))
    assert not (tmp_path / "j").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no header"),
        (b'{"journal":1,"starts_at":17', "no header"),
        (b'{"journal":2,"starts_at":1.0,"loop":false,"items":[]}\n', "format 1"),
        (b'{"journal":1,"starts_at":"x","loop":false,"items":[]}\n', "starts_at"),
        (b'{"journal":1,"starts_at":1.0,"loop":false,"items":[1]}\n', "items"),
    ],
)
def test_a_bad_header_is_an_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "j"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=message) as info:
        read(path)
    assert info.value.line == 1


# --- reconciled with the event file by id ------------------------------------------------


def test_changes_to_items_the_event_no_longer_has_are_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j"
    live = fresh()
    journal = Journal.create(path, live)
    journal.append(live.skip("guest", now=T0 + 1, version=0))
    journal.append(live.set_duration("host-2", 90, now=T0 + 2, version=1))
    journal.close()
    # the event file was edited: guest's item is gone, a new item was added
    edited = [
        SegmentSpec("host", 60),
        SegmentSpec("imam", 30, id="prayer"),
        SegmentSpec("host", 30),
    ]
    with caplog.at_level(logging.WARNING):
        again = replay(path, edited, speakers=SPEAKERS)
    assert "no longer has the items guest" in caplog.text
    assert ":2: skip dropped" in caplog.text and "no item 'guest'" in caplog.text
    assert again.version == 1
    assert [(i.id, i.duration) for i in again.items(T0 + 2)] == [
        ("host", 60),
        ("prayer", 30),
        ("host-2", 90),
    ]


def test_a_loop_is_replayed_as_a_loop(tmp_path: Path) -> None:
    path = tmp_path / "j"
    live = LiveRundown([SegmentSpec("a", 60), SegmentSpec("b", 40)], starts_at=T0, loop=True)
    journal = Journal.create(path, live)
    journal.append(live.skip("b~2", now=T0 + 110, version=0))
    journal.close()
    again = replay(path, [SegmentSpec("a", 60), SegmentSpec("b", 40)])
    assert again.loop and again.status(T0 + 150) == live.status(T0 + 150)


# --- apply: operations by name ------------------------------------------------------------


def test_apply_calls_the_operation() -> None:
    live = fresh()
    change = apply(live, "insert", {"speaker": "imam", "duration": 30}, now=T0, version=0)
    assert change.added == "imam.1" and live.version == 1
    apply(live, "move", {"item": "imam.1", "after": None}, now=T0, version=1)
    apply(live, "hold", {}, now=T0 + 1, version=2)
    assert live.state(T0 + 1) == "hold"


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("jump", {}, "op"),
        ("next", {"item": "host"}, "item"),
        ("take", {}, "item"),
        ("take", {"item": 3}, "item"),
        ("insert", {"speaker": "imam", "duration": "30s"}, "duration"),
        ("move", {"item": "guest", "after": 1}, "after"),
        ("hold", {"text": None}, "text"),
        ("next", {"now": 5}, "now"),
    ],
)
def test_apply_refuses_bad_data(op: str, args: dict[str, Any], field: str) -> None:
    live = fresh()
    with pytest.raises(RundownError) as info:
        apply(live, op, args, now=T0, version=0)
    assert info.value.field == field and live.version == 0


def test_the_journal_knows_every_operation() -> None:
    ops = {
        name
        for name in dir(LiveRundown)
        if not name.startswith("_")
        and name not in ("at", "status", "items", "state", "ends_at", "version")
    }
    assert ops == set(journal_module.OPERATIONS)
