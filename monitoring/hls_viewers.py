"""Viewers of the self-hosted HLS mirror: distinct sessions seen in the last 30 seconds.

A player re-fetches the playlist every few seconds while it plays, so a session (client
address + user agent) seen within the window is watching now. Viewers behind one NAT
with the same browser count once: the figure is a lower bound.

Sans-I/O, with an injected clock; used from one thread (the event loop). Memory is
bounded: at most ``max_sessions`` per stream (the oldest are forgotten first), and only
a hash of each session is kept, never the address.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

WINDOW_SECONDS = 30.0
MAX_SESSIONS = 100_000


class HlsViewers:
    """Args:
    window: how recently a session must have been seen to count (seconds).
    clock: a monotonic clock.
    max_sessions: the most sessions remembered per stream.
    """

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        if window <= 0 or max_sessions < 1:
            raise ValueError("window and max_sessions must be positive")
        self.window = window
        self.max_sessions = max_sessions
        self._clock = clock
        # stream -> session hash -> last seen; ordered by last seen (oldest first)
        self._streams: dict[str, OrderedDict[int, float]] = {}

    def seen(self, stream: str, client: str | None, user_agent: str | None) -> None:
        """A request for ``stream`` from this client."""
        now = self._clock()
        sessions = self._streams.setdefault(stream, OrderedDict())
        key = hash((client or "", user_agent or ""))
        sessions[key] = now
        sessions.move_to_end(key)
        self._expire(sessions, now)
        while len(sessions) > self.max_sessions:
            sessions.popitem(last=False)

    def count(self, stream: str) -> int:
        """Distinct sessions of ``stream`` seen within the window."""
        sessions = self._streams.get(stream)
        if sessions is None:
            return 0
        self._expire(sessions, self._clock())
        return len(sessions)

    def _expire(self, sessions: OrderedDict[int, float], now: float) -> None:
        while sessions:
            oldest = next(iter(sessions.values()))
            if now - oldest <= self.window:
                break
            sessions.popitem(last=False)
