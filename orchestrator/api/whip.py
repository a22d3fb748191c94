"""WHIP (RFC 9725) for speakers: ``POST /whip/<token>`` and ``DELETE`` on the Location.

Also the one entry point :func:`add_speaker_routes` that ``create_app`` calls: the
speaker's link secret, the WHIP sessions, the join page and the message upload.

Answers: 201 + SDP answer + ``Location: /whip/<token>/<session>`` + the event's ICE
servers as ``Link: <stun:…>; rel="ice-server"`` headers; 400 for an offer that cannot be
answered (with the reason: also more than 32 ICE candidates, or one that cannot be a
peer), 413 over 64 KiB, 415 for another content type, 401/403 for
a refused link (with what to do), 429/503 with ``Retry-After`` when sessions are full,
429 with ``Retry-After`` for an address that sent too many wrong links (link_guesses.py).
PATCH (trickle ICE, ICE restart) is not supported: 405. A rejoin is a new POST.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, params
from fastapi.responses import PlainTextResponse, Response

from orchestrator.api.link_guesses import LinkGuessLimit
from orchestrator.api.messages import MessageDesk, add_message_routes
from orchestrator.api.speaker_access import (
    PRIVATE,
    BodyTooLarge,
    SpeakerAccess,
    read_body,
    refused_text,
)
from orchestrator.api.speaker_page import add_join_routes
from orchestrator.api.speaker_upload import add_upload_routes
from orchestrator.event.ice_servers import TURN_SCHEMES, IceServer
from orchestrator.show import Show
from orchestrator.speakers.join_problems import JoinProblems
from orchestrator.speakers.links import LinkRefused, Links, RevocationsUnreadable
from orchestrator.speakers.messages import MessageStore
from orchestrator.speakers.offer import MAX_OFFER_BYTES, OfferRefused, check_offer
from orchestrator.speakers.sessions import SessionsFull
from orchestrator.speakers.whip_ingest import WhipIngest

log = logging.getLogger(__name__)

_CORS = {
    # WHIP clients on other origins (a browser tool, a studio app) authenticate with the
    # token in the path, never with cookies: any origin may call.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Link, Retry-After",
}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def link_header(
    servers: Sequence[IceServer], who: str, now: float, until: int | None = None
) -> str:
    """RFC 9725 §4.6: one ``Link`` value per ICE server URL, with the TURN login for
    ``who`` (made now, when the server has a shared secret; lasting no longer than
    ``until``, the link's expiry)."""
    values = []
    for server in servers:
        login = server.login(who, now, until) if server.is_turn else None
        for url in server.urls:
            value = f'<{url}>; rel="ice-server"'
            if login is not None and url.lower().startswith(TURN_SCHEMES):
                value += f"; username={_quote(login[0])}; credential={_quote(login[1])}"
                value += '; credential-type="password"'
            values.append(value)
    return ", ".join(values)


def _text(message: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    headers = {**PRIVATE, **_CORS, **(headers or {})}
    return PlainTextResponse(message + "\n", status, headers=headers)


def add_whip_routes(app: FastAPI, show: Show, access: SpeakerAccess, ingest: WhipIngest) -> None:
    speakers = {s.id: s for s in show.event.speakers}

    @app.options("/whip/{token}", include_in_schema=False)
    async def whip_options(token: str) -> Response:
        headers = {
            **_CORS,
            "Accept-Post": "application/sdp",
            "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Authorization",
        }
        return Response(status_code=204, headers=headers)

    @app.post("/whip/{token}", include_in_schema=False)
    async def whip_post(token: str, request: Request) -> Response:
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            response = refused_text(refused)
            response.headers.update(_CORS)
            return response
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/sdp":
            return _text("send the SDP offer with Content-Type: application/sdp", 415)
        try:
            offer = check_offer(
                await read_body(request, MAX_OFFER_BYTES), show.event.info.speaker_candidates
            )
        except BodyTooLarge:
            return _text(f"the offer is larger than {MAX_OFFER_BYTES // 1024} KiB", 413)
        except OfferRefused as refused:
            return _text(str(refused), 400)
        if offer.dropped:
            log.info(
                "speaker %s: %d ICE candidate(s) of the offer left out (speaker_candidates = %r)",
                claims.speaker,
                offer.dropped,
                show.event.info.speaker_candidates,
            )
        try:
            session, answer = await ingest.open(
                speakers[claims.speaker], offer, claims.generation, claims.expires
            )
        except OfferRefused as refused:
            return _text(str(refused), 400)
        except SessionsFull as full:
            return _text(str(full), full.status, {"Retry-After": str(full.retry_after)})
        headers = {**PRIVATE, **_CORS, "Location": f"/whip/{token}/{session}"}
        now = time.time()
        if links := link_header(show.event.ice_servers, claims.speaker, now, claims.expires):
            headers["Link"] = links
        return Response(answer, 201, headers=headers, media_type="application/sdp")

    @app.delete("/whip/{token}/{session}", include_in_schema=False)
    async def whip_delete(token: str, session: str) -> Response:
        try:
            # Leaving needs only an authentic link: an expired one may still hang up.
            claims = access.links.authentic(token)
        except LinkRefused as refused:
            return refused_text(refused)
        if not await ingest.end(claims.speaker, session):
            return _text("no such session (it may have ended already)", 404)
        return Response(status_code=200, headers={**PRIVATE, **_CORS})

    @app.patch("/whip/{token}/{session}", include_in_schema=False)
    async def whip_patch(token: str, session: str) -> Response:
        return _text(
            "trickle ICE and ICE restarts are not supported: POST a new offer",
            405,
            {"Allow": "DELETE"},
        )


def add_speaker_routes(
    app: FastAPI,
    show: Show,
    state_dir: Path,
    operator: params.Depends,
    problems: JoinProblems | None = None,
) -> None:
    """Everything a remote speaker uses: WHIP, the join page, status, a failed join's
    report (into ``problems``), message upload; and the operator's
    ``POST /api/speakers/<id>/revoke`` and ``/api/messages``."""
    access = SpeakerAccess(Links(show.event, state_dir))
    ingest = WhipIngest(show, still_valid=access.still_valid, problems=problems)
    show.on_close(ingest.close)
    app.add_middleware(LinkGuessLimit, links=access.links)  # 429 for who guesses links
    add_whip_routes(app, show, access, ingest)
    add_join_routes(app, show, access, ingest)
    live = [s.id for s in show.event.speakers if s.live]
    desk = MessageDesk(show, MessageStore(state_dir, speakers=live))
    add_upload_routes(app, desk, access)
    add_message_routes(app, desk, operator)  # the operator's /api/messages

    @app.post("/api/speakers/{speaker}/revoke", dependencies=[operator])
    async def revoke_speaker(speaker: str) -> dict[str, Any]:
        """Every link of the speaker stops working and their live session ends now (a
        forwarded or stolen link); ``jalsa links`` then prints them a new one."""
        if speaker not in access.links.speakers:
            raise HTTPException(404, f"no live speaker with id {speaker!r}")
        try:
            generation = await access.revoke(speaker)
        except RevocationsUnreadable as error:
            # Not saved: end their session anyway (no one can join while the list is
            # unreadable), and say which file to repair; never advise deleting it.
            ended = ingest.end_revoked(speaker, access.links.generation(speaker) + 1)
            log.error("speaker %s: revocation not saved (%d session(s) ended)", speaker, ended)
            raise HTTPException(
                503,
                f"the revocation of {speaker!r} was NOT saved ({ended} live session(s) "
                f"ended): {error}. Then revoke again",
            ) from None
        ended = ingest.end_revoked(speaker, generation)
        log.warning(
            "speaker %s: links revoked by an operator (%d session(s) ended)", speaker, ended
        )
        return {"speaker": speaker, "generation": generation, "ended_sessions": ended}
