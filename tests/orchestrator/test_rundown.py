from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, get_args

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from orchestrator.event import SegmentSpec
from orchestrator.rundown import (
    Cue,
    OnAir,
    Rundown,
    Slot,
    SourceState,
    SourceStateName,
    decide,
)

T0 = 1_766_000_000.0  # an epoch instant; whole seconds keep the arithmetic exact


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, tz=UTC)


def seg(speaker: str, seconds: float, hard: float | None = None) -> SegmentSpec:
    return SegmentSpec(speaker, seconds, None if hard is None else at(hard))


# --- layout ---------------------------------------------------------------------------


def test_slots_follow_each_other() -> None:
    rundown = Rundown([seg("a", 60), seg("b", 30), seg("c", 90)], starts_at=T0)
    assert rundown.slots == (
        Slot(0, "a", T0, T0 + 60),
        Slot(1, "b", T0 + 60, T0 + 90),
        Slot(2, "c", T0 + 90, T0 + 180),
    )
    assert rundown.ends_at == T0 + 180
    assert rundown.slots[1].duration == 30


def test_hard_start_cuts_an_overrun() -> None:
    rundown = Rundown([seg("a", 60), seg("b", 60), seg("c", 60, hard=100)], starts_at=T0)
    assert [(s.start - T0, s.end - T0) for s in rundown.slots] == [(0, 60), (60, 100), (100, 160)]


def test_hard_start_after_the_previous_end_leaves_a_gap() -> None:
    rundown = Rundown([seg("a", 60), seg("b", 60, hard=300)], starts_at=T0)
    assert [(s.start - T0, s.end - T0) for s in rundown.slots] == [(0, 60), (300, 360)]
    cue = rundown.at(T0 + 100)
    assert cue == Cue("gap", None, rundown.slots[1], 200)


def test_late_start_collapses_slots_before_a_passed_hard_start() -> None:
    # The operator started 10 minutes late; the keynote's hard start was 5 minutes ago.
    rundown = Rundown(
        [seg("a", 120), seg("b", 120), seg("keynote", 600, hard=-300), seg("c", 60)],
        starts_at=T0,
    )
    a, b, keynote, c = rundown.slots
    assert a == Slot(0, "a", T0 - 300, T0 - 300) and a.duration == 0
    assert b == Slot(1, "b", T0 - 300, T0 - 300)
    assert keynote == Slot(2, "keynote", T0 - 300, T0 + 300)
    assert c == Slot(3, "c", T0 + 300, T0 + 360)
    assert rundown.at(T0 - 400) == Cue("before", None, keynote, 100)
    # empty slots are never on air and never next
    assert rundown.at(T0 - 300).current == keynote
    assert rundown.at(T0).next == c


def test_hard_start_on_the_first_segment_keeps_the_starting_slate_up() -> None:
    rundown = Rundown([seg("a", 60, hard=600)], starts_at=T0)
    assert rundown.at(T0).state == "before"
    assert rundown.at(T0).remaining == 600


def test_at_states_and_remaining() -> None:
    rundown = Rundown([seg("a", 60), seg("b", 30)], starts_at=T0)
    a, b = rundown.slots
    assert rundown.at(T0 - 5) == Cue("before", None, a, 5)
    assert rundown.at(T0) == Cue("on", a, b, 60)
    assert rundown.at(T0 + 59.5) == Cue("on", a, b, 0.5)
    assert rundown.at(T0 + 60) == Cue("on", b, None, 30)
    assert rundown.at(T0 + 90) == Cue("ended", None, None, 0)
    assert rundown.at(T0 + 1e6) == Cue("ended", None, None, 0)


def test_empty_rundown_has_ended() -> None:
    rundown = Rundown([], starts_at=T0)
    assert rundown.ends_at == T0 and rundown.at(T0 - 1).state == "ended"


@pytest.mark.parametrize(
    "segments",
    [
        [seg("a", 60, hard=100), seg("b", 60, hard=50)],
    ],
)
def test_hard_starts_must_not_go_backwards(segments: list[SegmentSpec]) -> None:
    with pytest.raises(ValueError, match="hard start"):
        Rundown(segments, starts_at=T0)


# --- looping (the demo) ---------------------------------------------------------------


def test_loop_wraps_with_real_instants() -> None:
    rundown = Rundown([seg("a", 60), seg("b", 40)], starts_at=T0, loop=True)
    cue = rundown.at(T0 + 250)  # lap 2, 50 s in
    assert cue == Cue("on", Slot(0, "a", T0 + 200, T0 + 260), Slot(1, "b", T0 + 260, T0 + 300), 10)
    last = rundown.at(T0 + 180)  # lap 1, in "b"
    assert last.current == Slot(1, "b", T0 + 160, T0 + 200)
    assert last.next == Slot(0, "a", T0 + 200, T0 + 260)
    assert rundown.at(T0 - 1).state == "before"


