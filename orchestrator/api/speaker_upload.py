"""Recorded-message upload from the join page: resumable chunks, in the manner of tus.

- ``POST /join/<token>/message`` with ``Upload-Length`` (and ``Upload-Name``): 201 +
  ``Location: /join/<token>/message/<id>``;
- ``HEAD`` on the Location: 200 + ``Upload-Offset`` (where to continue);
- ``PATCH`` on the Location with ``Upload-Offset`` and
  ``Content-Type: application/offset+octet-stream``: 204 + the new ``Upload-Offset``;
  409 + the real offset when the client is out of step, or while another chunk of the
  same speaker is being received (one request per speaker at a time). The upload id,
  its owner, the offset and the declared size are checked from the URL and the headers
  before any of the body is read (404, 409, 413), and the chunk is then streamed to disk
  as it arrives, never held in memory whole. The last chunk is probed with
  PyAV (in a thread) before acceptance: 204 + ``Upload-Result: accepted`` +
  ``Message-Status: pending`` (it waits for an operator's approval) or ``approved`` (the
  event approves uploads itself), or 422 with the reason. Only an approved message
  becomes the speaker's fallback for their slot (:mod:`orchestrator.api.messages`);
- ``GET /join/<token>/message``: the speaker's own messages as the page shows them,
  ``{"pending": {"duration", "uploaded_at"} | null, "approved": {...} | null}``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.requests import ClientDisconnect

from orchestrator.api.messages import MessageDesk
from orchestrator.api.speaker_access import PRIVATE, SpeakerAccess
from orchestrator.speakers.links import LinkRefused
from orchestrator.speakers.messages import (
    MAX_CHUNK_BYTES,
    Chunk,
    MessageRefused,
    OffsetMismatch,
    Upload,
)

# What is handed to the disk thread at once: a chunk is never held whole in memory.
WRITE_BYTES: Final = 256 * 1024


class _TooLarge(Exception):
    pass


def _text(message: str, status: int, **headers: str) -> Response:
    return PlainTextResponse(message + "\n", status, headers={**PRIVATE, **headers})


def _number(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 16 else None


def add_upload_routes(app: FastAPI, desk: MessageDesk, access: SpeakerAccess) -> None:
    store = desk.store
    busy: set[str] = set()  # speakers with a chunk being received: one at a time each

    def offsets(upload: Upload) -> dict[str, str]:
        return {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length)}

    @app.get("/join/{token}/message", include_in_schema=False)
    async def own_messages(token: str) -> Response:
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return _text(refused.problem.advice, refused.problem.status)
        mine: dict[str, Any] = {"pending": None, "approved": None}
        for message in await asyncio.to_thread(store.messages):
            if message.speaker == claims.speaker:
                mine[message.status] = {
                    "duration": message.duration,
                    "uploaded_at": message.uploaded_at,
                }
        return JSONResponse(mine, headers=PRIVATE)

    @app.post("/join/{token}/message", include_in_schema=False)
    async def create(token: str, request: Request) -> Response:
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return _text(refused.problem.advice, refused.problem.status)
        length = _number(request.headers.get("upload-length"))
        if length is None:
            return _text("send Upload-Length: the file's size in bytes", 400)
        name = request.headers.get("upload-name", "message.mp4")[:200]
        if claims.speaker in busy:
            return _text("a chunk of your upload is being received: wait for it", 409)
        try:
            upload = await asyncio.to_thread(store.create, claims.speaker, length, name)
        except MessageRefused as refused:
            return _text(str(refused), 413)
        return _text(
            "created",
            201,
            Location=f"/join/{token}/message/{upload.id}",
            **offsets(upload),
        )

    @app.head("/join/{token}/message/{upload_id}", include_in_schema=False)
    async def offset(token: str, upload_id: str) -> Response:
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return Response(status_code=refused.problem.status, headers=PRIVATE)
        upload = await asyncio.to_thread(store.get, upload_id, claims.speaker)
        if upload is None:
            return Response(status_code=404, headers=PRIVATE)
        return Response(status_code=200, headers={**PRIVATE, **offsets(upload)})

    @app.patch("/join/{token}/message/{upload_id}", include_in_schema=False)
    async def append(token: str, upload_id: str, request: Request) -> Response:
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return _text(refused.problem.advice, refused.problem.status)
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/offset+octet-stream":
            return _text("send chunks as Content-Type: application/offset+octet-stream", 415)
        at = _number(request.headers.get("upload-offset"))
        if at is None:
            return _text("send Upload-Offset: where this chunk starts", 400)
        declared = request.headers.get("content-length")
        if declared is not None and not declared.isdigit():
            return _text("Content-Length is not a number", 400)
        if declared is not None and int(declared) > MAX_CHUNK_BYTES:
            return _text(f"chunks are at most {MAX_CHUNK_BYTES // (1024 * 1024)} MiB", 413)
        if claims.speaker in busy:
            # Checked before the body is read: a flood of requests costs no memory.
            return _text("another chunk of your upload is being received: wait for it", 409)
        busy.add(claims.speaker)
        try:
            return await _append(claims.speaker, upload_id, at, declared, request)
        finally:
            busy.discard(claims.speaker)

    async def _append(
        speaker: str, upload_id: str, at: int, declared: str | None, request: Request
    ) -> Response:
        try:
            chunk = await asyncio.to_thread(store.open_chunk, upload_id, speaker, at)
        except KeyError:
            return _text("no such upload: start again", 404)
        except OffsetMismatch as mismatch:
            return _text(
                "continue from Upload-Offset", 409, **{"Upload-Offset": str(mismatch.offset)}
            )
        if declared is not None and int(declared) > chunk.room:
            await asyncio.to_thread(chunk.close, keep=False)
            return _text("more data than the declared Upload-Length", 413)
        try:
            await _receive(chunk, request)
        except _TooLarge:
            await asyncio.to_thread(chunk.close, keep=False)
            return _text(f"chunks are at most {MAX_CHUNK_BYTES // (1024 * 1024)} MiB", 413)
        except MessageRefused as refused:
            await asyncio.to_thread(chunk.close, keep=False)
            return _text(str(refused), 413)
        except ClientDisconnect:  # nobody is left to answer: the chunk is taken back out
            await asyncio.to_thread(chunk.close, keep=False)
            return Response(status_code=400, headers=PRIVATE)
        except BaseException:  # a cancel (shutdown)
            await asyncio.shield(asyncio.to_thread(chunk.close, keep=False))
            raise
        upload = await asyncio.to_thread(chunk.close, keep=True)
        if upload.offset < upload.length:
            return Response(status_code=204, headers={**PRIVATE, **offsets(upload)})
        try:
            message = await desk.finish(upload)
        except MessageRefused as refused:
            return _text(f"the file was not accepted: {refused}", 422)
        result = {"Upload-Result": "accepted", "Message-Status": message.status}
        return Response(status_code=204, headers={**PRIVATE, **offsets(upload), **result})


async def _receive(chunk: Chunk, request: Request) -> None:
    """Stream the body into ``chunk``, a disk write per :data:`WRITE_BYTES`.

    Raises:
        _TooLarge: over :data:`MAX_CHUNK_BYTES`.
        MessageRefused: past the upload's declared length.
    """
    pending: list[bytes] = []
    size = total = 0
    async for data in request.stream():
        total += len(data)
        if total > MAX_CHUNK_BYTES:
            raise _TooLarge
        pending.append(data)
        size += len(data)
        if size >= WRITE_BYTES:
            await asyncio.to_thread(chunk.write, b"".join(pending))
            pending, size = [], 0
    if pending:
        await asyncio.to_thread(chunk.write, b"".join(pending))
