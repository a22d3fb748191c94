"""Guessing speakers' links: ``/join/<token>…`` and ``/whip/<token>…`` per client address.

A guess is a token that is not a link of this event's live speakers: not one we signed
(forged, malformed), one of another event, or one for a speaker who is not a live speaker
here. After :data:`MAX_BAD_LINKS` of them within :data:`GUESS_WINDOW` seconds, every
``/join`` and ``/whip`` request from that address is answered 429 (``Retry-After``) for
:data:`BLOCK_SECONDS`, before any route runs or any body is read; a right link too, else
a guess would still tell. Expired and revoked links are not guesses (we signed them: a
speaker with an old link), nor are the operator's ``/api`` requests (their own limit, in
:mod:`orchestrator.api.auth`). The address is the one uvicorn gives the request (behind
a reverse proxy on the same host, the ``X-Forwarded-For`` it sets).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from typing import Final

from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.api.auth import Guesses
from orchestrator.api.speaker_access import PRIVATE
from orchestrator.speakers.links import LinkRefused, Links

MAX_BAD_LINKS: Final = 10
GUESS_WINDOW: Final = 60.0  # seconds
BLOCK_SECONDS: Final = 60.0
MAX_ADDRESSES: Final = 10_000
LOG_EVERY: Final = 10.0  # seconds: at most one line per this, with a count (a botnet)

log = logging.getLogger(__name__)

_LINK_PATH: Final = re.compile(r"/(?:join|whip)/([^/]*)(?:/.*)?", re.DOTALL)


def link_guesses() -> Guesses:
    return Guesses(
        limit=MAX_BAD_LINKS, window=GUESS_WINDOW, block=BLOCK_SECONDS, max_addresses=MAX_ADDRESSES
    )


def is_guess(links: Links, token: str) -> bool:
    """``token`` is not a link of this event's live speakers, expired or revoked or not."""
    try:
        claims = links.authentic(token)
    except LinkRefused:  # forged, malformed, or another event's
        return True
    return claims.speaker not in links.speakers


class LinkGuessLimit:
    """ASGI middleware: counts the guesses of each address on the speakers' paths and
    answers a blocked one 429 at once."""

    def __init__(
        self,
        app: ASGIApp,
        links: Links,
        guesses: Guesses | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.links = links
        self.guesses = guesses or link_guesses()
        self._clock = clock
        self._logged_at: float | None = None
        self._unlogged = 0  # addresses blocked since the last line

    def _blocked_now(self, address: str) -> None:
        """Say so in the log: once per :data:`LOG_EVERY` seconds, with a count."""
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY:
            self._unlogged += 1
            return
        log.warning(
            "speaker links: %s sent %d wrong links within %.0f s: /join and /whip refused to "
            "it for %.0f s (%d more addresses blocked since the last line)",
            address or "an unknown address",
            MAX_BAD_LINKS,
            GUESS_WINDOW,
            BLOCK_SECONDS,
            self._unlogged,
        )
        self._logged_at, self._unlogged = now, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _LINK_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else ""
        blocked = self.guesses.retry_after(address)
        if blocked is not None:
            headers = {
                **PRIVATE,
                "Retry-After": str(math.ceil(blocked)),
                # a WHIP client on another origin reads the answer (as whip.py's)
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Expose-Headers": "Retry-After",
            }
            message = (
                "too many wrong links from your address: try again in "
                f"{math.ceil(blocked)} s, with the link exactly as the organisers sent it\n"
            )
            await PlainTextResponse(message, 429, headers=headers)(scope, receive, send)
            return
        if is_guess(self.links, match[1]):
            self.guesses.failed(address)
            if self.guesses.retry_after(address) is not None:
                self._blocked_now(address)
        await self.app(scope, receive, send)
