"""The fan-out: every encoded packet offered to every destination's own queue."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from av.stream import Stream

from orchestrator.destination_spec import DestinationSpec
from relays.destination import Destination, DestinationSnapshot
from relays.packet import EncodedPacket

log = logging.getLogger(__name__)


class Relay:
    """Owns the destinations. ``publish`` runs on the program thread and never blocks."""

    def __init__(self, templates: tuple[Stream, Stream], state_dir: Path) -> None:
        self._templates = templates
        self._state_dir = state_dir
        self._destinations: dict[str, Destination] = {}
        self._lock = threading.Lock()

    def add(self, spec: DestinationSpec) -> None:
        with self._lock:
            if spec.name in self._destinations:
                raise ValueError(f"destination {spec.name!r} already exists")
            destination = Destination(spec, self._templates, self._state_dir)
            self._destinations[spec.name] = destination
        destination.start()

    def remove(self, name: str, timeout: float = 5.0) -> None:
        with self._lock:
            destination = self._destinations.pop(name)
        destination.close()
        destination.join(timeout)

    def publish(self, packets: list[EncodedPacket]) -> None:
        with self._lock:
            destinations = list(self._destinations.values())
        for destination in destinations:
            destination.offer(packets)

    def close(self, timeout: float) -> list[str]:
        """Close every destination (trailers written) within ``timeout`` seconds in all.

        Returns the names of destinations that did not finish in time (a blocked link).
        """
        with self._lock:
            destinations = list(self._destinations.values())
        for destination in destinations:
            destination.close()
        deadline = time.monotonic() + timeout
        stuck = [
            d.spec.name for d in destinations if not d.join(max(0.0, deadline - time.monotonic()))
        ]
        for name in stuck:
            log.warning("destination %s did not close in time", name)
        return stuck

    def snapshots(self) -> list[DestinationSnapshot]:
        with self._lock:
            destinations = list(self._destinations.values())
        return [d.snapshot() for d in destinations]
