"""The plan of a live rundown, and the edits an operator makes to it: pure functions.

A :class:`Plan` is the current lap of the rundown as of one instant: the items that are
over (``past``, with the times they really had) and the ``entries`` still to play, the
first of which may be on air. :func:`lay_out` puts the entries on the clock, hard starts
cutting as in :mod:`orchestrator.rundown`; :func:`settle` carries a plan forward to a
later instant (items end, the next one starts, a hard start ends a hold, a looping
rundown begins its next lap); the operations (:func:`start`, :func:`set_duration`...)
edit a settled plan. :class:`orchestrator.live_rundown.LiveRundown` ties them together.

Invariants of a plan settled at ``t`` (checked through LiveRundown by the properties):

- ``past`` is in the order the items were over, each over at or before ``t``.
- Only ``entries[0]`` may be on air (``started`` set): it started at or before ``t``.
- The hard starts of the entries not started never go backwards.
- While held, nothing moves on by itself: what is on air keeps its remaining time and
  nothing starts before the hold ends, by :func:`resume` or at the next hard start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Literal, TypeAlias

ItemState: TypeAlias = Literal["done", "on", "next", "upcoming", "skipped"]


class RundownError(ValueError):
    """An operation the rundown refuses; nothing was changed.

    Args:
        field: what was wrong: ``item``, ``speaker``, ``duration``, ``after``, ``text``,
            ``op``, ``state`` (not possible now, e.g. once ended) or ``version``.
        message: what is wrong and what to do, for the operator.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StaleVersion(RundownError):
    """The change was made against an older version: ``current`` is the version now."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            "version",
            f"the rundown changed (version {current}, not {expected}): reload it and retry",
        )
        self.current = current


@dataclass(frozen=True, slots=True)
class Item:
    """One item of the live rundown, as the console shows it.

    ``start`` and ``end`` are epoch seconds, actual for what has played, planned for the
    rest; ``duration`` is the planned air time, ``held`` the time the item spent held
    (so it aired ``end - start - held``), ``cut`` says a hard start shortened it.
    """

    id: str
    speaker: str
    duration: float
    start: float
    end: float
    state: ItemState
    hard_start: float | None = None
    held: float = 0.0
    cut: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """An item still to play (or on air, when ``started``)."""

    id: str
    index: int  # Slot.index: the segment's position; items added live number on after
    speaker: str
    duration: float
    hard_start: float | None = None  # epoch seconds
    started: float | None = None  # when it went on air
    held: float = 0.0  # seconds spent held, before the current hold
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class Hold:
    """A "please stand by": ``text`` on the slate since ``since``."""

    text: str
    since: float


@dataclass(frozen=True, slots=True)
class Lap:
    """The rundown as the event file has it: every lap of a looping rundown starts so."""

    entries: tuple[Entry, ...]
    loop: bool

    @property
    def period(self) -> float:
        return sum(entry.duration for entry in self.entries)

    def fresh(self, lap: int) -> tuple[Entry, ...]:
        """The entries of lap ``lap`` (1-based): ids ``host``, then ``host~2``..."""
        if lap == 1:
            return self.entries
        return tuple(replace(entry, id=f"{entry.id}~{lap}") for entry in self.entries)


@dataclass(frozen=True, slots=True)
class Plan:
    """The current lap: what is over (``past``) and what is still to play (``entries``)."""

    entries: tuple[Entry, ...]
    anchor: float  # where entries[0] starts if it has neither started nor a hard start
    past: tuple[Item, ...] = ()
    lap: int = 1
    hold: Hold | None = None
    ended: bool = False  # end() was called
    aired: bool = False  # something has been on air ("gap", not "before", between items)
    added: Mapping[str, int] = field(default_factory=dict)  # items added live, by speaker
    serial: int = 0  # Slot.index of the next item added live

    def finished(self, lap: Lap) -> bool:
        return self.ended or (not self.entries and not lap.loop)


@dataclass(frozen=True, slots=True)
class Placed:
    """An entry on the clock; ``short`` is the air time a hard start took off it."""

    start: float
    end: float
    short: float
    held: float  # the entry's held time as of the instant laid out for


def lay_out(plan: Plan, now: float) -> tuple[Placed, ...]:
    """Where each of ``plan.entries`` is on the clock, seen at ``now``.

    While held, the plan is laid out as if resumed ``now``: the item on air ends its
    remaining time after ``now``, and nothing that has not started begins before it.
    """
    held_for = now - plan.hold.since if plan.hold is not None else 0.0
    clock = plan.anchor if plan.hold is None else max(plan.anchor, now)
    starts: list[float] = []
    ends: list[float] = []
    length: list[float] = []  # before any cut
    held: list[float] = []
    for entry in plan.entries:
        entry_held = 0.0
        if entry.skipped:
            start = end = clock
        elif entry.started is not None:
            entry_held = entry.held + held_for
            start, end = entry.started, entry.started + entry_held + entry.duration
        else:
            if entry.hard_start is not None:
                # As Rundown does: cut whatever still runs at the hard start; an entry
                # that would begin at or after it shrinks to nothing there.
                for back in range(len(ends) - 1, -1, -1):
                    if ends[back] <= entry.hard_start:
                        break
                    starts[back] = min(starts[back], entry.hard_start)
                    ends[back] = entry.hard_start
                clock = entry.hard_start
            start, end = clock, clock + entry.duration
        starts.append(start)
        ends.append(end)
        length.append(end - start)
        held.append(entry_held)
        clock = end
    return tuple(
        Placed(s, e, n - (e - s), h) for s, e, n, h in zip(starts, ends, length, held, strict=True)
    )


def settle(plan: Plan, lap: Lap, t: float) -> Plan:
    """The plan at ``t`` (not before the instant it was made for), nothing edited."""
    while not plan.finished(lap):
        if plan.hold is not None:
            if not plan.entries:  # a looping lap ended while held: the next one waits
                plan = replace(plan, entries=lap.fresh(plan.lap + 1), past=(), lap=plan.lap + 1)
            hard = first_hard(plan)
            if hard is None or hard > t:
                return plan
            plan = resume(plan, hard)  # the hard start wins over the hold
            continue
        placed = lay_out(plan, t)
        over = 0  # entries over by t: a prefix, since the layout is ordered
        while over < len(placed) and placed[over].end <= t:
            over += 1
        past = plan.past + tuple(
            _over(entry, where) for entry, where in zip(plan.entries, placed[:over], strict=False)
        )
        rest = plan.entries[over:]
        anchor = placed[over - 1].end if over else plan.anchor
        aired = plan.aired or any(item.state == "done" for item in past[len(plan.past) :])
        if rest and rest[0].started is None and placed[over].start <= t:
            rest = (replace(rest[0], started=placed[over].start), *rest[1:])
        if rest and rest[0].started is not None:
            aired = True
        elif rest:
            # Nothing starts at an anchor before t: an entry not started at t starts
            # later or at its hard start, so this moves nothing laid out.
            anchor = max(anchor, t)
        plan = replace(plan, entries=rest, anchor=anchor, past=past, aired=aired)
        if rest or not lap.loop:
            return plan
        plan = _next_lap(plan, lap, anchor, t)
    return plan


def _next_lap(plan: Plan, lap: Lap, end: float, t: float) -> Plan:
    """The lap running at ``t``, the last one having ended at ``end`` (unedited laps)."""
    period = lap.period
    skipped = max(0, math.floor((t - end) / period))
    # Rounding can land a hair off: the lap must start at or before t, end after it.
    if end + skipped * period > t:
        skipped = max(0, skipped - 1)
    elif end + (skipped + 1) * period <= t:
        skipped += 1
    number = plan.lap + 1 + skipped
    start = end + skipped * period
    return replace(plan, entries=lap.fresh(number), anchor=start, past=(), lap=number)


def _over(entry: Entry, where: Placed, *, end: float | None = None) -> Item:
    """The past item an entry becomes, over at ``end`` (default: its laid-out end)."""
    end = where.end if end is None else end
    skipped = entry.skipped or (entry.started is None and end <= where.start)
    start = min(where.start, end)
    return Item(
        entry.id,
        entry.speaker,
        entry.duration,
        start,
        end,
        "skipped" if skipped else "done",
        entry.hard_start,
        where.held,
        cut=where.short > 0 and end == where.end,
    )


def _passed(entries: Sequence[Entry], now: float) -> tuple[Item, ...]:
    """Entries passed over at ``now`` (skipped, or not played as the rundown ends)."""
    return tuple(_over(entry, Placed(now, now, 0.0, 0.0)) for entry in entries)


def first_hard(plan: Plan) -> float | None:
    """The earliest hard start still to come (hard starts never go backwards)."""
    for entry in plan.entries:
        if entry.hard_start is not None and entry.started is None and not entry.skipped:
            return entry.hard_start
    return None


# --- operations: each takes a plan settled at ``now`` --------------------------------------


def end_on_air(plan: Plan, now: float, *, duration: float | None = None) -> Plan:
    """End the item on air (if any) now; with ``duration``, record it as its duration."""
    if not plan.entries or plan.entries[0].started is None:
        return plan
    entry = plan.entries[0]
    if duration is not None:
        entry = replace(entry, duration=duration)
    done = _over(entry, lay_out(plan, now)[0], end=now)
    return replace(plan, entries=plan.entries[1:], past=(*plan.past, done), anchor=now)


def start(plan: Plan, lap: Lap, item: str | None, now: float) -> Plan:
    """Put an entry on air now, ending what is on air and any hold.

    Args:
        item: the id of an entry not started; None: the first one not skipped (the
            next lap's first when none is left in a looping rundown).
    """
    plan = replace(end_on_air(plan, now), hold=None, aired=True)
    entries = plan.entries
    position = next(
        (i for i, e in enumerate(entries) if (e.id == item if item is not None else not e.skipped)),
        None,
    )
    if position is None:
        plan = replace(plan, entries=(), past=plan.past + _passed(entries, now), anchor=now)
        if not lap.loop:
            return plan
        plan = replace(plan, entries=lap.fresh(plan.lap + 1), past=(), lap=plan.lap + 1)
        position = 0
        entries = plan.entries
    before = entries[:position]
    # Skipped entries before it are passed; the others stay to come, after it.
    passed = _passed([e for e in before if e.skipped], now)
    taken = replace(entries[position], started=now, held=0.0)
    kept = tuple(e for e in before if not e.skipped)
    return replace(
        plan,
        entries=(taken, *kept, *entries[position + 1 :]),
        past=plan.past + passed,
        anchor=now,
    )


def add(plan: Plan, speaker: str, duration: float, position: int) -> tuple[Plan, str]:
    """Insert a new item at ``position`` of the entries; its id is ``speaker.N``."""
    count = plan.added.get(speaker, 0) + 1
    item_id = f"{speaker}.{count}"  # "." is never in an event file id: no clash
    entry = Entry(item_id, plan.serial, speaker, duration)
    entries = (*plan.entries[:position], entry, *plan.entries[position:])
    added = {**plan.added, speaker: count}
    return replace(plan, entries=entries, added=added, serial=plan.serial + 1), item_id


def set_duration(plan: Plan, position: int, duration: float, now: float) -> Plan:
    """Give the entry at ``position`` a new duration; an on-air one that has played that
    long already ends now (recorded with the time it played)."""
    entry = plan.entries[position]
    if entry.started is not None:
        where = lay_out(plan, now)[position]
        played = now - entry.started - where.held
        if duration <= played:
            return end_on_air(plan, now, duration=played)
    entries = list(plan.entries)
    entries[position] = replace(entry, duration=duration)
    return replace(plan, entries=tuple(entries))


def skip(plan: Plan, position: int) -> Plan:
    entries = list(plan.entries)
    entries[position] = replace(entries[position], skipped=True)
    return replace(plan, entries=tuple(entries))


def insertion_point(plan: Plan, after: str | None) -> int:
    """Where an entry goes to come right after ``after`` (an entry's id); None: at the
    front of what is to come (right after the item on air)."""
    if after is None:
        return 1 if plan.entries and plan.entries[0].started is not None else 0
    return next(i for i, e in enumerate(plan.entries) if e.id == after) + 1


def move(plan: Plan, position: int, after: str | None) -> Plan:
    """Move the entry at ``position`` right after ``after`` (see :func:`insertion_point`).

    Raises:
        RundownError: ("after") the move would put hard starts out of order.
    """
    entries = list(plan.entries)
    entry = entries.pop(position)
    entries.insert(insertion_point(replace(plan, entries=tuple(entries)), after), entry)
    hard = [
        e.hard_start
        for e in entries
        if e.hard_start is not None and e.started is None and not e.skipped
    ]
    if any(later < earlier for earlier, later in pairwise(hard)):
        raise RundownError(
            "after", f"{entry.id!r} cannot go there: items with a hard start must stay in order"
        )
    return replace(plan, entries=tuple(entries))


def hold(plan: Plan, text: str, now: float) -> Plan:
    """Stand by (or change the text of the hold already up)."""
    since = plan.hold.since if plan.hold is not None else now
    return replace(plan, hold=Hold(text, since))


def resume(plan: Plan, now: float) -> Plan:
    """End the hold: the item on air resumes its remaining time, the rest follows."""
    if plan.hold is None:
        return plan
    held_for = now - plan.hold.since
    entries, anchor = plan.entries, plan.anchor
    if entries and entries[0].started is not None:
        entries = (replace(entries[0], held=entries[0].held + held_for), *entries[1:])
    else:
        anchor = max(anchor, now)
    return replace(plan, entries=entries, anchor=anchor, hold=None)


def end(plan: Plan, now: float) -> Plan:
    """End the rundown now: what is on air ends, what is to come is skipped."""
    plan = end_on_air(plan, now)
    past = plan.past + _passed(plan.entries, now)
    return replace(plan, entries=(), past=past, anchor=now, hold=None, ended=True)


def locate(plan: Plan, item: str, field: str, *, skipped: bool = False) -> int:
    """The position of ``item`` among the entries (one skipped only if ``skipped``).

    Raises:
        RundownError: (``field``) the item has played, was skipped or is unknown.
    """
    for position, entry in enumerate(plan.entries):
        if entry.id == item:
            if entry.skipped and not skipped:
                raise RundownError(field, f"{item!r} was skipped")
            return position
    for done in plan.past:
        if done.id == item:
            verb = "was skipped" if done.state == "skipped" else "has already played"
            raise RundownError(field, f"{item!r} {verb}")
    where = f" (lap {plan.lap})" if plan.lap > 1 else ""
    raise RundownError(field, f"no item {item!r} in the rundown{where}")
