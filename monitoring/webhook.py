"""Outage announcements to a webhook: JSON with a Slack-compatible ``text``.

``POST <url>`` with::

    {"text": "OUTAGE: youtube unreachable from karachi, lahore while controls work (since ...)",
     "jalsa": {"event": "started", "scope": "platform", "platform": "youtube",
               "cities": ["karachi", "lahore"], "vantages": ["karachi-1", "lahore-1"],
               "since": "2026-12-17T20:31:05+00:00", "at": "2026-12-17T20:32:05+00:00"}}

With a mirror whose ``watch_url`` is set, a started outage also says where listeners
can go (:mod:`monitoring.redirect`): ``"mirror": {"links": [...], "text": "..."}`` beside
``jalsa``, and ``text`` gains a second line, ``Tell listeners: <that text>``.

Slack (and Mattermost, Rocket.Chat, Discord's /slack endpoint) show ``text`` and ignore
the rest. Delivery never holds up anything: events go to a bounded queue (the oldest is
dropped when it is full) and one task sends them, retrying a few times with backoff.
The URL (a Slack webhook URL is itself a secret) is never logged: only its host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from monitoring.outage_watch import OutageEvent
from monitoring.redirect import Redirect, redirect_for
from orchestrator.event.secret import Secret

log = logging.getLogger(__name__)

QUEUE_SIZE: Final = 100
ATTEMPTS: Final = 3
TIMEOUT: Final = 10.0


def payload(event: OutageEvent, redirect: Redirect | None = None) -> dict[str, Any]:
    o = event.outage
    body: dict[str, Any] = {
        "text": event.text,
        "jalsa": {
            "event": event.kind,
            "scope": o.scope,
            "platform": o.platform,
            "cities": sorted(o.cities),
            "vantages": sorted(o.vantages),
            "since": datetime.fromtimestamp(o.since, UTC).isoformat(),
            "at": datetime.fromtimestamp(event.at, UTC).isoformat(),
        },
    }
    if redirect is not None:
        body["text"] += f"\nTell listeners: {redirect.text}"
        body["mirror"] = {"links": list(redirect.links), "text": redirect.text}
    return body


class Webhook:
    """Args:
    url: where to POST.
    retry_seconds: the first wait between attempts (doubles).
    mirrors: the mirrors' public watch links (``watch_url``), for a started outage's notice.
    event: the event's name, for that notice.
    """

    def __init__(
        self,
        url: Secret,
        *,
        retry_seconds: float = 2.0,
        mirrors: Sequence[str] = (),
        event: str = "",
    ) -> None:
        self._url = url
        # Only public addresses: a webhook's readers cannot open jalsa's own /watch/ path.
        self._mirrors = tuple(m for m in mirrors if m.startswith(("http://", "https://")))
        self._event = event
        self.host = urlsplit(url.reveal()).hostname or "?"
        self._retry = retry_seconds
        self._queue: asyncio.Queue[OutageEvent] = asyncio.Queue(QUEUE_SIZE)
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def notify(self, event: OutageEvent) -> None:
        """Queue ``event``; never blocks (the oldest waiting event is dropped if full)."""
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def run(self) -> None:
        """Send queued events until cancelled."""
        async with aiohttp.ClientSession() as session:
            while True:
                event = await self._queue.get()
                await self._send(session, event)

    async def _send(self, session: aiohttp.ClientSession, event: OutageEvent) -> None:
        notice = None
        if event.kind == "started":
            notice = redirect_for([event.outage], self._event, self._mirrors)
        body = payload(event, notice)
        wait = self._retry
        problem = ""
        for attempt in range(ATTEMPTS):
            try:
                async with session.post(
                    self._url.reveal(),
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                    allow_redirects=False,
                ) as response:
                    if response.status < 300:
                        self.sent += 1
                        return
                    problem = f"HTTP {response.status}"
            except TimeoutError:
                problem = "timeout"
            except aiohttp.ClientError as error:
                problem = type(error).__name__
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(wait)
                wait *= 2
        self.failed += 1
        log.warning("webhook to %s failed (%s): %s", self.host, problem, event.text)
