"""The run-of-show in time, and who is on air: pure logic with an injected clock.

:class:`Rundown` turns the event's segments into :class:`Slot` s on the wall clock and
answers "what should be on now?" (:meth:`Rundown.at`). :func:`decide` combines that
:class:`Cue` with the state of each speaker's source into an :class:`OnAir` decision.
No asyncio, no media: times are float epoch seconds passed in by the caller.

Invariants of ``Rundown.slots`` (all tested as properties):

- ``slots[i].start <= slots[i].end <= slots[i + 1].start``: ordered, never overlapping.
- A slot lasts at most its segment's duration; only a hard start makes it shorter.
- A segment with a hard start begins exactly at it; the slot before is cut there.
- Without hard starts the slots tile ``[starts_at, starts_at + sum(durations))``.
"""

from __future__ import annotations

import bisect
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from orchestrator.event import SegmentSpec
from orchestrator.event.states import OnAirKind

RundownState: TypeAlias = Literal["before", "on", "gap", "ended"]
SlateName: TypeAlias = Literal["starting", "between", "joining", "reconnecting", "hold", "ended"]


@dataclass(frozen=True, slots=True)
class Slot:
    """Segment ``index`` of the rundown on the wall clock: ``speaker`` is on in [start, end)."""

    index: int
    speaker: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Cue:
    """Where the rundown stands at one instant.

    ``remaining`` is the time until ``current`` ends when ``on``, until ``next`` starts
    when ``before`` or ``gap``, and 0 when ``ended``.
    """

    state: RundownState
    current: Slot | None
    next: Slot | None
    remaining: float


class Rundown:
    """The segments laid out on the clock from ``starts_at``.

    Args:
        segments: the rundown, in order.
        starts_at: when the first segment without a hard start begins (epoch seconds).
        loop: repeat the rundown forever (the demo event); not allowed with hard starts.

    Raises:
        ValueError: a duration is not positive and finite, a hard start has no timezone
            or is earlier than a previous hard start, or ``loop`` with a hard start.
    """

    def __init__(
        self, segments: Sequence[SegmentSpec], *, starts_at: float, loop: bool = False
    ) -> None:
        if loop and any(segment.start is not None for segment in segments):
            raise ValueError("a looping rundown cannot have hard starts")
        if loop and not segments:
            raise ValueError("a looping rundown needs at least one segment")
        self.starts_at = starts_at
        self.loop = loop
        self.slots: tuple[Slot, ...] = _lay_out(segments, starts_at)
        # Non-empty slots only, and their starts for bisecting: empty (cut) slots are
        # never on air and never "next".
        self._playable = tuple(slot for slot in self.slots if slot.end > slot.start)
        self._starts = [slot.start for slot in self._playable]

    @property
    def ends_at(self) -> float:
        """When the last slot ends (``starts_at`` for an empty rundown)."""
        return self.slots[-1].end if self.slots else self.starts_at

    def at(self, now: float) -> Cue:
        """The cue at ``now`` (epoch seconds); with ``loop``, wrapped into the current lap."""
        if not self.loop or now < self.starts_at:
            return self._at_once(now)
        period = self.ends_at - self.starts_at
        lap = math.floor((now - self.starts_at) / period)
        # Rounding can put ``now - lap * period`` a hair outside the first lap.
        if now - lap * period >= self.ends_at:
            lap += 1
        elif now - lap * period < self.starts_at:
            lap -= 1
        offset = lap * period
        cue = self._at_once(now - offset)
        current = _shift(cue.current, offset)
        following = _shift(cue.next, offset)
        if cue.current is not None and cue.next is None:
            following = _shift(self._playable[0], offset + period)
        return Cue(cue.state, current, following, cue.remaining)

    def _at_once(self, now: float) -> Cue:
        if not self._playable or now >= self.ends_at:
            return Cue("ended", None, None, 0.0)
        # The last playable slot starting at or before now.
        position = bisect.bisect_right(self._starts, now) - 1
        if position < 0:
            first = self._playable[0]
            return Cue("before", None, first, first.start - now)
        slot = self._playable[position]
        following = self._playable[position + 1] if position + 1 < len(self._playable) else None
        if now < slot.end:
            return Cue("on", slot, following, slot.end - now)
        # Past this slot's end but before ends_at, so a later playable slot exists.
        assert following is not None
        return Cue("gap", None, following, following.start - now)