def test_loop_rejects_hard_starts_and_empty_rundowns() -> None:
    with pytest.raises(ValueError):
        Rundown([seg("a", 60, hard=10)], starts_at=T0, loop=True)
    with pytest.raises(ValueError):
        Rundown([], starts_at=T0, loop=True)


# --- decide ---------------------------------------------------------------------------

A = Slot(0, "a", T0, T0 + 60)
B = Slot(1, "b", T0 + 60, T0 + 120)
ON_A = Cue("on", A, B, 30)


@pytest.mark.parametrize(
    ("cue", "states", "fallbacks", "expected"),
    [
        (Cue("before", None, A, 5), {}, {}, OnAir("slate", None, "starting", None, A)),
        (Cue("gap", None, B, 5), {}, {}, OnAir("slate", None, "between", None, B)),
        (Cue("ended", None, None, 0), {}, {}, OnAir("slate", None, "ended", None, None)),
        (ON_A, {"a": SourceState.READY}, {}, OnAir("speaker", "a", None, A, B)),
        (ON_A, {"a": SourceState.READY}, {"a": True}, OnAir("speaker", "a", None, A, B)),
        (ON_A, {"a": SourceState.LOST}, {"a": True}, OnAir("fallback", "a", None, A, B)),
        (ON_A, {}, {"a": True}, OnAir("fallback", "a", None, A, B)),
        (ON_A, {"a": SourceState.ENDED}, {}, OnAir("slate", None, "between", A, B)),
        (ON_A, {"a": SourceState.CONNECTING}, {}, OnAir("slate", "a", "joining", A, B)),
        (ON_A, {}, {"a": False}, OnAir("slate", "a", "joining", A, B)),
        (ON_A, {"a": SourceState.LOST}, {}, OnAir("slate", "a", "reconnecting", A, B)),
        (ON_A, {"b": SourceState.READY}, {"b": True}, OnAir("slate", "a", "joining", A, B)),
    ],
)
def test_decide(
    cue: Cue, states: dict[str, SourceState], fallbacks: dict[str, bool], expected: OnAir
) -> None:
    assert decide(cue, states, fallbacks) == expected


@pytest.mark.parametrize("cue", [Cue("gap", None, A, 20), ON_A, Cue("before", None, A, 5)])
def test_a_hold_puts_up_its_slate_whatever_the_cue(cue: Cue) -> None:
    held = decide(cue, {"a": SourceState.READY}, {}, hold="Back in a moment")
    assert held == OnAir("slate", None, "hold", None, None, "Back in a moment")


def test_a_hold_does_not_outlast_the_end() -> None:
    ended = Cue("ended", None, None, 0)
    assert decide(ended, {}, {}, hold="Wait").slate == "ended"


# --- properties -----------------------------------------------------------------------


@st.composite
def rundowns(draw: Any, hard_starts: bool = True) -> tuple[list[SegmentSpec], float]:
    """Segments with whole-second durations and hard starts in order (ties allowed)."""
    count = draw(st.integers(min_value=1, max_value=8))
    durations = draw(st.lists(st.integers(1, 3600), min_size=count, max_size=count))
    flags = [False] * count
    if hard_starts:
        flags = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    hard_count = sum(flags)
    # Offsets from starts_at; negative ones mean the event started late.
    offsets = sorted(
        draw(st.lists(st.integers(-7200, 36000), min_size=hard_count, max_size=hard_count))
    )
    hard = iter(offsets)
    segments = [
        seg(f"s{i}", float(d), next(hard) if flag else None)
        for i, (d, flag) in enumerate(zip(durations, flags, strict=True))
    ]
    return segments, T0


def playable(rundown: Rundown) -> list[Slot]:
    return [s for s in rundown.slots if s.end > s.start]


@given(rundowns())
def test_slots_are_ordered_and_never_overlap(case: tuple[list[SegmentSpec], float]) -> None:
    segments, starts_at = case
    slots = Rundown(segments, starts_at=starts_at).slots
    assert [s.index for s in slots] == list(range(len(segments)))
    for slot in slots:
        assert slot.start <= slot.end
    for earlier, later in pairwise(slots):
        assert earlier.end <= later.start


@given(rundowns())
def test_only_a_later_hard_start_shortens_a_slot(case: tuple[list[SegmentSpec], float]) -> None:
    segments, starts_at = case
    slots = Rundown(segments, starts_at=starts_at).slots
    hard = [s.start.timestamp() for s in segments if s.start is not None]
    for slot, segment in zip(slots, segments, strict=True):
        assert slot.duration <= segment.duration
        if slot.duration < segment.duration:
            assert slot.end in hard


