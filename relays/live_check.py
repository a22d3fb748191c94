"""Is the platform really showing what we push? YouTube's broadcast status, checked.

An RTMP ingest happily accepts a stream whose broadcast has ended (or never started):
the push "works" and nobody sees it. For a YouTube destination whose
``[destinations.listeners]`` names the broadcast (``video_id``, ``api_key``), a
:class:`LiveCheck` thread asks the YouTube Data API v3 every :data:`INTERVAL` seconds
(``videos?part=snippet,liveStreamingDetails``: the broadcast's life cycle as public data,
readable with an API key; ``liveBroadcasts`` would need OAuth) and the destination's
snapshot shows the verdict; a broadcast that is not live while we push is logged.

:func:`youtube_verdict` is the pure part: the API's answer in, a verdict out.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.listener_spec import YouTubeListeners, listener_spec
from orchestrator.event.secret import redact

log = logging.getLogger(__name__)

INTERVAL: Final = 30.0
TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the platform says about the broadcast.

    Attributes:
        live: True if viewers can see it; False if it is not live (ended, not started,
            gone); None if the answer could not be read (an API error).
        text: For the snapshot: ``"live"``, ``"ended: ..."``, ``"not started: ..."``,
            ``"unknown: ..."``.
    """

    live: bool | None
    text: str


def youtube_verdict(status: int, body: Any, video_id: str) -> Verdict:
    """Judge a ``videos?part=snippet,liveStreamingDetails&id=`` answer."""
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


Fetch = Callable[[str], tuple[int, Any]]


def fetch_json(url: str) -> tuple[int, Any]:
    """GET ``url``: (status, parsed JSON or None). Blocking, bounded by :data:`TIMEOUT`."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
        finally:
            error.close()


class LiveCheck:
    """Polls the broadcast's status in its own thread while a destination runs.

    Args:
        name: The destination (for the log).
        video_id: The broadcast's video id.
        api_key: The YouTube Data API key (never logged).
        api_base: ``https://www.googleapis.com`` or a stand-in.
        pushing: True while the destination is live (a verdict only matters then).
        interval: Seconds between checks.
        fetch: The HTTP GET (replaced in tests).
    """

    def __init__(
        self,
        name: str,
        video_id: str,
        api_key: str,
        api_base: str,
        pushing: Callable[[], bool],
        *,
        interval: float = INTERVAL,
        fetch: Fetch = fetch_json,
    ) -> None:
        self._name = name
        self._video_id = video_id
        self._api_key = api_key
        query = urllib.parse.urlencode(
            {"part": "snippet,liveStreamingDetails", "id": video_id, "key": api_key}
        )
        self._url = f"{api_base.rstrip('/')}/youtube/v3/videos?{query}"
        self._pushing = pushing
        self._interval = interval
        self._fetch = fetch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-check-{name}", daemon=True)
        self.verdict: Verdict | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (a request in flight is abandoned, not waited on)."""
        self._stop.set()

    def check(self) -> Verdict:
        """One check, now."""
        try:
            status, body = self._fetch(self._url)
            verdict = youtube_verdict(status, body, self._video_id)
        except (OSError, ValueError) as exc:
            verdict = Verdict(None, f"unknown: the YouTube API could not be reached ({exc})")
        verdict = Verdict(verdict.live, redact(verdict.text, (self._api_key,)))
        previous, self.verdict = self.verdict, verdict
        if verdict.live is False and self._pushing() and previous != verdict:
            log.warning("destination %s is pushing, but YouTube says %s", self._name, verdict.text)
        elif verdict.live and previous is not None and not previous.live:
            log.info("destination %s: YouTube says the broadcast is live", self._name)
        return verdict

    def _run(self) -> None:
        # The first check as soon as the destination is live, then every interval.
        due = 0.0
        while not self._stop.is_set():
            if self._pushing() and time.monotonic() >= due:
                self.check()
                due = time.monotonic() + self._interval
            self._stop.wait(min(1.0, self._interval))


def live_check_for(spec: DestinationSpec, pushing: Callable[[], bool]) -> LiveCheck | None:
    """A check for ``spec`` if its platform's API can tell (YouTube with a video id)."""
    if spec.platform != "youtube" or not spec.listeners:
        return None
    try:
        listeners = listener_spec(spec.listeners, spec.platform, spec.kind, spec.url)
    except ValueError:
        return None
    if not isinstance(listeners, YouTubeListeners):
        return None
    return LiveCheck(
        spec.name,
        listeners.video_id,
        listeners.api_key.reveal(),
        listeners.api_base,
        pushing,
    )