def _lay_out(segments: Sequence[SegmentSpec], starts_at: float) -> tuple[Slot, ...]:
    slots: list[Slot] = []
    clock = starts_at
    last_hard: float | None = None
    for index, segment in enumerate(segments):
        if not (math.isfinite(segment.duration) and segment.duration > 0):
            raise ValueError(f"segment {index} has a duration that is not positive")
        if segment.start is not None:
            if segment.start.utcoffset() is None:
                raise ValueError(f"segment {index} has a hard start without a timezone")
            hard = segment.start.timestamp()
            if last_hard is not None and hard < last_hard:
                raise ValueError(f"segment {index} has a hard start before an earlier one")
            last_hard = hard
            # Cut whatever is still running at the hard start; a slot that would begin
            # at or after it shrinks to nothing at the hard start, keeping slots ordered.
            for back in range(len(slots) - 1, -1, -1):
                earlier = slots[back]
                if earlier.end <= hard:
                    break
                slots[back] = replace(earlier, start=min(earlier.start, hard), end=hard)
            clock = hard
        slots.append(Slot(index, segment.speaker, clock, clock + segment.duration))
        clock += segment.duration
    return tuple(slots)


def _shift(slot: Slot | None, offset: float) -> Slot | None:
    if slot is None or offset == 0:
        return slot
    return replace(slot, start=slot.start + offset, end=slot.end + offset)


@dataclass(frozen=True, slots=True)
class OnAir:
    """What the program shows now.

    ``kind`` is the speaker's own feed, their recorded fallback, or a slate;
    ``slate`` names which slate. ``speaker`` is the slot's speaker for ``speaker``,
    ``fallback`` and the ``joining``/``reconnecting`` slates, else None. ``text`` is
    the operator's text on the ``hold`` slate.
    """

    kind: OnAirKind
    speaker: str | None
    slate: SlateName | None
    slot: Slot | None
    next: Slot | None
    text: str | None = None


SourceStateName: TypeAlias = Literal["ready", "connecting", "lost", "ended"]
""":class:`SourceState` values, as snapshots (``/api/state``) name them."""


class SourceState(enum.Enum):
    """The state of a speaker's source, as far as the current slot is concerned.

    Snapshots carry ``.value``, a :data:`SourceStateName`: mypy checks each member's value
    is one, and tests/orchestrator/test_rundown.py that each name has a member.
    """

    READY = "ready"  # producing media
    CONNECTING = "connecting"  # has produced no media yet for this slot
    LOST = "lost"  # had media, now down; reconnecting
    ENDED = "ended"  # a clip that finished before its slot did


def decide(
    cue: Cue,
    states: Mapping[str, SourceState],
    fallback_ready: Mapping[str, bool],
    hold: str | None = None,
) -> OnAir:
    """Choose what goes on air for ``cue``.

    Args:
        cue: from :meth:`Rundown.at`.
        states: each speaker's source state; a speaker not listed is CONNECTING.
        fallback_ready: whether each speaker's fallback clip can play; absent = False.
        hold: the operator's "please stand by" text while the rundown is held (a live
            rundown's cue is then a ``gap``): the ``hold`` slate, whatever the cue.
    """
    if hold is not None and cue.state != "ended":
        return OnAir("slate", None, "hold", None, None, hold)
    if cue.state == "before":
        return OnAir("slate", None, "starting", None, cue.next)
    if cue.state == "gap":
        return OnAir("slate", None, "between", None, cue.next)
    if cue.state == "ended" or cue.current is None:
        return OnAir("slate", None, "ended", None, None)
    slot = cue.current
    speaker = slot.speaker
    state = states.get(speaker, SourceState.CONNECTING)
    if state is SourceState.READY:
        return OnAir("speaker", speaker, None, slot, cue.next)
    if fallback_ready.get(speaker, False):
        return OnAir("fallback", speaker, None, slot, cue.next)
    if state is SourceState.ENDED:
        # The clip ran short: cover the rest of the slot and show who is next.
        return OnAir("slate", None, "between", slot, cue.next)
    if state is SourceState.LOST:
        return OnAir("slate", speaker, "reconnecting", slot, cue.next)
    return OnAir("slate", speaker, "joining", slot, cue.next)
