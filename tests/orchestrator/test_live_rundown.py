import math
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.event import SegmentSpec
from orchestrator.live_rundown import (
    DEFAULT_HOLD_TEXT,
    Change,
    LiveRundown,
    LiveSlot,
    RundownError,
    StaleVersion,
)
from orchestrator.rundown import Cue, Rundown, decide

T0 = 1_766_000_000.0  # whole seconds keep the arithmetic exact


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, tz=UTC)


def seg(speaker: str, seconds: float, hard: float | None = None, **kw: Any) -> SegmentSpec:
    return SegmentSpec(speaker, seconds, None if hard is None else at(hard), **kw)


def show(**kw: Any) -> LiveRundown:
    """host 60 s, guest 120 s, host 30 s (ids host, guest, host-2), from T0."""
    segments = kw.pop("segments", [seg("host", 60), seg("guest", 120), seg("host", 30)])
    return LiveRundown(segments, starts_at=T0, speakers=("host", "guest", "imam"), **kw)


def table(live: LiveRundown, t: float) -> list[tuple[str, str, float, float]]:
    """Each item as (id, state, start, end), times relative to T0."""
    return [(i.id, i.state, i.start - T0, i.end - T0) for i in live.items(T0 + t)]


def refuses(field: str, call: Any, *args: Any, **kwargs: Any) -> RundownError:
    """Assert the call raises a RundownError on ``field`` and changes nothing."""
    live: LiveRundown = call.__self__
    before, version = live.items(kwargs["now"]), live.version
    with pytest.raises(RundownError) as info:
        call(*args, **kwargs)
    assert info.value.field == field, info.value
    assert live.version == version and live.items(kwargs["now"]) == before
    return info.value


# --- as planned -------------------------------------------------------------------------


@pytest.mark.parametrize("t", [-5, 0, 30, 60, 179, 180, 209, 210, 10_000])
def test_unedited_it_answers_as_the_rundown_does(t: float) -> None:
    segments = [seg("host", 60), seg("guest", 120), seg("host", 30)]
    live, rundown = show(segments=segments), Rundown(segments, starts_at=T0)
    cue, expected = live.at(T0 + t), rundown.at(T0 + t)
    assert (cue.state, cue.remaining) == (expected.state, expected.remaining)
    for mine, theirs in ((cue.current, expected.current), (cue.next, expected.next)):
        assert (mine is None) == (theirs is None)
        if mine is not None and theirs is not None:
            assert (mine.index, mine.speaker, mine.start, mine.end) == (
                theirs.index,
                theirs.speaker,
                theirs.start,
                theirs.end,
            )
    assert live.ends_at(T0 + t) == rundown.ends_at


def test_items_and_states_as_time_passes() -> None:
    live = show()
    assert live.state(T0 - 1) == "before"
    assert table(live, -1) == [
        ("host", "next", 0, 60),
        ("guest", "upcoming", 60, 180),
        ("host-2", "upcoming", 180, 210),
    ]
    assert table(live, 61) == [
        ("host", "done", 0, 60),
        ("guest", "on", 60, 180),
        ("host-2", "next", 180, 210),
    ]
    assert live.state(T0 + 210) == "ended" and live.at(T0 + 210) == Cue("ended", None, None, 0)
    assert [i.state for i in live.items(T0 + 210)] == ["done", "done", "done"]
    cue = live.at(T0 + 61)
    assert isinstance(cue.current, LiveSlot) and cue.current.id == "guest"
    assert decide(cue, {}, {}).slot == cue.current


def test_a_gap_before_a_hard_start() -> None:
    live = show(segments=[seg("host", 60), seg("guest", 60, hard=100)])
    assert live.state(T0 + 70) == "gap"
    assert live.at(T0 + 70).remaining == 30
    assert table(live, 70) == [("host", "done", 0, 60), ("guest", "next", 100, 160)]


