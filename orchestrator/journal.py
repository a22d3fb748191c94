"""The journal of a live rundown: every applied change as one JSON line, replayed after a
restart to rebuild the same rundown.

The file (in the state dir) starts with a header, then has one line per change::

    {"journal":1,"starts_at":1766000000.0,"loop":false,"items":["host","guest","host-2"]}
    {"op":"take","args":{"item":"host-2"},"now":1766000042.5,"version":1}

:meth:`Journal.append` writes a line, flushes and fsyncs it before returning, so a
change the operator was told about survives a crash. :func:`replay` reads the file and
applies the changes again, at the instants they were made, to a fresh
:class:`~orchestrator.live_rundown.LiveRundown`. :func:`apply` applies a change named by
data (a journal line, or the API's JSON body).

Bounds and damage: a line over :data:`MAX_LINE` bytes is refused, reading and writing.
A last line without its newline is a write torn by a crash: it is ignored with a
warning (the change it held was never reported applied) and cut off when the journal
is reopened. Anything else unreadable raises :class:`JournalError`. A journal is
reconciled with the event file by item id: a change naming an item the event no longer
has is dropped, with a warning saying which.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeGuard, cast

from orchestrator.event import SegmentSpec
from orchestrator.event.durable import fsync_dir
from orchestrator.live_rundown import Change, LiveRundown, RundownError

__all__ = [
    "MAX_LINE",
    "OPERATIONS",
    "Contents",
    "Header",
    "Journal",
    "JournalError",
    "Record",
    "Replayed",
    "apply",
    "open_journal",
    "read",
    "rebuild",
    "replay",
]

log = logging.getLogger(__name__)

MAX_LINE: Final = 64 * 1024  # bytes, newline excluded
FORMAT: Final = 1

OPERATIONS: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # op: (required args, optional args)
    "next": ((), ()),
    "take": (("item",), ()),
    "take_speaker": (("speaker", "duration"), ()),
    "set_duration": (("item", "duration"), ()),
    "insert": (("speaker", "duration"), ("after",)),
    "skip": (("item",), ()),
    "move": (("item",), ("after",)),
    "hold": ((), ("text",)),
    "resume": ((), ()),
    "end": ((), ()),
}


class JournalError(Exception):
    """The journal cannot be read (or written): ``path`` and the 1-based ``line``."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class Header:
    """The first line: how the rundown was started, and the event's item ids then."""

    starts_at: float
    loop: bool
    items: tuple[str, ...]
    event: str | None = None  # the event's name, when the journal was started with it


@dataclass(frozen=True, slots=True)
class Record:
    """One applied change: ``version`` is the rundown's version after it."""

    op: str
    args: Mapping[str, Any]
    now: float
    version: int


@dataclass(frozen=True, slots=True)
class Contents:
    """What a journal holds; ``size`` is the length of its whole lines, in bytes."""

    header: Header
    records: tuple[Record, ...]
    size: int
    torn: bool  # the last line was torn and is ignored


def apply(
    live: LiveRundown, op: str, args: Mapping[str, object], *, now: float, version: int
) -> Change:
    """Apply an operation named by data.

    Args:
        op: the method's name, like ``"take"``.
        args: its arguments by name (``duration`` in seconds; ``after`` may be None).

    Raises:
        RundownError: an unknown op or argument, an argument of the wrong type, or what
            the operation raises (StaleVersion too).
    """
    if op not in OPERATIONS:
        raise RundownError("op", f"unknown operation {op!r}: use one of {', '.join(OPERATIONS)}")
    required, optional = OPERATIONS[op]
    for name in args:
        if name not in required + optional:
            raise RundownError(name, f"{op} takes no {name!r}")
    for name in required:
        if name not in args:
            raise RundownError(name, f"{op} needs {name!r}")
    for name in ("item", "speaker", "after", "text"):
        value = args.get(name)
        if name in args and not isinstance(value, str) and not (name == "after" and value is None):
            raise RundownError(name, f"expected a string, got {value!r}")
    # Checked just above (a duration is checked by the operation itself).
    item, speaker, text = (cast(str, args.get(name, "")) for name in ("item", "speaker", "text"))
    after, duration = cast(str | None, args.get("after")), cast(float, args.get("duration"))
    match op:
        case "next":
            return live.next(now=now, version=version)
        case "take":
            return live.take(item, now=now, version=version)
        case "take_speaker":
            return live.take_speaker(speaker, duration, now=now, version=version)
        case "set_duration":
            return live.set_duration(item, duration, now=now, version=version)
        case "insert":
            return live.insert(speaker, duration, after, now=now, version=version)
        case "skip":
            return live.skip(item, now=now, version=version)
        case "move":
            return live.move(item, after, now=now, version=version)
        case "hold":
            return live.hold(text, now=now, version=version)
        case "resume":
            return live.resume(now=now, version=version)
        case _:  # "end", the last of OPERATIONS
            return live.end(now=now, version=version)


