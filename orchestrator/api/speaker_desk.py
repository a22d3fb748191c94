"""The green room's own calls: each speaker's thumbnail, and a join link to copy.

=======  ===================================  =============================================
GET      /api/speakers/{id}/thumbnail.jpg     the speaker's latest picture, a small JPEG
                                              (256 px wide), made at most once a second
POST     /api/speakers/{id}/link              a fresh join link for a live speaker:
                                              ``{"speaker", "url", "expires", "note"}``
=======  ===================================  =============================================

Both need the operator token. A thumbnail is the live speaker's latest picture from their
session in the green room, or, for a clip or test-pattern speaker, from their own source
while one of their items has it open (on air, or next within the preroll); 404 when there
is none. It is encoded in a thread and kept per speaker for a second, so any number of
consoles cost one encode per speaker per second.

The link is made exactly as ``jalsa links`` makes it (the same secret, event id,
generation and expiry: the rundown's end + 1 h; 422 if that is more than the 7 days a
link may last), for the address the request came to (its scheme and
``Host``; behind a proxy, ``X-Forwarded-Proto`` from a trusted one): jalsa has no public
URL of its own. ``note`` says so when that address is this machine's loopback. The answer
carries a credential: it is never cached or logged.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

import av
from fastapi import FastAPI, HTTPException, Request, params
from fastapi.responses import JSONResponse, Response

from orchestrator.event import Event
from orchestrator.event.duration import format_duration
from orchestrator.program.source import Source
from orchestrator.speakers.link_command import join_url
from orchestrator.speakers.links import MAX_EXPIRY_SECONDS, Links, default_expiry

log = logging.getLogger(__name__)

THUMBNAIL_WIDTH: Final = 256
THUMBNAIL_SECONDS: Final = 1.0  # a speaker's thumbnail is made at most this often
_NO_STORE: Final = {"Cache-Control": "no-store"}
_PRIVATE: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class _TooFar(Exception):
    """The default expiry is further than a link may last."""


class SpeakerPictures(Protocol):
    """What the routes read from the show (:class:`~orchestrator.show.Show`)."""

    event: Event

    def speaker_source(self, speaker: str) -> Source | None: ...


def thumbnail_jpeg(frame: av.VideoFrame, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A small JPEG of ``frame``, ``width`` wide, its aspect kept (blocking: a thread)."""
    height = max(2, round(width * frame.height / max(1, frame.width) / 2) * 2)
    small: Any = frame.reformat(width=width, height=height, format="rgb24")
    image = small.to_image()  # (PyAV's to_image has no annotations)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def _picture(source: Source) -> bytes | None:
    frame = source.video()
    return None if frame is None else thumbnail_jpeg(frame)


class Thumbnails:
    """Each speaker's latest thumbnail, made in a thread at most once per ``max_age``
    seconds; requests meanwhile (any number of consoles) get the same bytes."""

    def __init__(
        self,
        show: SpeakerPictures,
        max_age: float = THUMBNAIL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._show = show
        self._max_age = max_age
        self._clock = clock
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, speaker: str) -> bytes | None:
        """The JPEG, or None when the speaker has no picture now."""
        lock = self._locks.setdefault(speaker, asyncio.Lock())
        async with lock:
            cached = self._cache.get(speaker)
            if cached is not None and self._clock() - cached[0] < self._max_age:
                return cached[1]
            source = self._show.speaker_source(speaker)  # on the loop: the show's state
            data = None
            if source is not None:
                data = await asyncio.to_thread(_picture, source)
            self._cache[speaker] = (self._clock(), data)
            return data


def loopback_note(request: Request) -> str | None:
    """What to tell the operator about a link for this request's address, if anything."""
    host = request.url.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return None
    return (
        f"this link points at {host}, this machine only: a speaker elsewhere cannot open "
        "it. Open the console at jalsa's public address, or use jalsa links --base-url"
    )


def add_speaker_desk_routes(
    app: FastAPI, show: SpeakerPictures, state_dir: Path, operator: params.Depends
) -> Thumbnails:
    """The thumbnail and link routes; returns the thumbnails' cache."""
    speakers = {s.id: s for s in show.event.speakers}
    thumbnails = Thumbnails(show)
    links: list[Links] = []  # made at the first link asked for (it reads the secret)

    def issue(speaker: str) -> tuple[str, int]:
        """A token and its expiry, as ``jalsa links`` makes them (blocking: a thread)."""
        if not links:
            links.append(Links(show.event, state_dir))
        made = links[0]
        made.refresh()  # a revocation since (the console's, or jalsa links --revoke)
        now = time.time()
        expires = default_expiry(show.event, now)
        if expires > now + MAX_EXPIRY_SECONDS:  # as jalsa links refuses it
            raise _TooFar(
                f"the rundown ends more than {format_duration(MAX_EXPIRY_SECONDS)} (7 days) "
                "from now, the longest a link lasts: use jalsa links --expires-in"
            )
        return made.issue(speaker, expires), expires

    @app.get(
        "/api/speakers/{speaker}/thumbnail.jpg", dependencies=[operator], response_class=Response
    )
    async def speaker_thumbnail(speaker: str) -> Response:
        """The speaker's latest picture, 256 px wide (at most a second old)."""
        if speaker not in speakers:
            raise HTTPException(404, f"no speaker with id {speaker!r}", headers=_NO_STORE)
        data = await thumbnails.get(speaker)
        if data is None:
            raise HTTPException(404, f"no picture of {speaker!r} now", headers=_NO_STORE)
        return Response(data, media_type="image/jpeg", headers=_NO_STORE)

    @app.post("/api/speakers/{speaker}/link", dependencies=[operator])
    async def speaker_link(speaker: str, request: Request) -> JSONResponse:
        """A fresh join link for a live speaker, for the address the console uses."""
        spec = speakers.get(speaker)
        if spec is None or not spec.live:
            why = "has a source: only live speakers join from a link" if spec else "is unknown"
            raise HTTPException(404, f"no live speaker with id {speaker!r} (it {why})")
        try:
            token, expires = await asyncio.to_thread(issue, speaker)
        except _TooFar as error:
            raise HTTPException(422, str(error)) from None
        except (OSError, ValueError) as error:  # the secret, the revocation list
            raise HTTPException(503, f"cannot make a link now: {error}") from None
        base = str(request.base_url)
        body: dict[str, Any] = {
            "speaker": speaker,
            "url": join_url(base, token),
            "expires": expires,
            "note": loopback_note(request),
        }
        log.info("speaker %s: a join link was made for an operator", speaker)
        return JSONResponse(body, headers=_PRIVATE)

    return thumbnails
