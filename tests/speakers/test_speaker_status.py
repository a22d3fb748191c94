"""Where a speaker stands in the rundown (pure)."""

from __future__ import annotations

from orchestrator.event import SegmentSpec
from orchestrator.live_rundown import LiveRundown
from orchestrator.speakers.status import LEAD_SECONDS, speaker_status

T0 = 1_766_000_000.0
SEGMENTS = [SegmentSpec("host", 60), SegmentSpec("guest", 120), SegmentSpec("host", 30)]
RUNDOWN = LiveRundown(SEGMENTS, starts_at=T0)


def test_waiting_then_full_rate_shortly_before_then_on_now_then_done() -> None:
    early = speaker_status(RUNDOWN, "guest", T0, "host")
    assert (early.standing, early.starts_in, early.full_rate) == ("waiting", 60.0, False)
    assert speaker_status(RUNDOWN, "guest", T0 + 60 - LEAD_SECONDS, "host").full_rate
    on = speaker_status(RUNDOWN, "guest", T0 + 90, "guest")
    assert (on.standing, on.starts_in, on.ends_in, on.live) == ("on_now", 0.0, 90.0, True)
    absent = speaker_status(RUNDOWN, "guest", T0 + 90, "slate")
    assert (absent.live, absent.full_rate) == (False, True)
    assert speaker_status(RUNDOWN, "guest", T0 + 200, "host").standing == "done"
    assert speaker_status(RUNDOWN, "nobody", T0, "host").standing == "unscheduled"


def test_a_speaker_with_two_slots_sees_the_next_one() -> None:
    second = speaker_status(RUNDOWN, "host", T0 + 100, "guest")
    assert (second.standing, second.slot_start) == ("waiting", T0 + 180)


def test_looping_rundown() -> None:
    loop = LiveRundown([SegmentSpec("a", 10), SegmentSpec("b", 10)], starts_at=T0, loop=True)
    status = speaker_status(loop, "a", T0 + 15, "b")
    assert (status.standing, status.slot_start) == ("waiting", T0 + 20)


def test_a_speaker_later_in_a_looping_lap_is_waiting() -> None:
    loop = LiveRundown(
        [SegmentSpec("a", 10), SegmentSpec("b", 10), SegmentSpec("c", 10)], starts_at=T0, loop=True
    )
    status = speaker_status(loop, "c", T0 + 5, "a")
    assert (status.standing, status.slot_start) == ("waiting", T0 + 20)


def test_the_live_rundown_edits_are_seen() -> None:
    live = LiveRundown(SEGMENTS, starts_at=T0, speakers=("host", "guest", "imam"))
    live.take_speaker("imam", 45, now=T0 + 10, version=0)
    on = speaker_status(live, "imam", T0 + 20, "imam")
    assert (on.standing, on.slot_start, on.ends_in) == ("on_now", T0 + 10, 35.0)
    # the host's item, cut short by the take, is over; their next one is later
    host = speaker_status(live, "host", T0 + 20, "imam")
    assert (host.standing, host.slot_start) == ("waiting", T0 + 55 + 120)
    live.hold("One moment", now=T0 + 20, version=1)
    held = speaker_status(live, "imam", T0 + 30, "slate")
    # on hold: still their item (35 s left once resumed), not live
    assert (held.standing, held.live, held.ends_in) == ("on_now", False, 35.0)
