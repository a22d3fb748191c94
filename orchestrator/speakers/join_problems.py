"""Joins that failed before connecting, as the speaker's page reports them (pure).

When the join page gives up — no secure context, no camera/microphone API, permission
denied, no microphone or a busy one, ICE getting nowhere, WHIP refused — it tells jalsa
with the speaker's own signed link (``POST /join/<token>/problem``), so the operator's
green room and ``/api/state`` show "join failed: microphone permission denied" instead
of a plain "not joined". The page sends only a code from :data:`PROBLEMS`: the operator
reads jalsa's words, never text from the page. One entry per speaker (the latest), at
most one report a second per speaker; it clears when that speaker's media flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# code -> what the operator reads, and what the speaker was told to do
PROBLEMS: Final = {
    "insecure": "the page was opened over plain http:// (send the https:// link)",
    "no_api": "the browser gives the page no camera or microphone (another browser)",
    "denied": "microphone permission denied",
    "no_device": "no microphone found",
    "busy": "the microphone is in use by another app",
    "ice_failed": "the speaker's network lets no call through (ICE failed; TURN?)",
    "refused": "jalsa refused the call (the offer could not be answered)",
}
MIN_INTERVAL: Final = 1.0  # seconds between two reports of one speaker


class TooSoon(Exception):
    """The speaker reported less than :data:`MIN_INTERVAL` ago."""


@dataclass(frozen=True, slots=True)
class JoinProblem:
    problem: str  # a key of PROBLEMS
    text: str
    at: float  # epoch seconds of the report


class JoinProblems:
    """The latest failed join of each speaker (as many entries as speakers, at most)."""

    def __init__(self) -> None:
        self._latest: dict[str, JoinProblem] = {}
        self._reported: dict[str, float] = {}

    def report(self, speaker: str, problem: object, now: float) -> JoinProblem:
        """Note that ``speaker`` (a known speaker: the link was checked) could not join.

        Raises:
            ValueError: ``problem`` is not a code of :data:`PROBLEMS`.
            TooSoon: the speaker's previous report was under a second ago.
        """
        if not isinstance(problem, str) or problem not in PROBLEMS:
            raise ValueError(f"problem must be one of {', '.join(PROBLEMS)}")
        last = self._reported.get(speaker)
        if last is not None and 0 <= now - last < MIN_INTERVAL:
            raise TooSoon(speaker)
        self._reported[speaker] = now
        entry = JoinProblem(problem, PROBLEMS[problem], now)
        self._latest[speaker] = entry
        return entry

    def clear(self, speaker: str) -> bool:
        """The speaker joined (their media flows); whether a problem was noted."""
        return self._latest.pop(speaker, None) is not None

    def snapshot(self) -> dict[str, dict[str, object]]:
        """``{speaker: {"problem", "text", "at"}}`` for ``/api/state``."""
        return {
            speaker: {"problem": p.problem, "text": p.text, "at": p.at}
            for speaker, p in sorted(self._latest.items())
        }
