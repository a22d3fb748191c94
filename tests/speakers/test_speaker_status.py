"""Where a speaker stands in the rundown (pure)."""

from __future__ import annotations

from orchestrator.event import SegmentSpec
from orchestrator.rundown import Rundown
from orchestrator.speakers.status import LEAD_SECONDS, speaker_status

T0 = 1_766_000_000.0
RUNDOWN = Rundown(
    [SegmentSpec("host", 60), SegmentSpec("guest", 120), SegmentSpec("host", 30)], starts_at=T0
)


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
    loop = Rundown([SegmentSpec("a", 10), SegmentSpec("b", 10)], starts_at=T0, loop=True)
    status = speaker_status(loop, "a", T0 + 15, "b")
    assert (status.standing, status.slot_start) == ("waiting", T0 + 20)
