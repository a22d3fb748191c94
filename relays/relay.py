"""The fan-out: every encoded packet offered to every destination's own queue.

Live network connections are moved by one :class:`~relays.pump.Pump` thread, woken
once per publish; recordings and the HLS mirror write from their own threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from av.stream import Stream

from orchestrator.event.destination_spec import DestinationSpec
from relays.backoff import Backoff
from relays.destination import CONNECT_TIMEOUT, STALL_TIMEOUT, Destination, DestinationSnapshot
from relays.packet import EncodedPacket
from relays.pump import Pump

log = logging.getLogger(__name__)

# Kept back from a close's time budget for the threads to return after their deadline.
_JOIN_MARGIN = 0.3


class Relay:
    """Owns the destinations. ``publish`` runs on the program thread and never blocks.

    Destinations can be added, removed, paused and resumed at any time (from the API),
    without touching the others.

    Args:
        templates: The encoder's (video, audio) streams.
        state_dir: Where recordings and the HLS mirror go.
        connect_timeout: Each destination's bound on setting up a connection.
        stall_timeout: Each destination's bound on a link that takes no bytes.
        backoff: Makes each destination's reconnect schedule (the default if None).
        keyframe: Asks the encoder for a keyframe now (an edge contribution that connects
            calls it, see :class:`~relays.destination.Destination`).
    """

    def __init__(
        self,
        templates: tuple[Stream, Stream],
        state_dir: Path,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        stall_timeout: float = STALL_TIMEOUT,
        backoff: Callable[[], Backoff] | None = None,
        keyframe: Callable[[], None] | None = None,
    ) -> None:
        self._templates = templates
        self._keyframe = keyframe
        self._state_dir = state_dir
        self._connect_timeout = connect_timeout
        self._stall_timeout = stall_timeout
        self._backoff = backoff
        self._destinations: dict[str, Destination] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._pump = Pump()
        self._pump.start()

    def add(self, spec: DestinationSpec) -> Destination:
        """Start a destination.

        Raises:
            ValueError: The name is taken, or the relay is closed.
        """
        with self._lock:
            if self._closed:
                raise ValueError("the relay is closed")
            if spec.name in self._destinations:
                raise ValueError(f"destination {spec.name!r} already exists")
            destination = Destination(
                spec,
                self._templates,
                self._state_dir,
                connect_timeout=self._connect_timeout,
                stall_timeout=self._stall_timeout,
                backoff=self._backoff() if self._backoff is not None else None,
                pump=self._pump,
                keyframe=self._keyframe,
            )
            self._destinations[spec.name] = destination
        destination.start()
        return destination

    def get(self, name: str) -> Destination:
        """Raises:
        KeyError: No destination has that name.
        """
        with self._lock:
            return self._destinations[name]

    def remove(self, name: str, timeout: float = 3.0) -> bool:
        """Stop a destination (its stream ended politely if that is quick) and forget it.

        Returns:
            True if its writer finished within ``timeout`` (else it is abandoned).

        Raises:
            KeyError: No destination has that name.
        """
        with self._lock:
            destination = self._destinations.pop(name)
        deadline = time.monotonic() + timeout
        destination.close(deadline - _JOIN_MARGIN, drain=False)
        return destination.join(deadline - time.monotonic())

    def publish(self, packets: list[EncodedPacket]) -> None:
        with self._lock:
            destinations = list(self._destinations.values())
        for destination in destinations:
            destination.offer(packets)
        self._pump.wake()

    def close(self, timeout: float) -> list[str]:
        """Close every destination (trailers written) within ``timeout`` seconds in all.

        What is queued is drained first, as far as the time allows. Returns the names of
        destinations that did not finish in time (a blocked link): their threads are
        abandoned, never waited on.
        """
        with self._lock:
            self._closed = True
            destinations = list(self._destinations.values())
        deadline = time.monotonic() + timeout
        for destination in destinations:
            destination.close(deadline - _JOIN_MARGIN)
        stuck = [d.spec.name for d in destinations if not d.join(deadline - time.monotonic())]
        self._pump.stop(max(0.0, deadline - time.monotonic()))
        for name in stuck:
            log.warning("destination %s did not close in time", name)
        return stuck

    def snapshots(self) -> list[DestinationSnapshot]:
        with self._lock:
            destinations = list(self._destinations.values())
        return [d.snapshot() for d in destinations]
