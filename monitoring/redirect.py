"""Tell the listeners where to go: the mirror's link and a short text for a flagged outage.

When a platform is blocked, throttled or the network is disrupted, the team has minutes
to move the audience to the self-hosted mirror. :func:`redirect_for` turns the active
outages into what to post: the mirror's watch links and one short text (at most 280
characters, an X post), for the console (``/api/monitoring`` → ``redirect``) and the
webhook (``mirror`` in its payload). Pure: no I/O, no clock.

Not for an ``uplink`` outage: that is one probe vantage's own link, not the audience's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from monitoring.outage import ALL_PLATFORMS, Outage
from orchestrator.event import DestinationSpec

MAX_TEXT: Final = 280
_NAMES: Final = {"youtube": "YouTube", "facebook": "Facebook", "x": "X", "twitch": "Twitch"}


@dataclass(frozen=True, slots=True)
class Redirect:
    """What to post: ``links`` (absolute when the mirror has a ``watch_url``, else the
    path ``/watch/<mirror>`` on jalsa's own address) and ``text`` with the first link."""

    links: tuple[str, ...]
    text: str


def mirror_links(destinations: Iterable[DestinationSpec]) -> tuple[str, ...]:
    """Each HLS mirror's watch page: its ``watch_url``, or ``/watch/<name>``."""
    return tuple(d.watch_url or f"/watch/{d.name}" for d in destinations if d.kind == "hls")


def redirect_for(outages: Iterable[Outage], event: str, links: Sequence[str]) -> Redirect | None:
    """The notice for ``outages`` (None when none of them is the audience's, or there is
    no mirror)."""
    relevant = [o for o in outages if o.scope != "uplink"]
    if not relevant or not links:
        return None
    cities = sorted({c for o in relevant for c in o.cities})
    where = f" in {_join(cities)}" if cities else ""
    national = any(o.scope == "national" for o in relevant)
    blocked = sorted({_name(o.platform) for o in relevant if o.scope == "platform"})
    slow = sorted({_name(o.platform) for o in relevant if o.scope == "throttling"})
    if national or (not blocked and not slow):
        what = f"Social media is disrupted{where}."
    elif blocked:
        verb = "is" if len(blocked) == 1 else "are"
        what = f"{_join(blocked)} {verb} not reachable{where}."
    else:
        verb = "is" if len(slow) == 1 else "are"
        what = f"{_join(slow)} {verb} slowed down{where}."
    text = f"{what} Watch {event} live on our own stream: {links[0]} (audio only on a slow link)"
    if len(text) > MAX_TEXT:
        text = f"{what} Watch live: {links[0]}"
    if len(text) > MAX_TEXT:
        text = f"Watch {event} live: {links[0]}"
    return Redirect(tuple(links), text[:MAX_TEXT])


def _name(platform: str) -> str:
    if platform == ALL_PLATFORMS:
        return "Social media"
    return _NAMES.get(platform, platform)


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
