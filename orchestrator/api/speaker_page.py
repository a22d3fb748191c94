"""The speaker's join page ``GET /join/<token>``, its status endpoint and its assets.

The page is plain HTML, CSS and JavaScript (no build step, nothing from a CDN). What it
needs is embedded as JSON: the speaker's name and slot, the WHIP URL and the event's
ICE servers (TURN logins included: the page is only served for a valid link; logins made
from a TURN secret expire, and the page fetches fresh ones from ``GET /join/<token>/ice``).
``POST /join/<token>/status`` answers where the speaker stands (waiting / on air in N s
/ LIVE) and how their session is (live, replaced by another tab, …); the page sends its
own measurements with it (RTT, outgoing bitrate). ``POST /join/<token>/problem``
(``{"problem": "<code>"}``, a code of :data:`~orchestrator.speakers.join_problems.PROBLEMS`)
tells the operator why a join failed before connecting: 204; 422 for another code; 429
more than once a second.
"""

from __future__ import annotations

import html
import json
import logging
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any, Final

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from orchestrator.api.body import BodyRefused, read_json
from orchestrator.api.speaker_access import (
    MAX_SPEAKER_BODY,
    PRIVATE,
    SpeakerAccess,
    refused_page,
)
from orchestrator.event.ice_servers import IceServer
from orchestrator.show import Show
from orchestrator.speakers.join_problems import TooSoon
from orchestrator.speakers.links import LinkRefused
from orchestrator.speakers.whip_ingest import WhipIngest

log = logging.getLogger(__name__)

MAX_PROBLEM_BODY: Final = 256  # {"problem": "<code>"}
ASSETS: Final = {
    "join.js": "text/javascript; charset=utf-8",
    "join-link.js": "text/javascript; charset=utf-8",
    "join.css": "text/css; charset=utf-8",
}
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)


def browser_ice(
    servers: Sequence[IceServer], who: str, now: float, until: int | None = None
) -> list[dict[str, Any]]:
    """``RTCPeerConnection``'s ``iceServers`` for ``who``'s browser (TURN logins made now,
    lasting no longer than ``until``: the link's expiry)."""
    result = []
    for server in servers:
        entry: dict[str, Any] = {"urls": list(server.urls)}
        login = server.login(who, now, until)
        if login is not None:
            entry["username"], entry["credential"] = login
        result.append(entry)
    return result


def ice_refresh_seconds(servers: Sequence[IceServer]) -> float | None:
    """How long the page may use the logins it got before it fetches fresh ones (half the
    shortest lifetime: a page left open all day re-joins with a valid login)."""
    lifetimes = [server.ttl for server in servers if server.secret is not None]
    return min(lifetimes) / 2 if lifetimes else None


def _refused_json(refused: LinkRefused) -> JSONResponse:
    problem = refused.problem
    return JSONResponse(
        {"error": problem.value, "advice": problem.advice}, problem.status, headers=PRIVATE
    )