def read(path: Path) -> Contents:
    """Read a journal.

    Raises:
        JournalError: it cannot be read, has no whole header, or a line other than a
            torn last one is too long or not a journal line.
        FileNotFoundError: there is no journal.
    """
    with open(path, "rb") as file:
        lines: list[bytes] = []
        size = 0
        torn = False
        while line := file.readline(MAX_LINE + 2):
            number = len(lines) + 1
            if len(line) > MAX_LINE + 1 or (len(line) == MAX_LINE + 1 and line[-1:] != b"\n"):
                raise JournalError(path, number, f"line longer than {MAX_LINE} bytes: refused")
            if not line.endswith(b"\n"):
                torn = True
                log.warning("%s:%d: ignoring a torn last line (a crash mid-write)", path, number)
                break
            lines.append(line)
            size += len(line)
    if not lines:
        raise JournalError(path, 1, "no header: the journal is empty or its header is torn")
    header = _header(path, _json(path, 1, lines[0]))
    records = tuple(_record(path, n, _json(path, n, line)) for n, line in enumerate(lines[1:], 2))
    return Contents(header, records, size, torn)


def replay(
    path: Path, segments: Sequence[SegmentSpec], *, speakers: Collection[str] | None = None
) -> LiveRundown:
    """Rebuild the live rundown a journal records, for the event's current ``segments``.

    Changes are applied again at their instants; one the rundown now refuses (it names
    an item or a speaker the event file no longer has) is dropped with a warning.

    Raises:
        JournalError: as :func:`read`.
        ValueError: as LiveRundown does for these segments.
    """
    return rebuild(path, read(path), segments, speakers=speakers).live


@dataclass(frozen=True, slots=True)
class Replayed:
    """A journal replayed: ``gone`` are the header's items the event no longer has,
    ``dropped`` says which changes were dropped and why (each also logged)."""

    live: LiveRundown
    gone: tuple[str, ...]
    dropped: tuple[str, ...]


def rebuild(
    path: Path,
    contents: Contents,
    segments: Sequence[SegmentSpec],
    *,
    speakers: Collection[str] | None = None,
) -> Replayed:
    """:func:`replay` for a journal already read (``path`` names it in the warnings).

    Raises:
        ValueError: as LiveRundown does for these segments.
    """
    header = contents.header
    live = LiveRundown(segments, starts_at=header.starts_at, loop=header.loop, speakers=speakers)
    gone = tuple(item for item in header.items if item not in live.item_ids)
    if gone:
        log.warning(
            "%s: the event file no longer has the items %s: changes naming them are dropped",
            path,
            ", ".join(gone),
        )
    dropped: list[str] = []
    for number, record in enumerate(contents.records, 2):
        try:
            apply(live, record.op, record.args, now=record.now, version=live.version)
        except RundownError as exc:
            dropped.append(f"line {number}: {record.op} dropped: {exc}")
            log.warning("%s:%d: %s dropped: %s", path, number, record.op, exc)
    return Replayed(live, gone, tuple(dropped))


