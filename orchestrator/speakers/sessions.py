"""Which WHIP sessions may exist (pure): limits, replacement, and how each one ended.

Per speaker there is at most one session *negotiating* (a newer POST supersedes it: the
speaker's page retried) and at most one *live* (with media; the newest to bring media
replaces it: a rejoin, or a second tab). A speaker may POST at most once per
``min_interval`` seconds, and all speakers together hold at most ``max_total``
sessions. How recent sessions ended is remembered (boundedly) so a page can learn that
it was replaced and stop re-joining on its own.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

Phase = Literal["negotiating", "live", "replaced", "superseded", "ended", "unknown"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_total: int = 16
    min_interval: float = 1.0  # seconds between two POSTs by one speaker
    remember: int = 256  # ended sessions remembered for status


class SessionsFull(Exception):
    """No new session now; ``status`` (429 or 503) and ``retry_after`` (s) for the answer."""

    def __init__(self, reason: str, status: int, retry_after: int) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Admitted:
    session: str
    supersedes: str | None  # the speaker's negotiating session to end now


@dataclass(slots=True)
class _Entry:
    speaker: str
    phase: Phase


class SessionTable:
    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._open: dict[str, _Entry] = {}
        self._ended: OrderedDict[str, tuple[str, Phase]] = OrderedDict()
        self._last_post: dict[str, float] = {}

    def admit(self, speaker: str, now: float) -> Admitted:
        """A new session for ``speaker``.

        Raises:
            SessionsFull: 429 when the speaker retries too fast, 503 when all are taken.
        """
        last = self._last_post.get(speaker)
        if last is not None and now - last < self.limits.min_interval:
            raise SessionsFull("joining too fast: wait a second and try again", 429, 1)
        negotiating = next(
            (s for s, e in self._open.items() if e.speaker == speaker and e.phase == "negotiating"),
            None,
        )
        if negotiating is None and len(self._open) >= self.limits.max_total:
            raise SessionsFull("every session is taken: try again shortly", 503, 5)
        self._last_post[speaker] = now
        if negotiating is not None:
            self.finish(negotiating, "superseded")
        session = secrets.token_urlsafe(12)
        self._open[session] = _Entry(speaker, "negotiating")
        return Admitted(session, negotiating)

    def went_live(self, session: str) -> str | None:
        """``session`` brought media; returns the speaker's live session it replaces."""
        entry = self._open.get(session)
        if entry is None:
            return None
        previous = next(
            (s for s, e in self._open.items() if e.speaker == entry.speaker and e.phase == "live"),
            None,
        )
        entry.phase = "live"
        if previous is not None:
            self.finish(previous, "replaced")
        return previous

    def finish(self, session: str, how: Phase = "ended") -> None:
        """``session`` is over (a no-op if it already was)."""
        entry = self._open.pop(session, None)
        if entry is None:
            return
        self._ended[session] = (entry.speaker, how)
        while len(self._ended) > self.limits.remember:
            self._ended.popitem(last=False)

    def phase(self, speaker: str, session: str) -> Phase:
        """How ``session`` stands, as far as ``speaker`` may know."""
        entry = self._open.get(session)
        if entry is not None:
            return entry.phase if entry.speaker == speaker else "unknown"
        ended = self._ended.get(session)
        if ended is not None and ended[0] == speaker:
            return ended[1]
        return "unknown"
