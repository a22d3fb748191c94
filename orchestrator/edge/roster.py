"""The edge's destinations: those of its edge file, plus what the studio adds or removes.

The studio's operator steers them through the edge's control routes
(orchestrator/edge/control.py) as if they were the studio's own: the roster outlives
each relay (a contribution whose streams change starts a new one: the roster puts every
destination on it again, the paused ones paused). Thread-safe: the fan-out starts relays
on the demux thread, the control routes run on the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from orchestrator.event.destination_spec import DestinationSpec
from relays.destination import Destination, DestinationSnapshot
from relays.relay import Relay

WAITING = "waiting for the studio's contribution"


class Roster:
    """See the module docstring."""

    def __init__(
        self,
        specs: Sequence[DestinationSpec],
        on_remove: Callable[[str, float], None] | None = None,
    ) -> None:
        """``on_remove(name, timeout)``: after a destination is removed (its mirror's
        ladder goes with it)."""
        self._on_remove = on_remove
        self._lock = threading.Lock()
        self._specs = {spec.name: spec for spec in specs}
        self._paused: set[str] = set()
        self._relay: Relay | None = None

    def specs(self) -> list[DestinationSpec]:
        with self._lock:
            return list(self._specs.values())

    def start(self, relay: Relay) -> None:
        """Put every destination on ``relay``, the new one of a new contribution."""
        with self._lock:
            self._relay = relay
            specs, paused = list(self._specs.values()), set(self._paused)
        for spec in specs:
            destination = relay.add(spec)
            if spec.name in paused:
                destination.pause()

    def add(self, spec: DestinationSpec) -> DestinationSnapshot:
        """Add a destination (live at once if a contribution is running).

        Raises:
            ValueError: A destination of that name exists.
        """
        with self._lock:
            if spec.name in self._specs:
                raise ValueError(f"a destination named {spec.name!r} already exists")
            self._specs[spec.name] = spec
            relay = self._relay
        if relay is None:
            return _waiting(spec)
        return relay.add(spec).snapshot()

    def remove(self, name: str, timeout: float) -> bool:
        """Stop and forget ``name``; True if its output closed cleanly in time.

        Raises:
            KeyError: No destination of that name.
        """
        with self._lock:
            del self._specs[name]
            self._paused.discard(name)
            relay = self._relay
        if self._on_remove is not None:
            self._on_remove(name, timeout)
        if relay is None:
            return True
        try:
            return relay.remove(name, timeout)
        except KeyError:
            return True

    def pause(self, name: str) -> DestinationSnapshot:
        """End ``name``'s stream and hold it (across contributions too).

        Raises:
            KeyError: No destination of that name.
        """
        return self._hold(name, paused=True)

    def resume(self, name: str) -> DestinationSnapshot:
        """Reconnect ``name`` (at the next keyframe).

        Raises:
            KeyError: No destination of that name.
        """
        return self._hold(name, paused=False)

    def _hold(self, name: str, *, paused: bool) -> DestinationSnapshot:
        with self._lock:
            spec = self._specs[name]
            (self._paused.add if paused else self._paused.discard)(name)
            relay = self._relay
        destination = _on(relay, name)
        if destination is None:
            return replace(_waiting(spec), state="paused") if paused else _waiting(spec)
        (destination.pause if paused else destination.resume)()
        return destination.snapshot()

    def snapshots(self) -> list[DestinationSnapshot]:
        """Every destination, in the order added; those not on a relay yet as waiting."""
        with self._lock:
            specs, paused, relay = list(self._specs.values()), set(self._paused), self._relay
        live = {s.name: s for s in relay.snapshots()} if relay is not None else {}
        return [
            live.get(spec.name)
            or replace(_waiting(spec), state="paused" if spec.name in paused else "connecting")
            for spec in specs
        ]


def _on(relay: Relay | None, name: str) -> Destination | None:
    if relay is None:
        return None
    try:
        return relay.get(name)
    except KeyError:
        return None


def _waiting(spec: DestinationSpec) -> DestinationSnapshot:
    return DestinationSnapshot(
        name=spec.name,
        platform=spec.platform,
        kind=spec.kind,
        target=spec.safe_url(),
        state="connecting",
        sent_bytes=0,
        sent_packets=0,
        reconnects=0,
        dropped_video=0,
        dropped_audio=0,
        lag_seconds=0.0,
        last_error=WAITING,
    )
