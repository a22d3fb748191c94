"""The live rundown as the show and its operators share it.

:class:`RundownControl` holds the :class:`~orchestrator.live_rundown.LiveRundown` and its
:class:`~orchestrator.journal.Journal`. The show reads it every step (:meth:`tick`); the
API changes it (:meth:`operate`): an operation is applied on the event loop, so
operations are applied one at a time, in order, and each is then journaled by the one
journal thread (fsync'ed, in the order applied) before the operator is answered.
:meth:`status_json` is what ``GET /api/rundown`` answers; :attr:`changes` and
:meth:`wait_change` tell a console when it changed.

:meth:`RundownControl.open` opens the rundown when ``jalsa run`` starts:

- no journal in the state dir: the rundown starts now, with a new journal;
- a journal: the show resumes where it stands now on the wall clock (every change
  replayed at its instant), unless it has ended (by the clock or by ``end``): then it
  starts over and the old journal is moved aside;
- ``--fresh``: it starts over, the old journal moved aside (never deleted);
- the demo (a looping rundown): it starts over every time, with its own journal.

A journal that cannot be resumed (damaged, of another event, or with none of the event
file's items) is a :class:`ResumeError` naming the file and the fix (``--fresh``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from orchestrator.event import Event
from orchestrator.event.duration import format_duration
from orchestrator.event.secret import private_dir
from orchestrator.journal import Journal, JournalError, apply, read, rebuild
from orchestrator.live_rundown import Change, LiveRundown, Status
from orchestrator.rundown import Cue

log = logging.getLogger(__name__)

JOURNAL_FILE: Final = "rundown-journal.jsonl"
DEMO_JOURNAL_FILE: Final = "demo-journal.jsonl"


class ResumeError(Exception):
    """The journal in the state dir cannot be resumed; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Resumed:
    """How the rundown was resumed after a restart."""

    at: float  # when (epoch s)
    journal: Path
    changes: int  # changes replayed from the journal
    dropped: tuple[str, ...]  # changes (and items) the event file no longer allows