def test_a_late_start_cuts_as_the_rundown_does() -> None:
    segments = [seg("a", 120), seg("keynote", 600, hard=-300), seg("c", 60)]
    live, rundown = show(segments=segments), Rundown(segments, starts_at=T0)
    assert live.at(T0 - 400).next == LiveSlot(1, "keynote", T0 - 300, T0 + 300, "keynote")
    assert live.at(T0).current is not None and rundown.at(T0).current is not None
    assert live.at(T0).current.start == rundown.at(T0).current.start
    (a, *_) = live.items(T0)
    assert (a.state, a.cut, a.start, a.end) == ("skipped", True, T0 - 300, T0 - 300)


# --- next, take, take_speaker -----------------------------------------------------------


def test_next_ends_the_item_on_air_now() -> None:
    live = show()
    change = live.next(now=T0 + 20, version=0)
    assert change == Change(1, "next", {}, T0 + 20)
    assert live.version == 1
    assert table(live, 20) == [
        ("host", "done", 0, 20),
        ("guest", "on", 20, 140),
        ("host-2", "next", 140, 170),
    ]


def test_next_before_the_show_starts_it_now_and_on_the_last_item_ends_it() -> None:
    live = show()
    live.next(now=T0 - 30, version=0)
    assert table(live, -30)[0] == ("host", "on", -30, 30)
    live.take("host-2", now=T0, version=1)
    live.skip("guest", now=T0, version=2)
    live.next(now=T0 + 5, version=3)
    assert live.state(T0 + 5) == "ended" and live.ends_at(T0 + 5) == T0 + 5
    refuses("state", live.next, now=T0 + 6, version=4)


def test_next_in_a_gap_starts_the_hard_start_item_early() -> None:
    live = show(segments=[seg("host", 60), seg("guest", 60, hard=100)])
    live.next(now=T0 + 70, version=0)
    assert table(live, 70)[1] == ("guest", "on", 70, 130)


def test_take_jumps_and_the_items_between_stay_to_come() -> None:
    live = show(segments=[seg("a", 60), seg("b", 60), seg("c", 60), seg("d", 60)])
    change = live.take("c", now=T0 + 10, version=0)
    assert change.version == 1 and change.args == {"item": "c"}
    assert table(live, 10) == [
        ("a", "done", 0, 10),
        ("c", "on", 10, 70),
        ("b", "next", 70, 130),
        ("d", "upcoming", 130, 190),
    ]


def test_take_refuses() -> None:
    live = show()
    live.skip("host-2", now=T0 + 10, version=0)
    assert (
        "no item 'nobody'" in refuses("item", live.take, "nobody", now=T0 + 10, version=1).message
    )
    assert "on air" in refuses("item", live.take, "host", now=T0 + 10, version=1).message
    assert "skipped" in refuses("item", live.take, "host-2", now=T0 + 10, version=1).message
    live.next(now=T0 + 20, version=1)
    assert "already played" in refuses("item", live.take, "host", now=T0 + 30, version=2).message


def test_take_speaker_puts_an_unplanned_item_on_now() -> None:
    live = show()
    change = live.take_speaker("imam", 45, now=T0 + 10, version=0)
    assert change.added == "imam.1" and change.args == {"speaker": "imam", "duration": 45.0}
    assert table(live, 10)[:3] == [
        ("host", "done", 0, 10),
        ("imam.1", "on", 10, 55),
        ("guest", "next", 55, 175),
    ]
    assert live.at(T0 + 10).current == LiveSlot(3, "imam", T0 + 10, T0 + 55, "imam.1")
    assert live.take_speaker("imam", 5, now=T0 + 20, version=1).added == "imam.2"
    assert live.take_speaker("host", 5, now=T0 + 30, version=2).added == "host.1"
    refuses("speaker", live.take_speaker, "nobody", 5, now=T0 + 40, version=3)
    refuses("duration", live.take_speaker, "imam", 0, now=T0 + 40, version=3)