def _json_script(data: object) -> str:
    # Safe inside <script type="application/json">: no "</script>" can close it early.
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def add_join_routes(app: FastAPI, show: Show, access: SpeakerAccess, ingest: WhipIngest) -> None:
    folder = resources.files("orchestrator.api").joinpath("static")
    template = folder.joinpath("join.html").read_text()
    assets = {name: folder.joinpath(name).read_bytes() for name in ASSETS}
    event_name = show.event.info.name
    speakers = {s.id: s for s in show.event.speakers}
    servers = show.event.ice_servers
    refresh = ice_refresh_seconds(servers)

    @app.get("/join-assets/{name}", include_in_schema=False)
    async def join_asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "no such file")
        return Response(
            assets[name], media_type=ASSETS[name], headers={"Cache-Control": "max-age=300"}
        )

    @app.get("/join/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def join_page(token: str) -> HTMLResponse:
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return refused_page(refused, event_name)
        speaker = speakers[claims.speaker]
        config = {
            "event": event_name,
            "speaker": {"id": speaker.id, "name": speaker.name, "title": speaker.title},
            "whip": f"/whip/{token}",
            "status": f"/join/{token}/status",
            "problem": f"/join/{token}/problem",
            "upload": f"/join/{token}/message",
            "ice": f"/join/{token}/ice",
            "iceServers": browser_ice(servers, speaker.id, time.time(), claims.expires),
            "iceRefreshSeconds": refresh,
            "status_seconds": 2,
        }
        page = (
            template.replace("{{event}}", html.escape(event_name))
            .replace("{{name}}", html.escape(speaker.name))
            .replace("{{title}}", html.escape(speaker.title))
            .replace("{{config}}", _json_script(config))
        )
        headers = {
            **PRIVATE,
            "Content-Security-Policy": _CSP,
            "Permissions-Policy": "camera=(self), microphone=(self)",
            "X-Content-Type-Options": "nosniff",
        }
        return HTMLResponse(page, headers=headers)

    @app.get("/join/{token}/ice", include_in_schema=False)
    async def join_ice(token: str) -> Response:
        """Fresh TURN logins for a page open longer than they last."""
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return _refused_json(refused)
        ice = browser_ice(servers, claims.speaker, time.time(), claims.expires)
        return JSONResponse({"iceServers": ice, "iceRefreshSeconds": refresh}, headers=PRIVATE)

    @app.post("/join/{token}/problem", include_in_schema=False)
    async def join_problem(token: str, request: Request) -> Response:
        """The page gave up before connecting: the operator's green room says why."""
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return _refused_json(refused)
        try:
            report = await read_json(request, MAX_PROBLEM_BODY)
            problem = report.get("problem") if isinstance(report, dict) else None
            noted = ingest.problems.report(claims.speaker, problem, time.time())
        except BodyRefused:
            return JSONResponse({"error": "a small JSON object"}, 422, headers=PRIVATE)
        except ValueError as error:  # not a code jalsa knows
            return JSONResponse({"error": str(error)}, 422, headers=PRIVATE)
        except TooSoon:
            return JSONResponse(
                {"error": "once a second"}, 429, headers={**PRIVATE, "Retry-After": "1"}
            )
        log.info("speaker %s: join failed: %s", claims.speaker, noted.text)
        return Response(status_code=204, headers=PRIVATE)

    @app.api_route("/join/{token}/status", methods=["GET", "POST"], include_in_schema=False)
    async def join_status(token: str, request: Request) -> Response:
        try:
            claims = await access.check(token)
        except LinkRefused as refused:
            return _refused_json(refused)
        report: dict[str, Any] = {}
        if request.method == "POST":
            try:
                parsed = await read_json(request, MAX_SPEAKER_BODY, empty={})
            except BodyRefused:
                return JSONResponse({"error": "a small JSON object, please"}, 400)
            report = parsed if isinstance(parsed, dict) else {}
        session = report.get("session") or request.query_params.get("session") or ""
        speaker = claims.speaker
        received = None
        if isinstance(session, str) and session:
            ingest.report_rtt(speaker, session, report.get("rtt"))
            ingest.report_sending(speaker, session, report.get("video"), report.get("sent_bps"))
            received = ingest.received_bps(speaker, session)
        status = ingest.status(speaker)
        return JSONResponse(
            {
                "speaker": speaker,
                "standing": status.standing,
                "live": status.live,
                "starts_in": status.starts_in,
                "ends_in": status.ends_in,
                "slot_start": status.slot_start,
                "slot_end": status.slot_end,
                "quality": "full" if status.full_rate else "preview",
                "connected": ingest.connected(speaker),
                "session": ingest.phase(speaker, session) if isinstance(session, str) else "",
                # What jalsa receives from this session: the page's link line shows it.
                "received_bps": None if received is None else round(received),
            },
            headers=PRIVATE,
        )