class RundownControl:
    """The live rundown, its journal and who is told of changes.

    Args:
        live: the rundown (fresh, or replayed from ``journal``).
        journal: where each change is appended (None: changes are not kept).
        clock: epoch seconds.
        names: speaker id -> name, for the console.
        resumed: set when ``live`` was replayed after a restart.
    """

    def __init__(
        self,
        live: LiveRundown,
        journal: Journal | None,
        *,
        clock: Callable[[], float] = time.time,
        names: Mapping[str, str] | None = None,
        resumed: Resumed | None = None,
    ) -> None:
        self.live = live
        self.resumed = resumed
        self._journal = journal
        self._clock = clock
        self._names = dict(names or {})
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self.journal_error: str | None = None  # the last append that failed, if any
        self.changes = 0
        self.ended_at: float | None = None  # when an operator ended the rundown (end)
        self._changed = asyncio.Event()
        self._seen: tuple[object, ...] | None = None

    # -- start-up ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        state_dir: Path,
        event: Event,
        *,
        loop: bool = False,
        fresh: bool = False,
        event_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> RundownControl:
        """The rundown for ``jalsa run`` (see the module's docstring); logs what it did.

        Args:
            loop: the demo's looping rundown (always fresh).
            fresh: ``--fresh``: start over even if a journal could resume.
            event_file: named in messages.

        Raises:
            ResumeError: the journal cannot be resumed.
            OSError: the journal cannot be written.
        """
        now = clock()
        private_dir(state_dir)  # 0700: it holds the secrets
        speakers = [s.id for s in event.speakers]
        names = {s.id: s.name for s in event.speakers}
        if loop:
            path = state_dir / DEMO_JOURNAL_FILE
            path.unlink(missing_ok=True)  # the demo is never resumed
        else:
            path = state_dir / JOURNAL_FILE
            if path.exists() and fresh:
                kept = _move_aside(path)
                log.info("--fresh: the rundown starts over (the old journal is kept as %s)", kept)
            elif path.exists():
                control = cls._resume(path, event, now, event_file, clock)
                if control is not None:
                    return control
            else:
                log.info("the rundown starts now (journal: %s)", path)
        live = LiveRundown(event.rundown, starts_at=now, loop=loop, speakers=speakers)
        journal = Journal.create(path, live, event=event.info.name)
        return cls(live, journal, clock=clock, names=names)

    @classmethod
    def _resume(
        cls,
        path: Path,
        event: Event,
        now: float,
        event_file: Path | None,
        clock: Callable[[], float],
    ) -> RundownControl | None:
        """The rundown ``path`` records, resumed; None if it has ended (it was moved aside)."""
        where = str(event_file) if event_file is not None else "EVENT.toml"
        fix = (
            f"run `jalsa run {where} --fresh` to start the rundown over (the journal is "
            "kept, moved aside), or give this event a --state folder of its own"
        )
        try:
            contents = read(path)
        except JournalError as exc:
            raise ResumeError(f"{exc}: the show cannot resume from it: {fix}") from None
        header = contents.header
        name = event.info.name
        if header.event is not None and header.event != name:
            raise ResumeError(f"{path}: the journal of {header.event!r}, not of {name!r}: {fix}")
        speakers = [s.id for s in event.speakers]
        try:
            replayed = rebuild(path, contents, event.rundown, speakers=speakers)
        except ValueError as exc:
            raise ResumeError(f"{path}: cannot replay it for {where} ({exc}): {fix}") from None
        live = replayed.live
        if header.loop or not set(header.items) & set(live.item_ids):
            raise ResumeError(
                f"{path}: none of its items ({', '.join(header.items)}) is in {where}: "
                f"it is the journal of another rundown: {fix}"
            )
        status = live.status(now)
        if status.state == "ended":
            how = "was ended" if any(r.op == "end" for r in contents.records) else "ended"
            at = _clock_time(status.ends_at) if status.ends_at is not None else "?"
            kept = _move_aside(path)
            log.info(
                "the journaled show %s at %s: the rundown starts over (the old journal is "
                "kept as %s)",
                how,
                at,
                kept,
            )
            return None
        gone = tuple(f"item {item}: no longer in the event file" for item in replayed.gone)
        resumed = Resumed(now, path, len(contents.records), gone + replayed.dropped)
        log.info(
            "resumed the rundown from %s (%d changes replayed): %s (use --fresh to start over)",
            path,
            resumed.changes,
            _standing(status, live.at(now)),
        )
        names = {s.id: s.name for s in event.speakers}
        return cls(live, Journal.reopen(path), clock=clock, names=names, resumed=resumed)

    # -- the show's side -----------------------------------------------------------------------
    def tick(self, now: float) -> tuple[Cue, Status]:
        """The cue and the rundown at ``now``; a console is told if it moved on."""
        cue, status = self.live.at(now), self.live.status(now)
        current = status.current
        following = next((item.id for item in status.items if item.state == "next"), None)
        seen = (status.state, status.version, status.lap, status.hold, current, following)
        if seen != self._seen:
            self._seen = seen
            self._changed_now()
        return cue, status

    # -- the operators' side ---------------------------------------------------------------------
    async def operate(self, op: str, args: Mapping[str, object], version: int) -> Change:
        """Apply ``op`` (a :data:`~orchestrator.journal.OPERATIONS` name) now, journal it,
        and return the change once it is on disk (or once writing it failed:
        :attr:`journal_error` then says so, and the log).

        Raises:
            RundownError: refused (StaleVersion for another version); nothing changed.
        """
        change = apply(self.live, op, args, now=self._clock(), version=version)
        if op == "end":
            self.ended_at = change.now
        self._changed_now()
        cut = f"; cut by a hard start: {', '.join(change.cut)}" if change.cut else ""
        added = f"; added {change.added}" if change.added else ""
        shown = ", ".join(f"{k}={v!r}" for k, v in change.args.items())
        log.info("rundown: %s(%s) -> version %d%s%s", op, shown, change.version, added, cut)
        if self._journal is not None:
            # Submitted now, in the order applied; the one writer thread appends in order.
            # Shielded: an operator who hangs up does not cancel the write.
            written = asyncio.get_running_loop().run_in_executor(
                self._writer, self._journal.append, change
            )
            try:
                await asyncio.shield(written)
            except (OSError, JournalError) as exc:
                self.journal_error = f"version {change.version} was not journaled: {exc}"
                log.error(
                    "rundown: %s is applied but could not be journaled (%s): it would be "
                    "lost if jalsa restarted",
                    op,
                    exc,
                )
        return change

    async def wait_change(self, seen: int) -> int:
        """Wait until :attr:`changes` is not ``seen``; return it."""
        while self.changes == seen:
            await self._changed.wait()
        return self.changes

    def _changed_now(self) -> None:
        self.changes += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def status_json(self, now: float) -> dict[str, Any]:
        """The rundown at ``now`` for the console (``GET /api/rundown``).

        It stays the same while nothing changes (no "now" in it), so a console polling it
        can tell a change by comparing; only a hold moves the times of what is to come.
        """
        status = self.live.status(now)
        return {
            "version": status.version,
            "state": status.state,
            "hold": status.hold,
            "current": status.current.id if status.current is not None else None,
            "ends_at": _time(status.ends_at),
            "starts_at": _time(self.live.starts_at),
            "loop": self.live.loop,
            "lap": status.lap,
            "resumed_at": _time(self.resumed.at) if self.resumed is not None else None,
            "resumed_dropped": list(self.resumed.dropped) if self.resumed is not None else [],
            "journal_error": self.journal_error,
            "items": [
                {
                    "id": item.id,
                    "speaker": item.speaker,
                    "name": self._names.get(item.speaker, item.speaker),
                    "duration": round(item.duration, 3),
                    "start": _time(item.start),
                    "end": _time(item.end),
                    "state": item.state,
                    "hard_start": _time(item.hard_start),
                    "held": round(item.held, 3),
                    "cut": item.cut,
                }
                for item in status.items
            ],
        }

    async def close(self) -> None:
        """Finish the journal's writes and close it."""
        await asyncio.to_thread(self._writer.shutdown, True)
        if self._journal is not None:
            self._journal.close()


def _time(at: float | None) -> float | None:
    return None if at is None else round(at, 3)


def _clock_time(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _standing(status: Status, cue: Cue) -> str:
    """Where a resumed rundown stands, for the log."""
    left = format_duration(round(max(0.0, cue.remaining)))
    current = status.current
    if status.state == "hold":
        on = f", {current.id} resumes after it" if current is not None else ""
        return f"on hold ({status.hold!r}){on}"
    if current is not None:
        return f"{current.id} ({current.speaker}) is on air again, {left} left"
    upcoming = cue.next.speaker if cue.next is not None else "?"
    return f"{status.state}: {upcoming} in {left}"


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<stem>.<time>[-n]<suffix>`` beside it (never over a file)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        target = path.with_name(f"{path.stem}.{stamp}{f'-{n}' if n else ''}{path.suffix}")
        try:
            os.link(path, target)  # fails if the target exists: nothing is overwritten
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links
            if target.exists():
                continue
            path.rename(target)
            return target
        path.unlink()
        return target
    raise FileExistsError(f"{path}: no free name to move it aside")