def test_speakers_default_to_those_in_the_rundown() -> None:
    live = LiveRundown([seg("host", 60)], starts_at=T0)
    refuses("speaker", live.take_speaker, "imam", 5, now=T0, version=0)
    live.take_speaker("host", 5, now=T0, version=0)


# --- set_duration ---------------------------------------------------------------------


def test_set_duration_of_the_item_on_air_and_one_to_come() -> None:
    live = show()
    live.set_duration("host", 90, now=T0 + 10, version=0)
    live.set_duration("host-2", 10, now=T0 + 10, version=1)
    assert table(live, 10) == [
        ("host", "on", 0, 90),
        ("guest", "next", 90, 210),
        ("host-2", "upcoming", 210, 220),
    ]


def test_shortening_the_item_on_air_below_its_elapsed_time_ends_it_now() -> None:
    live = show()
    live.set_duration("host", 20, now=T0 + 30, version=0)
    (host, guest, _) = live.items(T0 + 30)
    assert (host.state, host.end, host.duration) == ("done", T0 + 30, 30)  # what it played
    assert (guest.state, guest.start) == ("on", T0 + 30)


@pytest.mark.parametrize("value", [0, -1, 24 * 3600 + 1, math.nan, math.inf, True, "60"])
def test_a_duration_out_of_range_is_refused(value: Any) -> None:
    live = show()
    refuses("duration", live.set_duration, "guest", value, now=T0, version=0)
    refuses("duration", live.insert, "guest", value, now=T0, version=0)


def test_set_duration_of_a_played_item_is_refused() -> None:
    live = show()
    live.next(now=T0 + 10, version=0)
    refuses("item", live.set_duration, "host", 30, now=T0 + 10, version=1)
    refuses("item", live.set_duration, "nobody", 30, now=T0 + 10, version=1)


# --- insert, skip, move -----------------------------------------------------------------


def test_insert_at_the_front_or_after_an_item() -> None:
    live = show()
    assert live.insert("imam", 15, now=T0 + 10, version=0).added == "imam.1"
    live.insert("imam", 5, "guest", now=T0 + 10, version=1)
    live.insert("guest", 5, "host", now=T0 + 10, version=2)  # after the item on air: next
    assert [(i, s) for i, s, *_ in table(live, 10)] == [
        ("host", "on"),
        ("guest.1", "next"),
        ("imam.1", "upcoming"),
        ("guest", "upcoming"),
        ("imam.2", "upcoming"),
        ("host-2", "upcoming"),
    ]
    assert live.ends_at(T0 + 10) == T0 + 210 + 25


def test_insert_in_a_gap_starts_no_earlier_than_now() -> None:
    live = show(segments=[seg("host", 60), seg("guest", 60, hard=300)])
    live.insert("host", 30, now=T0 + 100, version=0)  # the front of what is to come: now
    assert table(live, 100)[1:] == [("host.1", "on", 100, 130), ("guest", "next", 300, 360)]


def test_insert_refuses() -> None:
    live = show()
    live.next(now=T0 + 10, version=0)
    refuses("after", live.insert, "imam", 5, "host", now=T0 + 10, version=1)
    refuses("after", live.insert, "imam", 5, "nobody", now=T0 + 10, version=1)
    refuses("speaker", live.insert, "nobody", 5, now=T0 + 10, version=1)


def test_skip_an_item_to_come() -> None:
    live = show()
    live.skip("guest", now=T0 + 10, version=0)
    assert table(live, 10) == [
        ("host", "on", 0, 60),
        ("guest", "skipped", 60, 60),
        ("host-2", "next", 60, 90),
    ]
    assert [i.state for i in live.items(T0 + 70)] == ["done", "skipped", "on"]
    assert "on air" in refuses("item", live.skip, "host", now=T0 + 10, version=1).message
    assert "skipped" in refuses("item", live.skip, "guest", now=T0 + 10, version=1).message


