"""Samples for ``jalsa report``: JSON lines in ``<state dir>/samples/``.

One record per line, each with ``t`` (Unix time) and ``type``:

- ``start``: jalsa started: ``event``, ``destinations`` ([{name, platform, kind}]),
  ``speakers``;
- ``sample`` (every ``sample_seconds``): ``listeners`` {platform: n},
  ``by_destination`` {name: n}, ``destinations`` {name: state}, ``on_air``,
  ``on_air_kind``;
- ``on_air``: the program cut to ``speaker`` (``kind`` speaker / fallback / slate);
- ``destination``: ``name``'s state changed to ``state`` (connecting / live / retrying
  / stopped);
- ``outage``: ``event`` started / cleared, ``scope``, ``platform``, ``cities``,
  ``vantages``, ``since``;
- ``classifier``: the outage debounce of this run, ``for_seconds`` and ``clear_seconds``;
- ``probe_round``: one probe round of a vantage (jalsa's own, or a pushing agent's, late
  ones included): ``vantage``, ``city``, ``isp``, ``started`` and ``measured`` (when it
  ended, jalsa's clock, skew corrected), ``late``, ``skew``, ``results`` [[platform,
  check, ok]], ``throughput`` [[platform, bytes/s]], and a pushing agent's ``seq``; ``t``
  is its arrival;
- ``stop``: jalsa stopped cleanly.

Changes are seen once a second, so on-air time and uptime are exact to a second.
Files are ``samples-<UTC start>-<n>.jsonl`` so names sort in time order; a file is
closed at ``max_bytes`` and the oldest files are deleted beyond ``max_files``, so the
folder never grows past about ``max_bytes * max_files``. Writes happen in a worker
thread (:func:`asyncio.to_thread`), a second's worth of lines at a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from monitoring.listeners import ListenersSnapshot
from monitoring.outage_watch import OutageEvent
from monitoring.probe_round import ProbeRound
from monitoring.show_view import ShowView
from orchestrator.event.states import OnAirKind, RelayState

log = logging.getLogger(__name__)

MAX_BYTES: Final = 5_000_000
MAX_FILES: Final = 20
PENDING_LIMIT: Final = 1000
NOTES_LIMIT: Final = 200_000  # probe rounds between two ticks: 200 agents' 24 h backlogs
Record = dict[str, Any]


class SampleLog:
    """Appends records to rotating JSON-lines files. Blocking: call from a worker thread."""

    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = MAX_BYTES,
        max_files: int = MAX_FILES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._stem = "samples-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
        self._index = 0
        self._size = 0
        self._path: Path | None = None

    def write(self, records: list[Record]) -> None:
        if not records:
            return
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        if self._path is None or (self._size + len(data) > self.max_bytes and self._size):
            self._rotate()
        assert self._path is not None
        with self._path.open("ab") as file:
            file.write(data)
        self._size += len(data)

    def _rotate(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            self._index += 1
            path = self.folder / f"{self._stem}-{self._index:04d}.jsonl"
            if not path.exists():
                break
        self._path, self._size = path, 0
        files = sorted(self.folder.glob("samples-*.jsonl"))
        for old in files[: max(0, len(files) - self.max_files + 1)]:
            old.unlink(missing_ok=True)


def read_records(folder: Path) -> Iterator[Record]:
    """Every record in the folder, in file order; unreadable lines are skipped."""
    for path in sorted(folder.glob("samples-*.jsonl")):
        with path.open("rb") as file:
            for line in file:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # e.g. the last line of a run killed mid-write
                if isinstance(record, dict) and isinstance(record.get("t"), int | float):
                    yield record


class Sampler:
    """Watches the show and the listeners once a second; writes changes and samples.

    Args:
        log_: where records go.
        show: the show's snapshot.
        listeners: the listener counts' snapshot.
        every: seconds between ``sample`` records.
        clock: wall-clock time.
    """

    def __init__(
        self,
        log_: SampleLog,
        show: Callable[[], ShowView],
        listeners: Callable[[], ListenersSnapshot],
        *,
        every: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = log_
        self._show = show
        self._listeners = listeners
        self.every = every
        self._clock = clock
        self._next_sample = 0.0
        self._on_air: tuple[str, OnAirKind] | None = None
        self._states: dict[str, RelayState] = {}
        self._pending: deque[Record] = deque(maxlen=PENDING_LIMIT)
        self._notes: deque[Record] = deque(maxlen=NOTES_LIMIT)
        self._started = False

    def note(self, record: Record) -> None:
        """Write ``record`` (its ``t`` now, if it has none) at the next tick."""
        self._notes.append(record if "t" in record else {"t": self._clock(), **record})

    def outage(self, event: OutageEvent) -> None:
        o = event.outage
        self._pending.append(
            {
                "t": event.at,
                "type": "outage",
                "event": event.kind,
                "scope": o.scope,
                "platform": o.platform,
                "cities": sorted(o.cities),
                "vantages": sorted(o.vantages),
                "since": o.since,
            }
        )

    def tick(self, *, sample: bool = False) -> list[Record]:
        """The records due now (pure apart from the snapshots and the clock); with
        ``sample``, a ``sample`` record even if it is not due."""
        now = self._clock()
        show = self._show()
        records: list[Record] = []
        if not self._started:
            self._started = True
            records.append(
                {
                    "t": now,
                    "type": "start",
                    "event": show.event,
                    "destinations": [
                        {"name": d.name, "platform": d.platform, "kind": d.kind}
                        for d in show.destinations
                    ],
                    "speakers": list(show.speakers),
                }
            )
        on_air = (show.on_air, show.on_air_kind)
        if on_air != self._on_air:
            self._on_air = on_air
            records.append({"t": now, "type": "on_air", "speaker": on_air[0], "kind": on_air[1]})
        for d in show.destinations:
            if self._states.get(d.name) != d.state:
                self._states[d.name] = d.state
                records.append({"t": now, "type": "destination", "name": d.name, "state": d.state})
        records.extend(self._pending)
        self._pending.clear()
        records.extend(self._notes)
        self._notes.clear()
        if now >= self._next_sample or sample:
            self._next_sample = now + self.every
            listeners = self._listeners()
            records.append(
                {
                    "t": now,
                    "type": "sample",
                    "listeners": listeners.by_platform(),
                    "by_destination": {
                        d.destination: d.value
                        for d in listeners.destinations
                        if d.value is not None
                    },
                    "destinations": dict(self._states),
                    "on_air": on_air[0],
                    "on_air_kind": on_air[1],
                }
            )
        return records

    async def run(self, period: float = 1.0) -> None:
        """Tick until cancelled."""
        while True:
            try:
                records = self.tick()
                await asyncio.to_thread(self.log.write, records)
            except OSError as error:
                log.warning("samples: cannot write to %s: %s", self.log.folder, error.strerror)
            await asyncio.sleep(period)

    async def close(self) -> None:
        """Write the last changes, a last sample and the ``stop`` record."""
        records = self.tick(sample=True) if self._started else []
        records.append({"t": self._clock(), "type": "stop"})
        try:
            await asyncio.to_thread(self.log.write, records)
        except OSError as error:
            log.warning("samples: cannot write to %s: %s", self.log.folder, error.strerror)


def round_record(
    found: ProbeRound,
    *,
    arrival: float,
    late: bool = False,
    skew: float = 0.0,
    seq: int | None = None,
) -> Record:
    """The ``probe_round`` record of a round (``seq``: a pushing agent's sequence number)."""
    v = found.vantage
    extra: dict[str, object] = {} if seq is None else {"seq": seq}
    if found.next_in:
        extra["next_in"] = found.next_in
    return {
        **extra,
        "t": arrival,
        "type": "probe_round",
        "vantage": v.name,
        "city": v.city,
        "isp": v.isp,
        "started": found.started_at,
        "measured": found.finished_at,
        "late": late,
        "skew": round(skew, 3),
        "results": [[p, c, ok] for (p, c), (ok, _) in sorted(found.outcomes().items())],
        "throughput": [[p, round(s, 1)] for p, s in sorted(found.throughput().items())],
    }
