"""Is the platform really showing what we push? YouTube's broadcast status, judged.

An RTMP ingest happily accepts a stream whose broadcast has ended (or never started):
the push "works" and nobody sees it. A YouTube destination's listener poller
(:mod:`monitoring.listeners`) asks ``videos?part=snippet,liveStreamingDetails``: one
request (one quota unit) says both how many watch and where the broadcast is in its life
cycle (public data, readable with an API key; ``liveBroadcasts`` would need OAuth).

:func:`youtube_verdict` is the pure part: the API's answer in, a :class:`Verdict` out.
:class:`Broadcasts` keeps each destination's latest verdict, hands its text on (the
wiring shows it as ``live_check`` in the relay destination's snapshot) and logs a
broadcast that is not live while its destination pushes: once per change, not per poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Note = Callable[[str, str | None], None]
"""Told (destination, verdict text) on every verdict."""
Pushing = Callable[[str], bool]
"""Whether a destination is live (pushing) now."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the platform says about the broadcast.

    Attributes:
        live: True if viewers can see it; False if it is not live (ended, not started,
            gone); None if the answer could not be read (an API error).
        text: For the snapshot: ``"live"``, ``"ended: ..."``, ``"not started: ..."``,
            ``"gone: ..."``, ``"not live: ..."``, ``"unknown: ..."``.
    """

    live: bool | None
    text: str


def youtube_verdict(status: int, body: Any, video_id: str) -> Verdict:
    """Judge a ``videos?part=snippet,liveStreamingDetails&id=`` answer (``body``: the
    parsed JSON, None if it was not JSON)."""
    if status != 200 or not isinstance(body, dict):
        reason = ""
        if isinstance(body, dict):
            errors = body.get("error", {}).get("errors", [{}])
            reason = str(errors[0].get("reason", "")) if errors else ""
        return Verdict(None, f"unknown: the YouTube API answered {status} {reason}".strip())
    items = body.get("items") or []
    if not items:
        return Verdict(False, f"gone: YouTube has no video {video_id} (deleted, or private)")
    item = items[0] if isinstance(items[0], dict) else {}
    content = str(item.get("snippet", {}).get("liveBroadcastContent", ""))
    details = item.get("liveStreamingDetails", {})
    if details.get("actualEndTime"):
        return Verdict(
            False,
            f"ended: broadcast {video_id} ended at {details['actualEndTime']}; what is "
            "pushed now reaches no viewer (start a new broadcast for this stream key)",
        )
    if content == "live":
        return Verdict(True, "live")
    if content == "upcoming":
        return Verdict(
            False,
            f"not started: broadcast {video_id} is still upcoming (go live in YouTube Studio, "
            "or turn on auto-start)",
        )
    return Verdict(False, f"not live: broadcast {video_id} is not a live broadcast ({content!r})")


def unreachable(detail: str) -> Verdict:
    """The verdict when no answer came (``detail``: a timeout, a refused connection)."""
    return Verdict(None, f"unknown: the YouTube API could not be reached ({detail})")


class Broadcasts:
    """Every checked destination's latest verdict, handed on and logged.

    Until :meth:`connect` is called the verdicts are only kept (and nothing is logged:
    whether a destination pushes is not known here).
    """

    def __init__(self) -> None:
        self._verdicts: dict[str, Verdict] = {}
        self._flagged: dict[str, str] = {}  # the not-live verdict last logged, per destination
        self._note: Note | None = None
        self._pushing: Pushing | None = None

    def connect(self, note: Note, pushing: Pushing) -> None:
        """Hand every verdict to ``note`` (those already known at once), and log a
        broadcast that is not live while ``pushing`` says its destination is live."""
        self._note, self._pushing = note, pushing
        for destination, verdict in self._verdicts.items():
            note(destination, verdict.text)

    def note(self, destination: str, verdict: Verdict) -> None:
        """Record ``destination``'s new verdict (one per poll)."""
        previous = self._verdicts.get(destination)
        self._verdicts[destination] = verdict
        if self._note is not None:
            self._note(destination, verdict.text)
        if verdict.live is False:
            pushing = self._pushing is not None and self._pushing(destination)
            if pushing and self._flagged.get(destination) != verdict.text:
                log.warning(
                    "destination %s is pushing, but YouTube says %s", destination, verdict.text
                )
                self._flagged[destination] = verdict.text
        elif verdict.live:
            self._flagged.pop(destination, None)
            if previous is not None and not previous.live:
                log.info("destination %s: YouTube says the broadcast is live", destination)

    def forget(self, destination: str) -> None:
        """The destination was removed (one added again under its name starts afresh)."""
        self._verdicts.pop(destination, None)
        self._flagged.pop(destination, None)