def test_move_an_item_to_come() -> None:
    live = show(segments=[seg("a", 60), seg("b", 60), seg("c", 60), seg("d", 60)])
    live.move("d", now=T0 + 10, version=0)  # to the front of what is to come
    live.move("b", "c", now=T0 + 10, version=1)
    assert [i for i, *_ in table(live, 10)] == ["a", "d", "c", "b"]
    assert table(live, 10)[1] == ("d", "next", 60, 120)
    assert "itself" in refuses("after", live.move, "b", "b", now=T0 + 10, version=2).message
    refuses("item", live.move, "a", "b", now=T0 + 10, version=2)
    refuses("after", live.move, "b", "nobody", now=T0 + 10, version=2)
    live.next(now=T0 + 20, version=2)
    refuses("after", live.move, "b", "a", now=T0 + 20, version=3)


def test_move_keeps_hard_starts_in_order() -> None:
    live = show(segments=[seg("a", 60), seg("b", 60, hard=100), seg("c", 60, hard=200)])
    assert "hard start" in refuses("after", live.move, "c", now=T0 - 10, version=0).message
    refuses("after", live.move, "b", "c", now=T0 - 10, version=0)
    live.move("a", "c", now=T0 - 10, version=0)
    assert table(live, -10) == [
        ("b", "next", 100, 160),
        ("c", "upcoming", 200, 260),
        ("a", "upcoming", 260, 320),
    ]


# --- hold and resume ------------------------------------------------------------------


def test_hold_keeps_the_remaining_time_and_shifts_what_is_to_come() -> None:
    live = show()
    live.hold("Technical problem", now=T0 + 20, version=0)
    assert live.state(T0 + 50) == "hold"
    status = live.status(T0 + 50)
    assert status.hold == "Technical problem" and status.current is not None
    assert (status.current.id, status.current.held) == ("host", 30)
    # while held, at() answers a gap (a slate) whose next is what resumes
    cue = live.at(T0 + 50)
    assert cue == Cue("gap", None, LiveSlot(0, "host", T0, T0 + 90, "host"), 0)
    assert decide(cue, {}, {}).kind == "slate"
    assert table(live, 50)[1:] == [("guest", "next", 90, 210), ("host-2", "upcoming", 210, 240)]
    live.resume(now=T0 + 50, version=1)
    assert live.at(T0 + 50).remaining == 40  # 60 s, of which 20 s played before the hold
    assert table(live, 200) == [
        ("host", "done", 0, 90),
        ("guest", "on", 90, 210),
        ("host-2", "next", 210, 240),
    ]
    assert live.items(T0 + 200)[0].held == 30


def test_hold_before_the_show_delays_it_only_past_its_start() -> None:
    live = show()
    live.hold("", now=T0 - 60, version=0)
    assert live.status(T0 - 60).hold == DEFAULT_HOLD_TEXT
    live.resume(now=T0 - 30, version=1)
    assert table(live, -30)[0] == ("host", "next", 0, 60)
    live.hold("", now=T0 - 10, version=2)
    live.resume(now=T0 + 15, version=3)
    assert table(live, 15)[0] == ("host", "on", 15, 75)


def test_hold_again_changes_the_text_and_keeps_the_hold() -> None:
    live = show()
    live.hold("one", now=T0 + 10, version=0)
    live.hold("two", now=T0 + 20, version=1)
    assert live.status(T0 + 30).hold == "two"
    assert live.items(T0 + 30)[0].held == 20


def test_next_during_a_hold_ends_it() -> None:
    live = show()
    live.hold("x", now=T0 + 10, version=0)
    live.next(now=T0 + 40, version=1)
    assert live.state(T0 + 40) == "on"
    assert table(live, 40)[:2] == [("host", "done", 0, 40), ("guest", "on", 40, 160)]
    assert live.items(T0 + 40)[0].held == 30


