"""The edge's blips, counted and recorded for ``jalsa report`` with scope ``uplink``.

The edge keeps its own samples (``<edge state dir>/samples/``, the same JSON lines as
``jalsa run``'s, :mod:`monitoring.samples`): a ``start`` record, an ``outage`` record
``started`` when the slate goes on and ``cleared`` when the studio is back (both with
``since``, the moment the contribution's last packet arrived), and ``stop``. So
``jalsa report --state <edge state dir>`` lists each blip as an outage window, scope
``uplink``, platform ``contribution``, the edge's name as the vantage. Blocking file
writes: called from the edge's threads (the slate's and the demux's), never the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from monitoring.samples import Record, SampleLog

log = logging.getLogger(__name__)

PLATFORM: Final = "contribution"


@dataclass(frozen=True, slots=True)
class BlipSnapshot:
    """Attributes:
    slate_on: the slate covers a stall now.
    slate_seconds: seconds the slate has been on, in all.
    blips: stalls covered (each time the slate went on).
    """

    slate_on: bool
    slate_seconds: float
    blips: int


class UplinkOutages:
    """Thread-safe. ``samples`` None: counted, not written (tests of the fan-out)."""

    def __init__(
        self, edge: str, destinations: Sequence[tuple[str, str]], samples: Path | None
    ) -> None:
        self._edge = edge
        self._destinations = [{"name": n, "platform": p, "kind": "rtmp"} for n, p in destinations]
        self._log = SampleLog(samples) if samples is not None else None
        self._lock = threading.Lock()
        self._started = False
        self._since: float | None = None  # wall time of the stall's start, while on
        self._on_at = 0.0  # monotonic time the slate went on
        self._seconds = 0.0
        self._blips = 0

    def opened(self) -> None:
        """The edge's first relay started: the run begins (its ``start`` record)."""
        with self._lock:
            self._write(None)

    def began(self, since: float) -> None:
        """The slate went on; the contribution's last packet came at ``since`` (Unix)."""
        with self._lock:
            self._since, self._on_at = since, time.monotonic()
            self._blips += 1
            self._write(self._outage("started", since))

    def ended(self) -> None:
        """The studio is back: its keyframe ended the slate."""
        with self._lock:
            if self._since is None:
                return
            self._seconds += time.monotonic() - self._on_at
            self._write(self._outage("cleared", self._since))
            self._since = None

    def close(self) -> None:
        with self._lock:
            self._write({"t": time.time(), "type": "stop"})

    def snapshot(self) -> BlipSnapshot:
        with self._lock:
            on = self._since is not None
            running = time.monotonic() - self._on_at if on else 0.0
            return BlipSnapshot(on, self._seconds + running, self._blips)

    def _outage(self, event: str, since: float) -> Record:
        return {
            "t": time.time(),
            "type": "outage",
            "event": event,
            "scope": "uplink",
            "platform": PLATFORM,
            "vantages": [self._edge],
            "cities": [],
            "since": since,
        }

    def _write(self, record: Record | None) -> None:
        if self._log is None:
            return
        records = [] if record is None else [record]
        if not self._started:
            start = {"t": time.time(), "type": "start", "event": self._edge}
            records.insert(0, {**start, "destinations": self._destinations, "speakers": []})
            self._started = True
        try:
            self._log.write(records)
        except OSError as error:
            log.warning("could not record the uplink outage: %s", error)
