"""Checking a speaker's link token on each request, and the page for a refused one."""

from __future__ import annotations

import asyncio
import html
import time
from typing import Final

from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from orchestrator.speakers.links import Claims, LinkProblem, LinkRefused, Links, revoke

REFRESH_SECONDS: Final = 2.0  # how stale the revocation list may be
MAX_SPEAKER_BODY: Final = 4096  # a status report

# The headers of every page or answer that carries or follows from a token: the token is
# in the URL, so no referrer may leak it and nothing may cache it.
PRIVATE: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all.

    Raises:
        BodyTooLarge: the declared or the actual length exceeds ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class SpeakerAccess:
    """Checks tokens against the event's links, re-reading revocations every few seconds
    (in a thread: the file is never read on the event loop)."""

    def __init__(self, links: Links) -> None:
        self.links = links
        self._refreshed = time.monotonic()
        self._refreshing: asyncio.Lock | None = None

    async def _refresh(self) -> None:
        if time.monotonic() - self._refreshed < REFRESH_SECONDS:
            return
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
                await asyncio.to_thread(self.links.refresh)
                self._refreshed = time.monotonic()

    async def check(self, token: str) -> Claims:
        """Claims of a usable token.

        Raises:
            LinkRefused: see :func:`orchestrator.speakers.links.check`.
        """
        await self._refresh()
        return self.links.check(token)

    async def still_valid(self, speaker: str, generation: int) -> bool:
        """Links of ``generation`` still work (not revoked since, by the operator or with
        ``jalsa links --revoke``)."""
        await self._refresh()
        return generation >= self.links.generation(speaker)

    async def revoke(self, speaker: str) -> int:
        """Revoke every link of ``speaker`` made so far, at once; their new generation."""
        try:
            return await asyncio.to_thread(revoke, self.links.state_dir, speaker)
        finally:  # an unreadable list, too, refuses joins from now on
            await asyncio.to_thread(self.links.refresh)


def refused_text(refused: LinkRefused) -> PlainTextResponse:
    """For WHIP clients: a short reason and what to do."""
    problem = refused.problem
    headers = dict(PRIVATE)
    if problem is LinkProblem.FORGED:
        headers["WWW-Authenticate"] = 'Bearer realm="jalsa speaker link"'
    return PlainTextResponse(
        f"{problem.value}: {problem.advice}\n", status_code=problem.status, headers=headers
    )


def refused_page(refused: LinkRefused, event_name: str) -> HTMLResponse:
    """For a person who opened a link: what happened and what to do, phone-sized."""
    problem = refused.problem
    titles = {
        LinkProblem.FORGED: "This link does not work",
        LinkProblem.OTHER_EVENT: "This link is for another event",
        LinkProblem.UNKNOWN_SPEAKER: "This link is no longer in use",
        LinkProblem.EXPIRED: "This link has expired",
        LinkProblem.REVOKED: "This link has been replaced",
        LinkProblem.UNAVAILABLE: "Joining is paused",
    }
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{html.escape(titles[problem])} — {html.escape(event_name)}</title>
<link rel="stylesheet" href="/join-assets/join.css"></head>
<body><main class="refused">
<h1>{html.escape(titles[problem])}</h1>
<p>{html.escape(problem.advice)}</p>
<p class="muted">{html.escape(event_name)}</p>
</main></body></html>
"""
    return HTMLResponse(body, status_code=problem.status, headers=PRIVATE)
