"""When a pushing agent measures next: at its calm cadence while everything answers.

Sans-I/O. A volunteer's data budget (1 MB an hour) does not allow every target every
30 s: twelve connections a round are ~27 KB even with TLS sessions resumed. Most of an
event, nothing is wrong, and a round that finds what the last three found tells little.
So after ``calm_after`` rounds in a row in which every check of every platform passed
(and every download ran), the agent measures every ``calm_interval`` seconds; the first
round with any failure brings it back to ``interval`` at once, and it stays there until
``calm_after`` clear rounds again. Each round says when the next comes (``next_in``), so
jalsa keeps a calm agent's results fresh until then and does not count it silent
(:func:`monitoring.outage.is_stale`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitoring.probe_round import ProbeRound

CALM_AFTER = 3


@dataclass(slots=True)
class Cadence:
    interval: float
    calm_interval: float  # at or below ``interval``: never calm
    calm_after: int = CALM_AFTER
    _clear: int = field(default=0, init=False)

    def after(self, found: ProbeRound) -> float:
        """Seconds from the start of ``found`` to the start of the next round."""
        outcomes = found.outcomes().values()
        clear = bool(outcomes) and all(ok for ok, _ in outcomes)
        clear = clear and all(d.error is None for d in found.downloads)
        self._clear = self._clear + 1 if clear else 0
        if self._clear >= self.calm_after and self.calm_interval > self.interval:
            return self.calm_interval
        return self.interval
