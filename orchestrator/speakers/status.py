"""Where a speaker stands in the rundown (pure): what their join page shows.

``waiting`` (their slot is later), ``on_now`` (their slot is running; they are on air
when ``live``), ``done`` (their last slot is over) or ``unscheduled``. ``full_rate``
says whether their feed is needed at full rate: in their slot or within ``LEAD_SECONDS``
of it (the green room only needs previews).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from orchestrator.live_rundown import LiveRundown
from orchestrator.rundown import Slot

LEAD_SECONDS: Final = 15.0

Standing = Literal["waiting", "on_now", "done", "unscheduled"]


@dataclass(frozen=True, slots=True)
class SpeakerStatus:
    standing: Standing
    slot_start: float | None  # epoch seconds of the current or next slot
    slot_end: float | None
    starts_in: float | None  # seconds until that slot starts (0 when on now)
    ends_in: float | None
    live: bool  # their own feed is on air now
    full_rate: bool


def _their_slot(rundown: LiveRundown, speaker: str, now: float) -> Slot | None:
    """The speaker's current or next slot: their item on air or to come in this lap (held
    or not), else, in a looping rundown, the next lap's first if it is theirs."""
    for item in rundown.items(now):
        to_come = item.state in ("next", "upcoming") and item.end > max(now, item.start)
        if item.speaker == speaker and (item.state == "on" or to_come):
            return Slot(-1, speaker, item.start, item.end)
    if rundown.loop:
        upcoming = rundown.at(now).next
        if upcoming is not None and upcoming.speaker == speaker:
            return upcoming
    return None


def speaker_status(rundown: LiveRundown, speaker: str, now: float, on_air: str) -> SpeakerStatus:
    """The status of ``speaker`` at ``now`` (epoch s); ``on_air`` is the program's label."""
    slot = _their_slot(rundown, speaker, now)
    live = on_air == speaker
    if slot is None:
        scheduled = any(item.speaker == speaker for item in rundown.items(now))
        return SpeakerStatus(
            "done" if scheduled else "unscheduled", None, None, None, None, live, live
        )
    starts_in = max(0.0, slot.start - now)
    standing: Standing = "on_now" if slot.start <= now else "waiting"
    return SpeakerStatus(
        standing,
        slot.start,
        slot.end,
        round(starts_in, 1),
        round(slot.end - now, 1),
        live,
        live or starts_in <= LEAD_SECONDS,
    )