def test_hold_and_resume_refuse() -> None:
    live = show()
    refuses("text", live.hold, "x" * 201, now=T0, version=0)
    refuses("text", live.hold, "two\nlines", now=T0, version=0)
    assert "not on hold" in refuses("state", live.resume, now=T0, version=0).message


def test_a_hard_start_ends_a_hold() -> None:
    live = show(segments=[seg("host", 60), seg("guest", 60, hard=100), seg("host", 30)])
    live.hold("x", now=T0 + 30, version=0)
    assert live.state(T0 + 99) == "hold"
    assert live.state(T0 + 100) == "on"
    assert table(live, 100) == [
        ("host", "done", 0, 100),
        ("guest", "on", 100, 160),
        ("host-2", "next", 160, 190),
    ]
    assert live.items(T0 + 100)[0].cut
    refuses("state", live.resume, now=T0 + 101, version=1)


# --- hard starts ------------------------------------------------------------------------


def test_an_edit_into_a_hard_start_cuts_and_says_so() -> None:
    live = show(segments=[seg("host", 60), seg("guest", 60), seg("imam", 60, hard=120)])
    change = live.set_duration("host", 100, now=T0 + 10, version=0)
    assert change.cut == ("guest",)
    assert table(live, 10) == [
        ("host", "on", 0, 100),
        ("guest", "next", 100, 120),
        ("imam", "upcoming", 120, 180),
    ]
    change = live.insert("host", 50, now=T0 + 10, version=1)
    assert change.cut == ("host.1", "guest")  # guest is cut further: to nothing
    assert table(live, 10)[1:3] == [("host.1", "next", 100, 120), ("guest", "upcoming", 120, 120)]
    assert [i.cut for i in live.items(T0 + 10)] == [False, True, True, False]
    assert live.set_duration("host", 110, now=T0 + 10, version=2).cut == ("host.1",)
    assert live.set_duration("host", 200, now=T0 + 10, version=3).cut == ("host", "host.1")
    assert table(live, 130) == [
        ("host", "done", 0, 120),
        ("host.1", "skipped", 120, 120),
        ("guest", "skipped", 120, 120),
        ("imam", "on", 120, 180),
    ]


def test_taking_a_hard_start_item_early_frees_it_from_its_start() -> None:
    live = show(segments=[seg("host", 60), seg("guest", 60, hard=100), seg("imam", 60, hard=300)])
    live.take("guest", now=T0 + 10, version=0)
    assert table(live, 10)[1:] == [("guest", "on", 10, 70), ("imam", "next", 300, 360)]


# --- end --------------------------------------------------------------------------------


def test_end_ends_the_rundown_now() -> None:
    live = show()
    live.end(now=T0 + 30, version=0)
    assert live.state(T0 + 30) == "ended" and live.at(T0 + 30) == Cue("ended", None, None, 0)
    assert live.ends_at(T0 + 30) == T0 + 30
    assert table(live, 30) == [
        ("host", "done", 0, 30),
        ("guest", "skipped", 30, 30),
        ("host-2", "skipped", 30, 30),
    ]
    for call, args in [
        (live.next, ()),
        (live.end, ()),
        (live.hold, ("x",)),
        (live.insert, ("host", 5)),
    ]:
        assert "ended" in refuses("state", call, *args, now=T0 + 40, version=1).message


# --- versions and the clock -----------------------------------------------------------


def test_a_stale_version_is_refused_with_the_current_one() -> None:
    live = show()
    live.next(now=T0 + 10, version=0)
    with pytest.raises(StaleVersion) as info:
        live.take("host-2", now=T0 + 11, version=0)
    assert info.value.current == 1 and info.value.field == "version"
    assert live.version == 1
    assert isinstance(info.value, RundownError)
    with pytest.raises(StaleVersion):
        live.take_speaker("nobody", -1, now=T0 + 11, version=5)  # the version comes first


