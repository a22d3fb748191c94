"""The event file: who speaks, in what order, how the program looks and where it goes.

:func:`load_event` reads a TOML file and :func:`parse_event` validates its data into an
:class:`Event`. Validation never stops at the first mistake: every problem is collected,
each naming its key (``program.fps``, ``speakers[1].source``, ``rundown[2].speaker``,
``destinations[0].key``: indexes are 0-based, in file order) and saying how to fix it,
then one :class:`EventError` is raised with all of them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final, Literal, cast

from orchestrator.event.destination_spec import DestinationSpec, parse_destinations
from orchestrator.event.duration import format_duration, parse_duration
from orchestrator.event.edge_spec import EdgeSpec, check_via, parse_edges
from orchestrator.event.ice_servers import IceServer, parse_ice_servers
from orchestrator.event.monitoring_spec import MonitoringSpec, parse_monitoring
from orchestrator.event.problems import EventError, Problem, Problems
from orchestrator.event.program_spec import ProgramSpec, parse_program
from orchestrator.event.reader import Table, did_you_mean, one_of, quote, substitute_env
from orchestrator.event.speaker_spec import SpeakerSpec, parse_speakers

MAX_SEGMENT_SECONDS: Final = 24 * 3600.0
_TOP_KEYS: Final = (
    "event",
    "program",
    "speakers",
    "rundown",
    "destinations",
    "ice_servers",
    "monitoring",
    "edges",
)
_SEGMENT_KEYS: Final = ("speaker", "duration", "start", "id")
# An item id as written in the file; a derived one ("host-2") may be a little longer.
SEGMENT_ID_PATTERN: Final = re.compile(r"[a-z0-9_-]{1,40}")
_DERIVED_ID: Final = re.compile(r"[a-z0-9_-]+")
_START_EXAMPLE: Final = "2026-12-17T20:30:00+05:00"
DEFAULT_EVENT_NAME: Final = "Digital Jalsa"


@dataclass(frozen=True, slots=True)
class EventInfo:
    """``[event]``: the event's name, what happens when the rundown ends, and who approves
    uploaded messages."""

    name: str = DEFAULT_EVENT_NAME
    # "stop": exit 0 when the rundown ends; "slate": keep the end slate on air.
    on_end: Literal["stop", "slate"] = "stop"
    # Who approves a speaker's uploaded message before it may go on air: "operator" (in
    # the console), or "auto" (every upload at once: only for links you trust).
    approve_messages: Literal["operator", "auto"] = "operator"
    # Which ICE candidates of a speaker's WHIP offer jalsa may send to: "lan" (public and
    # private-network addresses, browsers' mDNS names), "public" (public addresses only)
    # or "any" (loopback too: everything on one machine).
    speaker_candidates: Literal["lan", "public", "any"] = "lan"


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """One ``[[rundown]]`` item: ``speaker`` is on for ``duration`` seconds.

    ``start``, when set, is a hard start: the segment begins exactly then, cutting an
    overrunning previous segment. It is always timezone-aware.

    ``id`` is the item's id as written in the file (None: not given); live control and
    the journal name items by :func:`segment_ids`, which derives the missing ones.

    Raises:
        ValueError: the duration is not in (0, 24h], ``start`` has no UTC offset, or
            ``id`` is not made of lowercase letters, digits, ``-`` and ``_``.
    """

    speaker: str
    duration: float
    start: datetime | None = None
    id: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.duration <= MAX_SEGMENT_SECONDS:
            raise ValueError(f"segment duration must be in (0, 24h], got {self.duration!r}")
        if self.start is not None and self.start.utcoffset() is None:
            raise ValueError("segment start must have a UTC offset")
        if self.id is not None and not _DERIVED_ID.fullmatch(self.id):
            raise ValueError(f"segment id must be lowercase letters, digits, - and _: {self.id!r}")


def segment_ids(segments: Sequence[SegmentSpec]) -> tuple[str, ...]:
    """Each item's id: its own, else derived from its speaker.

    A speaker's first item is ``"<speaker>"``, their later ones ``"<speaker>-2"``,
    ``"<speaker>-3"``... counting all of that speaker's items, those with an id of their
    own too, so giving one item an id never renames another.

    Raises:
        ValueError: two items have the same id.
    """
    ids = _derived_ids([(segment.speaker, segment.id) for segment in segments])
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise ValueError(f"two rundown items have the id {item_id!r}")
        seen.add(item_id)
    return ids


def _derived_ids(items: Sequence[tuple[str, str | None]]) -> tuple[str, ...]:
    """The ids of ``(speaker, id as written)`` items, in order (duplicates kept)."""
    count: dict[str, int] = {}
    ids = []
    for speaker, given in items:
        count[speaker] = count.get(speaker, 0) + 1
        nth = count[speaker]
        ids.append(given if given is not None else speaker if nth == 1 else f"{speaker}-{nth}")
    return tuple(ids)


@dataclass(frozen=True, slots=True)
class Event:
    """A whole, valid event file. Paths in it are absolute."""

    info: EventInfo
    program: ProgramSpec
    speakers: tuple[SpeakerSpec, ...]
    rundown: tuple[SegmentSpec, ...]
    destinations: tuple[DestinationSpec, ...]
    base_dir: Path
    ice_servers: tuple[IceServer, ...] = field(default=(), hash=False)
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec, hash=False)
    edges: tuple[EdgeSpec, ...] = field(default=(), hash=False)

    def speaker(self, speaker_id: str) -> SpeakerSpec:
        """The speaker with this id.

        Raises:
            KeyError: no such speaker.
        """
        for speaker in self.speakers:
            if speaker.id == speaker_id:
                return speaker
        raise KeyError(speaker_id)


def load_event(path: Path, env: Mapping[str, str] | None = None, check_files: bool = True) -> Event:
    """Read and validate an event file.

    Args:
        path: the TOML file; relative paths inside it are taken from its folder.
        env: where ``${VAR}`` values come from (default: ``os.environ``).
        check_files: check that clips, fallbacks and photos exist and are readable.

    Raises:
        EventError: the file cannot be read, is not valid TOML, or has problems; its
            ``path`` is set and its message lists every problem.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise _file_error(path, "does not exist: check the path") from None
    except IsADirectoryError:
        raise _file_error(path, "is a folder: name the event's .toml file") from None
    except PermissionError:
        raise _file_error(path, "is not readable: fix its permissions") from None
    except OSError as exc:
        raise _file_error(path, f"cannot be read ({exc.strerror}): check the path") from None
    except UnicodeDecodeError as exc:
        raise _file_error(
            path, f"is not UTF-8 text (bad byte at offset {exc.start}): save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _file_error(path, f"is not valid TOML: {exc}") from None
    base_dir = Path(os.path.abspath(path.parent))
    try:
        return parse_event(
            data, base_dir=base_dir, env=os.environ if env is None else env, check_files=check_files
        )
    except EventError as exc:
        raise EventError(exc.problems, path) from None


def _file_error(path: Path, message: str) -> EventError:
    return EventError([Problem("<file>", f"{path} {message}")], path)


def parse_event(
    data: Mapping[str, Any], *, base_dir: Path, env: Mapping[str, str], check_files: bool = True
) -> Event:
    """Validate the data of an event file (as :mod:`tomllib` returns it).

    Args:
        data: the parsed TOML document.
        base_dir: the folder relative paths are taken from.
        env: where ``${VAR}`` values come from; they are substituted into every string.
        check_files: check that clips, fallbacks and photos exist and are readable.

    Raises:
        EventError: with every problem found (its ``path`` is None).
    """
    problems = Problems()
    top = Table(substitute_env(data, "", env, problems), "", problems)
    top.check_keys(_TOP_KEYS)
    info = _parse_info(top.table("event"))
    program = parse_program(top.table("program"))
    speaker_tables = top.tables("speakers")
    speakers = parse_speakers(speaker_tables, base_dir, check_files)
    if top.data.get("speakers") in (None, []):
        problems.add(
            "speakers",
            "none defined: add a [[speakers]] table with id and name (and source, unless "
            "the speaker joins live from the browser)",
        )
    # Every id as written, valid or not: a rundown item naming a speaker whose id has its
    # own problem is not reported twice. With no ids at all, the missing speakers are the
    # problem, not each reference. Either way the event is rejected, so an Event's rundown
    # only ever names speakers it has.
    declared = [t.raw("id") for t in speaker_tables if isinstance(t.raw("id"), str)]
    rundown = _parse_rundown(top, declared)
    destinations = parse_destinations(top.tables("destinations"), base_dir, program.height)
    edges = parse_edges(top.tables("edges"), base_dir)
    check_via(top.tables("destinations"), destinations, edges)
    ice_servers = parse_ice_servers(top.tables("ice_servers"))
    monitoring = parse_monitoring(top.table("monitoring"), base_dir, check_files)
    problems.raise_if_any()
    return Event(
        info=info,
        program=program,
        speakers=speakers,
        rundown=rundown,
        destinations=destinations,
        base_dir=base_dir,
        ice_servers=ice_servers,
        monitoring=monitoring,
        edges=edges,
    )


def _parse_info(table: Table) -> EventInfo:
    table.check_keys(("name", "on_end", "approve_messages", "speaker_candidates"))
    name = table.string("name")
    if name is not None and not name.strip():
        table.problem("name", 'is empty: give the event a name, like "Digital Jalsa"')
        name = None
    on_end = table.choice("on_end", ("stop", "slate"), "stop")
    approve = table.choice("approve_messages", ("operator", "auto"), "operator")
    candidates = table.choice("speaker_candidates", ("lan", "public", "any"), "lan")
    return EventInfo(
        name=str(name) if name else DEFAULT_EVENT_NAME,
        on_end=cast(Literal["stop", "slate"], on_end or "stop"),
        approve_messages=cast(Literal["operator", "auto"], approve or "operator"),
        speaker_candidates=cast(Literal["lan", "public", "any"], candidates or "lan"),
    )


def _parse_rundown(top: Table, declared: Sequence[str]) -> tuple[SegmentSpec, ...]:
    tables = top.tables("rundown")
    if top.data.get("rundown") in (None, []):
        top.problem(
            "rundown",
            'is empty: add at least one [[rundown]] item, like speaker = "host" and '
            'duration = "5m"',
        )
    last_start: tuple[str, datetime, Any] | None = None
    result = []
    # Items with a known speaker, for their ids (False: an invalid id, already reported).
    named: list[tuple[Table, str, str | Literal[False] | None]] = []
    for table in tables:
        table.check_keys(_SEGMENT_KEYS)
        speaker = table.string("speaker", required='add speaker = "<id>" naming a [[speakers]] id')
        if speaker is not None and speaker not in declared and declared:
            table.problem(
                "speaker",
                f"no speaker has id {quote(speaker)}: {did_you_mean(speaker, declared)}"
                f"the speakers are {one_of(declared)}; fix the id or add a [[speakers]] table",
            )
            speaker = None
        duration = _parse_segment_duration(table)
        start = _parse_start(table)
        item_id = _parse_segment_id(table)
        if speaker is not None:
            named.append((table, str(speaker), item_id))
        if start is not None:
            if last_start is not None and start <= last_start[1]:
                table.problem(
                    "start",
                    f"{quote(table.raw('start'))} is not after {last_start[0]} "
                    f"({quote(last_start[2])}): hard starts must follow the rundown "
                    "order; reorder the items or fix the time",
                )
            last_start = (table.at("start"), start, table.raw("start"))
        if speaker is not None and duration is not None and item_id is not False:
            result.append(
                SegmentSpec(speaker=str(speaker), duration=duration, start=start, id=item_id)
            )
    _check_ids_unique(named)
    return tuple(result)


def _parse_segment_id(table: Table) -> str | Literal[False] | None:
    """The item's id as written; None when absent; False when invalid (problem recorded)."""
    if not table.has("id"):
        return None
    value = table.string("id")
    if value is None:
        return False
    if not SEGMENT_ID_PATTERN.fullmatch(value):
        table.problem(
            "id",
            f"{quote(value)} is not a valid id: use 1-40 lowercase letters, digits, - and _, "
            'like "host-opening"',
        )
        return False
    return value


def _check_ids_unique(named: Sequence[tuple[Table, str, str | Literal[False] | None]]) -> None:
    """Report an id two items would share, on the item whose id was written.

    Args:
        named: each item with a known speaker: its table, speaker and id as written
            (None: not given, False: invalid and already reported).
    """
    # An invalid id still counts as its speaker's item; "\0" keeps it from clashing.
    written = [
        (speaker, f"\0{i}" if given is False else given)
        for i, (_, speaker, given) in enumerate(named)
    ]
    first: dict[str, int] = {}
    for position, item_id in enumerate(_derived_ids(written)):
        earlier = first.setdefault(item_id, position)
        if earlier == position:
            continue
        (table, _, given), (other, _, other_given) = named[position], named[earlier]
        if given is None and other_given is None:
            table.problem(
                "id",
                f"is missing: by default this item and {other.key} would both be "
                f"{quote(item_id)}; give one of them an id",
            )
        elif given is None:
            other.problem("id", f"{quote(item_id)} is the default id of {table.key}: pick another")
        else:
            how = "the default id" if other_given is None else "already the id"
            table.problem("id", f"{quote(given)} is {how} of {other.key}: pick another id")


def _parse_segment_duration(table: Table) -> float | None:
    if not table.has("duration"):
        table.problem("duration", 'is missing: add duration = "5m" (or "90s", "1h30m")')
        return None
    value = table.raw("duration")
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        table.problem(
            "duration",
            f'expected a duration string, got {quote(value)}: add the unit, like "{value}s"',
        )
        return None
    text = table.string("duration")
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        # Quote the template, not the substituted value, when it came from the environment.
        message = str(exc).replace(repr(str(text)), quote(text), 1)
        table.problem("duration", message)
        return None
    if not 0 < seconds <= MAX_SEGMENT_SECONDS:
        table.problem(
            "duration",
            f"{format_duration(seconds)} is out of range: a segment lasts more than 0s and at "
            "most 24h",
        )
        return None
    return seconds


def _parse_start(table: Table) -> datetime | None:
    raw = value = table.raw("start")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            table.problem(
                "start",
                f"{quote(raw)} is not an RFC 3339 date-time: write it like {_START_EXAMPLE}",
            )
            return None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            table.problem(
                "start",
                f"{quote(raw)} has no timezone: add a UTC offset like +05:00 "
                f"(e.g. {_START_EXAMPLE}) or Z for UTC",
            )
            return None
        return value
    if isinstance(value, date | time):
        table.problem(
            "start",
            f"{quote(value)} needs both a date and a time: write it like {_START_EXAMPLE}",
        )
        return None
    table.problem(
        "start", f"expected a date-time, got {quote(value)}: write it like {_START_EXAMPLE}"
    )
    return None
