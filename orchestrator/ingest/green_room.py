"""The green room: the live speakers' sources (browser, WHIP), by speaker id.

A speaker with no ``source`` in the event file joins from their link; their WebRTC
session attaches a :class:`Source` here and detaches it when it ends. The show asks the
green room who is connected. A rejoin attaches a new source, which replaces the old one.
"""

from __future__ import annotations

import threading

from orchestrator.program.source import Source


class GreenRoom:
    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()

    def attach(self, speaker_id: str, source: Source) -> Source | None:
        """Make ``source`` the speaker's feed; returns the one it replaces (to be stopped)."""
        with self._lock:
            previous = self._sources.get(speaker_id)
            self._sources[speaker_id] = source
        return previous

    def detach(self, speaker_id: str, source: Source) -> None:
        """Remove ``source`` if it is still the speaker's feed (a rejoin may have replaced it)."""
        with self._lock:
            if self._sources.get(speaker_id) is source:
                del self._sources[speaker_id]

    def get(self, speaker_id: str) -> Source | None:
        with self._lock:
            return self._sources.get(speaker_id)

    def sources(self) -> dict[str, Source]:
        with self._lock:
            return dict(self._sources)
