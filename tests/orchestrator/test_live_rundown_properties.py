"""Properties of LiveRundown: after any operations at increasing instants, the rundown
keeps the invariants of orchestrator/rundown.py, and a journal replays it exactly."""

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.event import SegmentSpec
from orchestrator.journal import Journal, replay
from orchestrator.live_rundown import Change, Item, LiveRundown, RundownError, StaleVersion
from orchestrator.rundown import Rundown, Slot

T0 = 1_766_000_000.0  # whole seconds keep the arithmetic exact
SPEAKERS = ("s0", "s1", "s2", "imam")
OPS = (
    "next",
    "take",
    "take_speaker",
    "set_duration",
    "insert",
    "skip",
    "move",
    "hold",
    "resume",
    "end",
)


@st.composite
def rundowns(draw: Any, hard_starts: bool = True) -> list[SegmentSpec]:
    """Up to 6 segments, whole-second durations, hard starts in order (ties allowed)."""
    count = draw(st.integers(1, 6))
    durations = draw(st.lists(st.integers(1, 900), min_size=count, max_size=count))
    durations = [max(d, draw(st.integers(1, 900))) for d in durations]  # mostly long
    flags = [False] * count
    if hard_starts:
        flags = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    offsets = sorted(
        draw(st.lists(st.integers(-600, 3600), min_size=sum(flags), max_size=sum(flags)))
    )
    hard = iter(offsets)
    return [
        SegmentSpec(
            f"s{draw(st.integers(0, 2))}",
            float(d),
            datetime.fromtimestamp(T0 + next(hard), tz=UTC) if flag else None,
        )
        for d, flag in zip(durations, flags, strict=True)
    ]


@dataclass(frozen=True)
class Step:
    """One operation ``dt`` seconds after the previous; ``a``, ``b`` pick items."""

    dt: int
    op: str
    a: int
    b: int
    duration: int
    stale: bool


steps = st.lists(
    st.builds(
        Step,
        dt=st.one_of(st.integers(0, 20), st.integers(0, 120), st.integers(0, 1200)),
        op=st.sampled_from([*OPS[:-1] * 3, "end"]),
        a=st.integers(0, 20),
        b=st.integers(0, 20),
        duration=st.one_of(st.integers(1, 600), st.just(0)),
        stale=st.sampled_from([False] * 7 + [True]),
    ),
    max_size=14,
)


@dataclass
class Run:
    """A LiveRundown driven by steps, with what the test knows of it."""

    live: LiveRundown
    now: float
    applied: int = 0
    changes: list[Change] = field(default_factory=list)
    early: set[str] = field(default_factory=set)  # put on air by next/take, maybe early

    def do(self, step: Step) -> None:
        self.now += step.dt
        live, now = self.live, self.now
        items = live.items(now)
        # mostly items still to come (or on air), sometimes any, or none at all
        ids = [i.id for i in items if i.state not in ("done", "skipped")] or ["nobody"]
        if step.a >= 15:
            ids = [i.id for i in items] + ["nobody"]
        item = ids[step.a % len(ids)]
        after = None if step.b == 0 else ids[(step.b - 1) % len(ids)]
        speaker = SPEAKERS[step.b % len(SPEAKERS)] if step.b < 18 else "nobody"
        calls = {
            "next": lambda v: live.next(now=now, version=v),
            "take": lambda v: live.take(item, now=now, version=v),
            "take_speaker": lambda v: live.take_speaker(speaker, step.duration, now=now, version=v),
            "set_duration": lambda v: live.set_duration(item, step.duration, now=now, version=v),
            "insert": lambda v: live.insert(speaker, step.duration, after, now=now, version=v),
            "skip": lambda v: live.skip(item, now=now, version=v),
            "move": lambda v: live.move(item, after, now=now, version=v),
            "hold": lambda v: live.hold("stand by" * (step.a % 2), now=now, version=v),
            "resume": lambda v: live.resume(now=now, version=v),
            "end": lambda v: live.end(now=now, version=v),
        }
        before = live.items(now)
        try:
            change = calls[step.op](live.version - 1 if step.stale else live.version)
        except RundownError as error:
            assert isinstance(error, StaleVersion) == step.stale
            assert live.items(now) == before and live.version == self.applied
            return
        assert not step.stale
        self.applied += 1
        self.changes.append(change)
        assert change.version == live.version == self.applied and change.op == step.op
        assert set(change.cut) <= {i.id for i in live.items(now) if i.cut}
        if step.op in ("next", "take"):
            self.early.update(i.id for i in live.items(now) if i.state == "on")


