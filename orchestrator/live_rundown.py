"""The rundown as it is played and edited live: pure logic with an injected clock.

:class:`LiveRundown` starts as the event's :class:`~orchestrator.rundown.Rundown` and
answers the same question, :meth:`LiveRundown.at` giving a :class:`Cue` for
:func:`~orchestrator.rundown.decide`, while the operator changes it: ``next``, ``take``,
``take_speaker``, ``set_duration``, ``insert``, ``skip``, ``move``, ``hold``, ``resume``,
``end``. No asyncio, no media, no I/O: times are float epoch seconds passed in.

Every operation takes ``now`` and the ``version`` the operator saw; a stale version
raises :class:`StaleVersion`, a change the rundown refuses :class:`RundownError` naming
the field, and either way nothing changes. An applied change bumps ``version`` by one
and returns a :class:`Change`, which is also what the journal records.

Choices, for the operator's console and the journal:

- ``take(item)`` is a broadcast "take": the item goes on air now, and the items that
  were before it stay to come, after it, in their order (skip them to drop them).
- ``hold(text)`` puts up a stand-by slate: the item on air keeps its remaining time and
  what is to come waits; the hold ends with ``resume()``, with ``next``/``take``/
  ``take_speaker``, or at the next hard start (the hard start wins, as over an overrun).
  While held, :meth:`LiveRundown.at` answers a ``gap`` whose ``next`` is what resumes.
- Ids: an event item's id is :func:`~orchestrator.event.event_file.segment_ids`'s; an
  item added live is ``<speaker>.<n>`` (n counts that speaker's added items); in a
  looping rundown lap 1 has the event's ids and lap n ``<id>~<n>``. Edits apply to the
  current lap; each new lap starts from the event's rundown again.
- An edit that runs an item into a hard start is applied: the item is cut there, and
  the change's ``cut`` names every item it cut (or cut further).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from orchestrator import rundown_ops as ops
from orchestrator.event import SegmentSpec
from orchestrator.event.event_file import MAX_SEGMENT_SECONDS, segment_ids
from orchestrator.rundown import Cue, Rundown, Slot
from orchestrator.rundown_ops import Item, ItemState, RundownError, StaleVersion

__all__ = [
    "Change",
    "Item",
    "ItemState",
    "LiveRundown",
    "LiveSlot",
    "LiveState",
    "RundownError",
    "StaleVersion",
    "Status",
]

LiveState: TypeAlias = Literal["before", "on", "hold", "gap", "ended"]
Arg: TypeAlias = str | float | None
MAX_HOLD_TEXT = 200
DEFAULT_HOLD_TEXT = "Please stand by"


@dataclass(frozen=True, slots=True)
class LiveSlot(Slot):
    """A :class:`Slot` that also names its item (``index`` is stable, not a position)."""

    id: str


@dataclass(frozen=True, slots=True)
class Change:
    """An applied operation: what the journal records and the caller is told.

    ``version`` is the rundown's version after it; ``now`` the instant it was applied
    at; ``cut`` the items it ran into a hard start; ``added`` the id of the item it
    added (``take_speaker``, ``insert``).
    """

    version: int
    op: str
    args: Mapping[str, Arg]
    now: float
    cut: tuple[str, ...] = ()
    added: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """The whole rundown at one instant, for the console: ``hold`` is the stand-by text."""

    state: LiveState
    version: int
    lap: int
    hold: str | None
    items: tuple[Item, ...]
    ends_at: float | None  # None: a looping rundown, which does not end by itself

    @property
    def current(self) -> Item | None:
        return next((item for item in self.items if item.state == "on"), None)


class LiveRundown:
    """The event's rundown, played from ``starts_at`` and changed live.

    Args:
        segments: the event's rundown, in order.
        starts_at: when the first segment without a hard start begins (epoch seconds).
        loop: repeat the rundown forever (the demo event); not allowed with hard starts.
        speakers: who may be added live (default: the speakers in ``segments``).

    Raises:
        ValueError: as :class:`~orchestrator.rundown.Rundown` does, or two items have
            the same id.

    The operations (:meth:`next` ... :meth:`end`) take ``now`` and the ``version`` the
    caller saw, and return the :class:`Change`; they raise :class:`StaleVersion` for
    another version and :class:`RundownError` for a change refused (``field`` says
    what was wrong), changing nothing either way.
    """

    def __init__(
        self,
        segments: Sequence[SegmentSpec],
        *,
        starts_at: float,
        loop: bool = False,
        speakers: Collection[str] | None = None,
    ) -> None:
        Rundown(segments, starts_at=starts_at, loop=loop)  # the same checks
        self.starts_at = starts_at
        self.loop = loop
        self.item_ids = segment_ids(segments)
        hard = [None if s.start is None else s.start.timestamp() for s in segments]
        entries = tuple(
            ops.Entry(item_id, index, s.speaker, float(s.duration), hard[index])
            for index, (item_id, s) in enumerate(zip(self.item_ids, segments, strict=True))
        )
        self._lap = ops.Lap(entries, loop)
        self._speakers = (
            frozenset(s.speaker for s in segments) if speakers is None else frozenset(speakers)
        )
        self._plan = ops.Plan(entries, starts_at, serial=len(entries))
        self._version = 0
        self._last = -math.inf  # when the last change was applied

    @property
    def version(self) -> int:
        """How many changes have been applied."""
        return self._version

    # -- what is on, now -----------------------------------------------------------------
    def at(self, now: float) -> Cue:
        """The cue at ``now``, as :meth:`Rundown.at` gives it; its slots are LiveSlots."""
        plan = ops.settle(self._plan, self._lap, now)
        state, on, following, placed = self._where(plan, now)
        if state == "ended":
            return Cue("ended", None, None, 0.0)
        upcoming = self._slot(plan, following, placed) if following is not None else None
        if upcoming is None and self.loop:
            upcoming = self._next_lap_slot(plan, placed)
        if state == "hold":
            resumes = self._slot(plan, on, placed) if on is not None else upcoming
            remaining = max(0.0, resumes.start - now) if resumes is not None else 0.0
            return Cue("gap", None, resumes, remaining)
        if state == "on" and on is not None:
            return Cue("on", self._slot(plan, on, placed), upcoming, placed[on].end - now)
        assert upcoming is not None and state in ("before", "gap")  # else it had ended
        return Cue(state, None, upcoming, upcoming.start - now)

    def status(self, now: float) -> Status:
        """Every item of the current lap, and where the rundown stands, at ``now``."""
        plan = ops.settle(self._plan, self._lap, now)
        state, on, following, placed = self._where(plan, now)
        items = list(plan.past)
        for position, (entry, where) in enumerate(zip(plan.entries, placed, strict=True)):
            item_state: ItemState = (
                "skipped"
                if entry.skipped
                else "on"
                if position == on
                else "next"
                if position == following
                else "upcoming"
            )
            items.append(
                Item(
                    entry.id,
                    entry.speaker,
                    entry.duration,
                    where.start,
                    where.end,
                    item_state,
                    entry.hard_start,
                    where.held,
                    where.short > 0,
                )
            )
        hold = plan.hold.text if plan.hold is not None else None
        return Status(state, self._version, plan.lap, hold, tuple(items), self._ends_at(plan, now))

    def items(self, now: float) -> tuple[Item, ...]:
        return self.status(now).items

    def state(self, now: float) -> LiveState:
        return self.status(now).state

    def ends_at(self, now: float) -> float | None:
        """When the rundown ends as planned at ``now`` (moves while held); None while a
        looping rundown runs."""
        return self._ends_at(ops.settle(self._plan, self._lap, now), now)

    def _ends_at(self, plan: ops.Plan, now: float) -> float | None:
        if plan.ended or not plan.entries:
            return plan.anchor
        return None if self.loop else ops.lay_out(plan, now)[-1].end

    def _where(
        self, plan: ops.Plan, now: float
    ) -> tuple[LiveState, int | None, int | None, tuple[ops.Placed, ...]]:
        """The state, the positions of the entry on air and the next one, the layout."""
        if plan.finished(self._lap):
            return "ended", None, None, ()
        placed = ops.lay_out(plan, now)
        on = 0 if plan.entries[0].started is not None else None
        following = next(
            (
                i
                for i, (entry, where) in enumerate(zip(plan.entries, placed, strict=True))
                if i != on and not entry.skipped and where.end > where.start
            ),
            None,
        )
        if plan.hold is not None:
            return "hold", on, following, placed
        if on is not None:
            return "on", on, following, placed
        if following is None and not self.loop:
            return "ended", None, None, placed  # only skipped or cut items are left
        return ("gap" if plan.aired else "before"), None, following, placed

    def _slot(self, plan: ops.Plan, position: int, placed: Sequence[ops.Placed]) -> LiveSlot:
        entry, where = plan.entries[position], placed[position]
        return LiveSlot(entry.index, entry.speaker, where.start, where.end, entry.id)

    def _next_lap_slot(self, plan: ops.Plan, placed: Sequence[ops.Placed]) -> LiveSlot:
        first = self._lap.fresh(plan.lap + 1)[0]
        start = placed[-1].end if placed else plan.anchor
        return LiveSlot(first.index, first.speaker, start, start + first.duration, first.id)

    # -- operations ------------------------------------------------------------------------
    def next(self, *, now: float, version: int) -> Change:
        """End the item on air now and start the following one (the first item, before
        the show; the next lap's first, at the end of a looping lap); the hold ends."""
        return self._change("next", {}, now, version, lambda p, t: ops.start(p, self._lap, None, t))

    def take(self, item: str, *, now: float, version: int) -> Change:
        """Put ``item`` on air now; the items before it stay to come, after it."""

        def edit(plan: ops.Plan, now: float) -> ops.Plan:
            if plan.entries[ops.locate(plan, item, "item")].started is not None:
                raise RundownError("item", f"{item!r} is already on air")
            return ops.start(plan, self._lap, item, now)

        return self._change("take", {"item": item}, now, version, edit)

    def take_speaker(self, speaker: str, duration: float, *, now: float, version: int) -> Change:
        """Put ``speaker`` on air now for ``duration`` s, an item not in the plan."""
        self._expect(version)
        self._check_speaker(speaker)
        seconds = _seconds(duration)

        def edit(plan: ops.Plan, now: float) -> tuple[ops.Plan, str]:
            plan, added = ops.add(plan, speaker, seconds, ops.insertion_point(plan, None))
            return ops.start(plan, self._lap, added, now), added

        args: dict[str, Arg] = {"speaker": speaker, "duration": seconds}
        return self._change("take_speaker", args, now, version, edit)

    def set_duration(self, item: str, duration: float, *, now: float, version: int) -> Change:
        """Give the item on air or one to come a new duration; the item on air, if it
        has already played that long, ends now."""
        self._expect(version)
        seconds = _seconds(duration)

        def edit(plan: ops.Plan, now: float) -> ops.Plan:
            return ops.set_duration(plan, ops.locate(plan, item, "item"), seconds, now)

        return self._change("set_duration", {"item": item, "duration": seconds}, now, version, edit)

    def insert(
        self, speaker: str, duration: float, after: str | None = None, *, now: float, version: int
    ) -> Change:
        """Add an item for ``speaker`` right after ``after`` (None: next, at the front of
        what is to come)."""
        self._expect(version)
        self._check_speaker(speaker)
        seconds = _seconds(duration)

        def edit(plan: ops.Plan, now: float) -> tuple[ops.Plan, str]:
            if after is not None:
                ops.locate(plan, after, "after", skipped=True)
            return ops.add(plan, speaker, seconds, ops.insertion_point(plan, after))

        args: dict[str, Arg] = {"speaker": speaker, "duration": seconds, "after": after}
        return self._change("insert", args, now, version, edit)

    def skip(self, item: str, *, now: float, version: int) -> Change:
        """Drop an item still to come."""

        def edit(plan: ops.Plan, now: float) -> ops.Plan:
            return ops.skip(plan, self._to_come(plan, item))

        return self._change("skip", {"item": item}, now, version, edit)

    def move(self, item: str, after: str | None = None, *, now: float, version: int) -> Change:
        """Move an item still to come right after ``after`` (None: to the front).

        A move that would put hard starts out of order is refused (field ``after``).
        """

        def edit(plan: ops.Plan, now: float) -> ops.Plan:
            position = self._to_come(plan, item)
            if after == item:
                raise RundownError("after", f"{item!r} cannot go after itself")
            if after is not None:
                ops.locate(plan, after, "after", skipped=True)
            return ops.move(plan, position, after)

        return self._change("move", {"item": item, "after": after}, now, version, edit)

    def hold(self, text: str = "", *, now: float, version: int) -> Change:
        """Stand by with ``text`` on the slate (or change the text of the current hold)."""
        self._expect(version)
        if len(text) > MAX_HOLD_TEXT or any(unicodedata.category(c) == "Cc" for c in text):
            raise RundownError("text", f"must be one line of at most {MAX_HOLD_TEXT} characters")
        shown = text.strip() or DEFAULT_HOLD_TEXT
        return self._change(
            "hold", {"text": text}, now, version, lambda p, t: ops.hold(p, shown, t)
        )

    def resume(self, *, now: float, version: int) -> Change:
        """End the hold: the item on air resumes with the time it had left."""

        def edit(plan: ops.Plan, now: float) -> ops.Plan:
            if plan.hold is None:
                raise RundownError("state", "the rundown is not on hold")
            return ops.resume(plan, now)

        return self._change("resume", {}, now, version, edit)

    def end(self, *, now: float, version: int) -> Change:
        """End the rundown now: the end slate, then what ``on_end`` says."""
        return self._change("end", {}, now, version, lambda p, t: ops.end(p, t))

    def _change(
        self,
        op: str,
        args: Mapping[str, Arg],
        now: float,
        version: int,
        edit: Callable[[ops.Plan, float], ops.Plan | tuple[ops.Plan, str]],
    ) -> Change:
        self._expect(version)
        # A clock stepped back a little must not undo what was played: changes are
        # applied in order, never before the last one.
        now = max(now, self._last)
        before = ops.settle(self._plan, self._lap, now)
        if before.finished(self._lap):
            raise RundownError("state", "the rundown has ended")
        edited = edit(before, now)
        after, added = edited if isinstance(edited, tuple) else (edited, None)
        after = ops.settle(after, self._lap, now)
        was = {e.id: w.short for e, w in zip(before.entries, ops.lay_out(before, now), strict=True)}
        cut = tuple(
            entry.id
            for entry, where in zip(after.entries, ops.lay_out(after, now), strict=True)
            if where.short > was.get(entry.id, 0.0)
        )
        self._plan, self._version, self._last = after, self._version + 1, now
        return Change(self._version, op, dict(args), now, cut, added)

    def _expect(self, version: int) -> None:
        if version != self._version:
            raise StaleVersion(version, self._version)

    def _to_come(self, plan: ops.Plan, item: str) -> int:
        position = ops.locate(plan, item, "item")
        if plan.entries[position].started is not None:
            raise RundownError("item", f"{item!r} is on air: use next to end it")
        return position

    def _check_speaker(self, speaker: str) -> None:
        if speaker not in self._speakers:
            known = ", ".join(repr(s) for s in sorted(self._speakers))
            raise RundownError("speaker", f"no speaker {speaker!r}: the speakers are {known}")


def _seconds(duration: object) -> float:
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        raise RundownError("duration", f"expected seconds, got {duration!r}")
    if not (math.isfinite(duration) and 0 < duration <= MAX_SEGMENT_SECONDS):
        raise RundownError("duration", f"{duration!r} s: an item lasts more than 0 s, at most 24 h")
    return float(duration)