def open_journal(
    path: Path,
    segments: Sequence[SegmentSpec],
    *,
    starts_at: float,
    loop: bool = False,
    speakers: Collection[str] | None = None,
) -> tuple[LiveRundown, Journal]:
    """The live rundown a journal at ``path`` records, and the journal to go on with
    (after a restart); with no journal there, a fresh rundown and a new journal.

    Args:
        starts_at, loop: for a fresh rundown; a journal's header has its own.

    Raises:
        JournalError: as :func:`read`.
        ValueError: as LiveRundown does for these segments.
    """
    if path.exists():
        live = replay(path, segments, speakers=speakers)
        return live, Journal.reopen(path)
    live = LiveRundown(segments, starts_at=starts_at, loop=loop, speakers=speakers)
    return live, Journal.create(path, live)


class Journal:
    """Appends changes to a journal file, each flushed and fsync'ed."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def create(cls, path: Path, live: LiveRundown, *, event: str | None = None) -> Journal:
        """Start a journal for ``live`` (not changed yet) with its header (naming the
        ``event``, if given, so a journal is never resumed by another event).

        Raises:
            FileExistsError: there is a journal there already (replay or move it).
            JournalError: the header would be longer than MAX_LINE (thousands of items).
        """
        header = {
            "journal": FORMAT,
            "starts_at": live.starts_at,
            "loop": live.loop,
            "items": list(live.item_ids),
        }
        if event is not None:
            header["event"] = event
        data = _line(path, header)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        journal = cls(path, fd)
        journal._write(data)
        fsync_dir(path.parent)  # the new file's name survives a crash too
        return journal

    @classmethod
    def reopen(cls, path: Path) -> Journal:
        """Append to an existing journal, first cutting off a torn last line.

        Raises:
            JournalError: as :func:`read`.
        """
        contents = read(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        if contents.torn:
            os.ftruncate(fd, contents.size)
            os.fsync(fd)
        return cls(path, fd)

    def append(self, change: Change) -> None:
        """Record an applied change; returns once it is on disk.

        Raises:
            OSError: it could not be written (the caller should say so: the change
                is applied but would not survive a restart).
        """
        record = {
            "op": change.op,
            "args": dict(change.args),
            "now": change.now,
            "version": change.version,
        }
        self._write(_line(self.path, record))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)


def _line(path: Path, value: Mapping[str, Any]) -> bytes:
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    encoded = data.encode("utf-8")
    if len(encoded) > MAX_LINE:
        raise JournalError(path, 0, f"a line of {len(encoded)} bytes is over {MAX_LINE}")
    return encoded + b"\n"


def _json(path: Path, number: int, line: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise JournalError(path, number, f"not a JSON line: {exc}") from None
    if not isinstance(value, dict):
        raise JournalError(path, number, "not a JSON object")
    return value


def _header(path: Path, value: Mapping[str, Any]) -> Header:
    starts_at, loop, items = value.get("starts_at"), value.get("loop"), value.get("items")
    if value.get("journal") != FORMAT:
        raise JournalError(path, 1, f"not a jalsa journal of format {FORMAT}")
    if not _is_time(starts_at) or not isinstance(loop, bool):
        raise JournalError(path, 1, "the header needs starts_at (a number) and loop")
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise JournalError(path, 1, "the header's items must be a list of ids")
    event = value.get("event")
    if event is not None and not isinstance(event, str):
        raise JournalError(path, 1, "the header's event must be a name")
    return Header(float(starts_at), loop, tuple(items), event)


def _record(path: Path, number: int, value: Mapping[str, Any]) -> Record:
    op, args, now, version = (value.get(k) for k in ("op", "args", "now", "version"))
    if not isinstance(op, str) or not isinstance(args, dict):
        raise JournalError(path, number, "a change needs op (a string) and args (an object)")
    if not _is_time(now) or isinstance(version, bool) or not isinstance(version, int):
        raise JournalError(path, number, "a change needs now (a number) and version")
    return Record(op, args, float(now), version)


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
