"""Silence as evidence: many pushing agents of one country falling silent at once.

Sans-I/O. During a national shutdown the agents' own link to jalsa is what breaks first:
their rounds stop arriving (they keep measuring, and upload later). That silence is a
live signal, but so is our own outage; jalsa's own control probes decide: only while
they work (``home_uplink_ok``) is silence taken for a disruption.

Definition: an agent is *known* when it delivered a round within ``remember`` seconds,
and *silent* when its last delivery is more than ``silent_after`` seconds old (or, for an
agent that said its next round comes later, half a ``silent_after`` past that: an agent
at its calm cadence is not silent between two rounds). Per
country, when at least ``min_agents`` agents are known, at least ``ratio`` of them are
silent, and the silent ones span at least ``min_cities`` cities, the judgement is a
``national`` outage of platform ``"silent"`` (debounced like every other by the
classifier). Agents with no country form one group of their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from monitoring.outage import Outage, is_stale

SILENT: Final = "silent"


@dataclass(frozen=True, slots=True)
class Presence:
    vantage: str
    city: str
    country: str
    last_arrival: float
    next_in: float = 0.0  # seconds from its last round to its next, as it said


def silent_countries(
    agents: Iterable[Presence],
    now: float,
    *,
    silent_after: float,
    home_uplink_ok: bool | None,
    remember: float = 86400.0,
    min_agents: int = 3,
    ratio: float = 0.5,
    min_cities: int = 2,
) -> set[Outage]:
    if home_uplink_ok is not True:
        return set()
    known: dict[str, list[Presence]] = defaultdict(list)
    for a in agents:
        if now - a.last_arrival <= remember:
            known[a.country].append(a)
    found = set()
    for group in known.values():
        silent = [a for a in group if is_stale(a.last_arrival, a.next_in, now, silent_after)]
        cities = frozenset(a.city for a in silent)
        enough = len(group) >= min_agents and len(silent) >= ratio * len(group)
        if enough and len(cities) >= min_cities:
            vantages = frozenset(a.vantage for a in silent)
            found.add(Outage("national", SILENT, vantages, cities, now))
    return found