@given(rundowns(hard_starts=False))
def test_without_hard_starts_slots_tile_the_rundown(case: tuple[list[SegmentSpec], float]) -> None:
    segments, starts_at = case
    rundown = Rundown(segments, starts_at=starts_at)
    slots = rundown.slots
    assert slots[0].start == starts_at
    for earlier, later in pairwise(slots):
        assert earlier.end == later.start
    assert rundown.ends_at == starts_at + sum(s.duration for s in segments)
    assert [s.duration for s in slots] == [s.duration for s in segments]


@given(rundowns())
def test_hard_starts_are_honoured_exactly(case: tuple[list[SegmentSpec], float]) -> None:
    segments, starts_at = case
    slots = Rundown(segments, starts_at=starts_at).slots
    for i, segment in enumerate(segments):
        if segment.start is None:
            continue
        hard = segment.start.timestamp()
        assert slots[i].start == hard
        assert all(s.end <= hard for s in slots[:i])


@given(rundowns(), st.floats(0, 1))
def test_gaps_before_a_hard_start_report_gap(
    case: tuple[list[SegmentSpec], float], fraction: float
) -> None:
    segments, starts_at = case
    rundown = Rundown(segments, starts_at=starts_at)
    checked = 0
    for i, segment in enumerate(segments):
        # A hard-start slot tied with a later hard start is empty, so never "next".
        if segment.start is None or rundown.slots[i].duration == 0:
            continue
        before = [s for s in playable(rundown) if s.index < i]
        gap_start = before[-1].end if before else starts_at
        hard = rundown.slots[i].start
        t = gap_start + (hard - gap_start) * fraction
        if not gap_start <= t < hard:
            continue
        cue = rundown.at(t)
        assert cue.state == ("gap" if before else "before")
        assert cue.next == rundown.slots[i]
        assert cue.remaining == pytest.approx(hard - t)
        assert decide(cue, {}, {}).slate == ("between" if before else "starting")
        checked += 1
    assume(checked > 0)


@given(rundowns(), st.integers(-10000, 80000), st.sampled_from([0.0, 0.25, 0.5]))
def test_at_agrees_with_the_slots(
    case: tuple[list[SegmentSpec], float], offset: int, fraction: float
) -> None:
    segments, starts_at = case
    rundown = Rundown(segments, starts_at=starts_at)
    t = starts_at + offset + fraction
    cue = rundown.at(t)
    slots = playable(rundown)
    containing = [s for s in slots if s.start <= t < s.end]
    upcoming = [s for s in slots if s.start > t]
    if t >= rundown.ends_at:
        assert cue == Cue("ended", None, None, 0)
    elif containing:
        (slot,) = containing
        assert cue == Cue("on", slot, upcoming[0] if upcoming else None, slot.end - t)
    else:
        expected = Cue("gap" if any(s.end <= t for s in slots) else "before", None, upcoming[0], 0)
        assert cue == replace(expected, remaining=upcoming[0].start - t)


@given(rundowns(hard_starts=False), st.integers(0, 10**6), st.integers(1, 50))
def test_loop_wraps(case: tuple[list[SegmentSpec], float], offset: int, laps: int) -> None:
    segments, starts_at = case
    once = Rundown(segments, starts_at=starts_at)
    looped = Rundown(segments, starts_at=starts_at, loop=True)
    period = once.ends_at - starts_at
    t = starts_at + offset
    lap, into = divmod(offset, int(period))
    reference = once.at(starts_at + into)
    cue = looped.at(t)
    assert cue.state == "on" and reference.current is not None and cue.current is not None
    assert cue.current.index == reference.current.index
    assert cue.current.start == reference.current.start + lap * period
    assert cue.remaining == reference.remaining
    assert cue.next is not None and cue.next.start == cue.current.end
    expected_next = (cue.current.index + 1) % len(segments)
    assert cue.next.index == expected_next
    later = looped.at(t + laps * period)
    assert later.current is not None
    assert later.current.index == cue.current.index
    assert later.current.start == cue.current.start + laps * period


@given(
    st.lists(st.floats(0.001, 7200, allow_nan=False), min_size=1, max_size=8),
    st.floats(0, 1e6),
)
def test_fractional_durations_keep_slots_ordered(durations: list[float], offset: float) -> None:
    rundown = Rundown([seg("s", d) for d in durations], starts_at=T0, loop=True)
    for earlier, later in pairwise(rundown.slots):
        assert earlier.end == later.start
    cue = rundown.at(T0 + offset)
    assert cue.state == "on" and cue.current is not None
    assert cue.current.start - 1e-6 <= T0 + offset < cue.current.end + 1e-6


def test_each_source_state_name_has_its_state() -> None:
    # (mypy checks the other way: every member's value is a SourceStateName.)
    assert sorted(s.value for s in SourceState) == sorted(get_args(SourceStateName))
