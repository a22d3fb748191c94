"""Which watch-page heartbeats count as listeners: bounded, and no personal data kept.

The listener page (``/watch/<mirror>``) sends a heartbeat every 15 s while it plays,
carrying a random session id it made itself (kept in the tab's sessionStorage). Behind
a cache the playlist requests never reach jalsa, so these are what
``jalsa_listeners{platform="hls"}`` counts (:class:`monitoring.hls_viewers.HlsViewers`,
by session).

Abuse resistance, sans-I/O with an injected clock:
- a session id must look like one the page makes (16 to 64 of ``[A-Za-z0-9_-]``);
- one network address can hold at most ``per_address`` live sessions at a time (a
  household or a NAT has a few; a script inventing ids gets no further); the address is
  kept only as a keyed hash, for the window, and the total is bounded by
  ``max_addresses``.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable

SESSION = re.compile(r"[A-Za-z0-9_-]{16,64}")
BEAT_SECONDS = 15.0
WINDOW_SECONDS = 45.0  # three heartbeats: one lost on a bad link does not drop a listener
PER_ADDRESS = 32
MAX_ADDRESSES = 200_000


class HeartbeatGate:
    """Args:
    window: how long a session stays counted after its last heartbeat.
    per_address: the most live sessions one address may hold.
    max_addresses: the most addresses remembered (the oldest are forgotten first).
    clock: a monotonic clock.
    """

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        per_address: int = PER_ADDRESS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.per_address = per_address
        self.max_addresses = max_addresses
        self._clock = clock
        self._key = os.urandom(16)  # per process: the hashes mean nothing elsewhere
        # address hash -> {session hash: last beat}; addresses ordered by last beat
        self._addresses: OrderedDict[bytes, dict[bytes, float]] = OrderedDict()

    def admit(self, address: str | None, session: str) -> bytes | None:
        """A heartbeat from ``address`` for ``session``: the session's key to count, or
        None when it does not count (a malformed id, or too many from that address)."""
        if not SESSION.fullmatch(session):
            return None
        now = self._clock()
        where = self._hash(b"a", address or "")
        who = self._hash(b"s", session)
        sessions = self._addresses.pop(where, {})
        for key in [k for k, seen in sessions.items() if now - seen > self.window]:
            del sessions[key]
        admitted = who in sessions or len(sessions) < self.per_address
        if admitted:
            sessions[who] = now
        self._addresses[where] = sessions  # moved to the newest end
        self._forget_old(now)
        return who if admitted else None

    def _forget_old(self, now: float) -> None:
        while self._addresses:
            oldest = next(iter(self._addresses))
            sessions = self._addresses[oldest]
            stale = not sessions or now - max(sessions.values()) > self.window
            if not stale and len(self._addresses) <= self.max_addresses:
                break
            del self._addresses[oldest]

    def _hash(self, kind: bytes, text: str) -> bytes:
        return hashlib.blake2b(kind + text.encode(), key=self._key, digest_size=16).digest()
