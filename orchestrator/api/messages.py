"""The operator's side of recorded messages: list, preview, approve, delete.

Only an approved message is used on air (``show.messages``: speaker -> file, read each
time a slot's media is opened, 3 s before it). ``[event] approve_messages = "auto"``
approves each upload as it lands; the default, ``"operator"``, waits for an operator.

=======  ==================================  ==============================================
GET      /api/messages                       ``{"approval", "messages": [...]}``: id,
                                             speaker, duration (s), size (bytes),
                                             uploaded_at, approved_at (Unix time), status
                                             (pending | approved), content_type, video, audio
GET      /api/messages/{id}/media            the file (its own content type; Range works)
POST     /api/messages/{id}/approve          it becomes the speaker's fallback, replacing the
                                             one approved before: ``{"message", "replaced"}``
DELETE   /api/messages/{id}                  file and metadata gone; no longer the fallback:
                                             ``{"message", "was_fallback"}``
=======  ==================================  ==============================================

Each needs the operator token, checked before any body is read; a body (none is needed)
is at most 64 KiB of JSON (413, 400). An unknown id is 404. A message already playing
keeps playing to the end of its item: a change counts from the next time a slot's media
is opened.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from fastapi import FastAPI, HTTPException, Request, params
from fastapi.responses import FileResponse

from orchestrator.api.body import BodyRefused, read_json
from orchestrator.show import Show
from orchestrator.speakers.messages import Change, Message, MessageStore, Upload

log = logging.getLogger(__name__)

# An uploaded file is served to the console's own origin: never let a browser take it for
# a page (nosniff), and sandbox it should it be opened on its own.
_MEDIA_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
}


class MessageDesk:
    """The store, and ``show.messages`` kept to exactly its approved messages.

    Every store call runs in a thread (file I/O, fsync, probing); what it leaves
    approved is applied to ``show.messages`` on the event loop, newest version only, so
    two changes finishing close together never leave an older state behind.
    """

    def __init__(self, show: Show, store: MessageStore) -> None:
        self.show = show
        self.store = store
        self.auto = show.event.info.approve_messages == "auto"
        self.live = frozenset(s.id for s in show.event.speakers if s.live)
        self._applied = -1
        self._apply(*store.approved())  # approved in an earlier run

    async def finish(self, upload: Upload) -> Message:
        """Store a complete upload (approved at once in auto mode).

        Raises:
            MessageRefused: not playable media.
        """
        change = await asyncio.to_thread(self.store.finish, upload, approve=self.auto)
        self._applied_change(change)
        message = change.message
        if message.status == "approved":
            log.info(
                "speaker %s: recorded message (%.0f s) approved on upload",
                message.speaker,
                message.duration,
            )
        else:
            log.warning(
                "speaker %s: recorded message (%.0f s) waits for an operator's approval "
                "(console, or POST /api/messages/%s/approve)",
                message.speaker,
                message.duration,
                message.id,
            )
        return message

    async def approve(self, message_id: str) -> Change:
        change = await asyncio.to_thread(self.store.approve, message_id)
        self._applied_change(change)
        return change

    async def delete(self, message_id: str) -> Change:
        change = await asyncio.to_thread(self.store.delete, message_id)
        self._applied_change(change)
        return change

    def _applied_change(self, change: Change) -> None:
        self._apply(change.version, change.approved)

    def _apply(self, version: int, approved: dict[str, str]) -> None:
        if version <= self._applied:
            return
        self._applied = version
        messages = self.show.messages  # the show's own dict, changed in place
        for speaker in self.live:
            path = approved.get(speaker)
            if path is None:
                messages.pop(speaker, None)
            else:
                messages[speaker] = path


async def _small_json(request: Request) -> None:
    """Refuse a body over 64 KiB (413) or one that is not JSON (400); none is needed."""
    try:
        await read_json(request)
    except BodyRefused as refused:
        detail = refused.detail if refused.status == 413 else "send a JSON body, or none"
        raise HTTPException(refused.status, detail) from None


def add_message_routes(app: FastAPI, desk: MessageDesk, operator: params.Depends) -> None:
    """Register /api/messages; every route needs the operator token."""
    store = desk.store

    def find(message_id: str) -> Message:
        message = store.message(message_id)
        if message is None:
            raise HTTPException(404, f"no recorded message with id {message_id!r}")
        return message

    @app.get("/api/messages", dependencies=[operator])
    async def list_messages() -> dict[str, Any]:
        messages = await asyncio.to_thread(store.messages)
        return {
            "approval": "auto" if desk.auto else "operator",
            "messages": [m.public() for m in messages],
        }

    @app.get("/api/messages/{message_id}/media", dependencies=[operator])
    async def message_media(message_id: str) -> FileResponse:
        message = find(message_id)
        return FileResponse(
            store.path(message), media_type=message.content_type, headers=_MEDIA_HEADERS
        )

    @app.post("/api/messages/{message_id}/approve", dependencies=[operator])
    async def approve_message(message_id: str, request: Request) -> dict[str, Any]:
        await _small_json(request)
        find(message_id)
        try:
            change = await desk.approve(message_id)
        except KeyError:  # deleted meanwhile (or replaced by a new upload)
            raise HTTPException(404, f"no recorded message with id {message_id!r}") from None
        message = change.message
        log.warning(
            "speaker %s: recorded message %s approved by an operator: their fallback now",
            message.speaker,
            message.id,
        )
        replaced = change.replaced[0].id if change.replaced else None
        return {"message": message.public(), "replaced": replaced}

    @app.delete("/api/messages/{message_id}", dependencies=[operator])
    async def delete_message(message_id: str, request: Request) -> dict[str, Any]:
        await _small_json(request)
        find(message_id)
        try:
            change = await desk.delete(message_id)
        except KeyError:
            raise HTTPException(404, f"no recorded message with id {message_id!r}") from None
        message = change.message
        log.warning(
            "speaker %s: recorded message %s deleted by an operator", message.speaker, message.id
        )
        return {"message": message.public(), "was_fallback": message.status == "approved"}