def check(run: Run, t: float) -> None:
    """Every invariant of the rundown at ``t``."""
    live = run.live
    status = live.status(t)
    items = status.items
    assert status.version == live.version == run.applied
    assert len({i.id for i in items}) == len(items)
    # ordered, never overlapping
    for item in items:
        assert item.start <= item.end
    for earlier, later in pairwise(items):
        assert earlier.end <= later.start, (earlier, later)
    # hard starts exact: an item with one starts at it (unless the operator put it on
    # early) and everything before it has ended by then
    hard_starts = {i.hard_start for i in items if i.hard_start is not None}
    for position, item in enumerate(items):
        if item.hard_start is None or item.state == "skipped" or item.id in run.early:
            continue
        assert item.start == item.hard_start, item
        assert all(i.end <= item.hard_start for i in items[:position])
    # durations respected, except cuts (which end at a hard start)
    for item in items:
        if item.state == "skipped":
            continue
        air = item.end - item.start - item.held
        assert air <= item.duration
        if item.cut:
            assert item.end in hard_starts
        if item.state in ("on", "next", "upcoming"):
            assert (air < item.duration) == item.cut, item
    # exactly one on air when on; who is on and next agrees with at()
    on = [i for i in items if i.state == "on"]
    following = [i for i in items if i.state == "next"]
    if status.state == "on":
        assert len(on) == 1
    elif status.state != "hold":
        assert not on
    assert len(on) <= 1 and len(following) <= 1
    cue = live.at(t)
    if status.state == "ended":
        assert cue.state == "ended" and cue.current is None and cue.next is None
        return
    assert cue.state == ("gap" if status.state == "hold" else status.state)
    if status.state == "on":
        assert same(cue.current, on[0]) and cue.remaining == on[0].end - t
    else:
        assert cue.current is None
    expected = (on or following) if status.state == "hold" else following
    if expected:
        assert same(cue.next, expected[0])
    elif live.loop:
        assert cue.next is not None and cue.next.id.endswith(f"~{status.lap + 1}")
    else:
        assert cue.next is None
    if status.state in ("before", "gap"):
        assert cue.next is not None and cue.remaining == cue.next.start - t > 0


def same(slot: Slot | None, item: Item) -> bool:
    return (
        slot is not None
        and getattr(slot, "id", None) == item.id
        and (slot.speaker, slot.start, slot.end) == (item.speaker, item.start, item.end)
    )


def drive(segments: list[SegmentSpec], start: int, plan: list[Step], loop: bool) -> Run:
    live = LiveRundown(segments, starts_at=T0, loop=loop, speakers=SPEAKERS)
    run = Run(live, T0 + start)
    check(run, run.now)
    for step in plan:
        earlier = live.items(run.now)
        if step.dt and live.state(run.now) != "hold":
            # nothing drifts while no one edits: what was planned still is
            later = live.items(run.now + step.dt)
            for old, new in zip(earlier, later, strict=False):
                if old.id == new.id and (old.start > run.now + step.dt or old.state == "done"):
                    assert (old.start, old.end) == (new.start, new.end)
        for mid in (step.dt / 3, step.dt / 2):
            check(run, run.now + mid // 1)
        run.do(step)
        check(run, run.now)
        check(run, run.now + 1)
    return run


@settings(deadline=None)
@given(rundowns(), st.integers(-300, 300), steps)
def test_any_operations_keep_the_invariants(
    segments: list[SegmentSpec], start: int, plan: list[Step]
) -> None:
    drive(segments, start, plan, loop=False)


@settings(deadline=None)
@given(rundowns(hard_starts=False), st.integers(-300, 3000), steps)
def test_any_operations_keep_a_loop_going(
    segments: list[SegmentSpec], start: int, plan: list[Step]
) -> None:
    run = drive(segments, start, plan, loop=True)
    if run.live.state(run.now) != "ended":
        assert run.live.state(run.now + 10**6) in ("on", "hold")


@settings(deadline=None)
@given(rundowns(), st.integers(-300, 300), st.lists(st.integers(-700, 5000), max_size=20))
def test_unedited_it_is_the_rundown(
    segments: list[SegmentSpec], start: int, offsets: list[int]
) -> None:
    starts_at = T0 + start
    live = LiveRundown(segments, starts_at=starts_at)
    rundown = Rundown(segments, starts_at=starts_at)
    for offset in sorted(offsets):
        mine, theirs = live.at(starts_at + offset), rundown.at(starts_at + offset)
        assert (mine.state, mine.remaining) == (theirs.state, theirs.remaining)
        assert plain(mine.current) == plain(theirs.current)
        assert plain(mine.next) == plain(theirs.next)
    assert live.ends_at(starts_at) == rundown.ends_at


@settings(deadline=None)
@given(rundowns(hard_starts=False), st.lists(st.integers(-100, 10**6), max_size=20))
def test_unedited_it_loops_as_the_rundown_does(
    segments: list[SegmentSpec], offsets: list[int]
) -> None:
    live = LiveRundown(segments, starts_at=T0, loop=True)
    rundown = Rundown(segments, starts_at=T0, loop=True)
    for offset in sorted(offsets):
        mine, theirs = live.at(T0 + offset), rundown.at(T0 + offset)
        assert (mine.state, mine.remaining) == (theirs.state, theirs.remaining)
        assert plain(mine.current) == plain(theirs.current)
        assert plain(mine.next) == plain(theirs.next)


def plain(slot: Slot | None) -> tuple[int, str, float, float] | None:
    return None if slot is None else (slot.index, slot.speaker, slot.start, slot.end)


@settings(deadline=None, max_examples=50)
@given(rundowns(), st.booleans(), st.integers(-300, 300), steps, st.integers(0, 5000))
def test_a_journal_replays_to_the_same_rundown(
    segments: list[SegmentSpec], loop: bool, start: int, plan: list[Step], later: int
) -> None:
    if loop:
        segments = [SegmentSpec(s.speaker, s.duration) for s in segments]
    live = LiveRundown(segments, starts_at=T0, loop=loop, speakers=SPEAKERS)
    run = Run(live, T0 + start)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rundown.journal"
        journal = Journal.create(path, live)
        for step in plan:
            run.do(step)
            if run.changes:
                journal.append(run.changes.pop())
        journal.close()
        again = replay(path, segments, speakers=SPEAKERS)
    assert again.version == live.version
    for t in (run.now, run.now + 1, run.now + later, T0 + start):
        assert again.status(t) == live.status(t)
        assert again.at(t) == live.at(t)