def test_a_change_is_never_applied_before_the_last_one() -> None:
    live = show()
    live.next(now=T0 + 10, version=0)
    change = live.next(now=T0 + 9.5, version=1)  # the wall clock stepped back
    assert change.now == T0 + 10
    assert table(live, 10)[:2] == [("host", "done", 0, 10), ("guest", "done", 10, 10)]


# --- looping (the demo) ---------------------------------------------------------------


def test_a_loop_repeats_with_lap_ids() -> None:
    segments = [seg("a", 60), seg("b", 40)]
    live = LiveRundown(segments, starts_at=T0, loop=True)
    rundown = Rundown(segments, starts_at=T0, loop=True)
    cue = live.at(T0 + 250)  # lap 3, 50 s in
    assert cue.current == LiveSlot(0, "a", T0 + 200, T0 + 260, "a~3")
    assert cue.next == LiveSlot(1, "b", T0 + 260, T0 + 300, "b~3")
    assert rundown.at(T0 + 250).remaining == cue.remaining
    last = live.at(T0 + 180)
    assert last.next == LiveSlot(0, "a", T0 + 200, T0 + 260, "a~3")
    assert live.status(T0 + 250).lap == 3 and live.ends_at(T0 + 250) is None
    assert [i.id for i in live.items(T0 + 250)] == ["a~3", "b~3"]


def test_loop_edits_apply_to_the_current_lap() -> None:
    live = LiveRundown([seg("a", 60), seg("b", 40)], starts_at=T0, loop=True)
    live.insert("a", 10, now=T0 + 110, version=0)  # lap 2
    assert [i for i, *_ in table(live, 110)] == ["a~2", "a.1", "b~2"]
    assert [i for i, *_ in table(live, 215)] == ["a~3", "b~3"]  # lap 3: as the event file
    assert live.at(T0 + 215).current == LiveSlot(0, "a", T0 + 210, T0 + 270, "a~3")
    refuses("item", live.take, "b~2", now=T0 + 215, version=1)


def test_next_at_the_end_of_a_lap_starts_the_next_lap() -> None:
    live = LiveRundown([seg("a", 60), seg("b", 40)], starts_at=T0, loop=True)
    live.next(now=T0 + 10, version=0)
    live.next(now=T0 + 20, version=1)
    assert table(live, 20) == [("a~2", "on", 20, 80), ("b~2", "next", 80, 120)]
    live.end(now=T0 + 30, version=2)
    assert live.state(T0 + 1000) == "ended" and live.ends_at(T0 + 1000) == T0 + 30


def test_a_loop_with_everything_skipped_goes_on_to_the_next_lap() -> None:
    live = LiveRundown([seg("a", 60), seg("b", 40)], starts_at=T0, loop=True)
    live.skip("b", now=T0 + 10, version=0)
    live.next(now=T0 + 20, version=1)
    assert table(live, 20)[0] == ("a~2", "on", 20, 80)


def test_constructor_checks_as_the_rundown_does() -> None:
    with pytest.raises(ValueError):
        LiveRundown([seg("a", 60, hard=10)], starts_at=T0, loop=True)
    with pytest.raises(ValueError, match="id"):
        LiveRundown([seg("a", 60), seg("b", 60, id="a")], starts_at=T0)
    assert LiveRundown([], starts_at=T0).state(T0) == "ended"


def test_a_lap_that_ends_while_held_waits_for_the_resume() -> None:
    live = LiveRundown([seg("a", 60), seg("b", 40)], starts_at=T0, loop=True)
    live.take("b", now=T0 + 10, version=0)
    live.hold("x", now=T0 + 20, version=1)
    live.set_duration("b", 5, now=T0 + 30, version=2)  # b has played 10 s: it ends
    assert live.state(T0 + 40) == "hold"
    assert table(live, 40) == [("a~2", "next", 40, 100), ("b~2", "upcoming", 100, 140)]
    live.resume(now=T0 + 50, version=3)
    assert table(live, 50)[0] == ("a~2", "on", 50, 110)
