"""The HTTP face of jalsa: the console, /api for operators, and the public HLS mirror."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response

from monitoring.redirect import mirror_links, redirect_for
from orchestrator.api.audio import add_audio_routes
from orchestrator.api.auth import RequireOperator
from orchestrator.api.destinations import add_destination_routes
from orchestrator.api.live import CONSOLE_HEADERS, add_live_routes
from orchestrator.api.mirror import mirror_routes
from orchestrator.api.problems import with_problems
from orchestrator.api.rundown import add_rundown_routes
from orchestrator.api.speaker_desk import add_speaker_desk_routes
from orchestrator.api.watch_page import add_watch_routes
from orchestrator.event.secret import Secret
from orchestrator.show import Show
from orchestrator.speakers.join_problems import JoinProblems

if TYPE_CHECKING:
    from monitoring.watch import Watch


def create_app(show: Show, token: Secret, state_dir: Path, watch: Watch | None = None) -> FastAPI:
    # The schema is served below, behind the operator token like the rest of /api.
    app = FastAPI(title="jalsa", docs_url=None, redoc_url=None, openapi_url=None)
    require = RequireOperator(token)
    operator = Depends(require)
    console = resources.files("orchestrator.api").joinpath("static/console.html").read_text()

    def is_hls(name: str) -> bool:
        """An HLS mirror of the relay now (from the event file or added over the API)."""
        try:
            return show.relay.get(name).spec.kind == "hls"
        except KeyError:
            return False

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(console, headers=CONSOLE_HEADERS)

    @app.get("/api/openapi.json", dependencies=[operator], include_in_schema=False)
    async def openapi() -> JSONResponse:
        schema = with_problems(app.openapi())  # jalsa's error answers, not FastAPI's
        return JSONResponse(schema, headers={"Cache-Control": "no-store"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    join_problems = JoinProblems()  # joins that failed before connecting, as pages report

    @app.get("/api/state", dependencies=[operator])
    async def state() -> dict[str, Any]:
        return {**dataclasses.asdict(show.snapshot()), "join_problems": join_problems.snapshot()}

    @app.get("/api/monitoring", dependencies=[operator])
    async def monitoring() -> dict[str, Any]:
        """Listener counts, the latest probe round, active and recent outages, and while
        one is the audience's, where to send listeners (``redirect``: links and text)."""
        if watch is None:
            return {}
        snapshot = watch.snapshot()
        mirrors = mirror_links(show.event.destinations)
        notice = redirect_for(snapshot.outages.active, show.event.info.name, mirrors)
        return {**dataclasses.asdict(snapshot), "redirect": notice and dataclasses.asdict(notice)}

    @app.get("/api/preview.jpg", dependencies=[operator], response_class=Response)
    async def preview() -> Response:
        frame = show.program.preview
        if frame is None:
            raise HTTPException(404, "the program has no picture yet")
        data = await asyncio.to_thread(_jpeg, frame)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    # /hls/<mirror>/...: the public mirror, cache- and CDN-friendly
    viewers = watch.hls_viewers if watch is not None else None
    app.router.routes.extend(mirror_routes(is_hls, state_dir, viewers))
    add_watch_routes(app, show, is_hls, viewers)  # /watch/<mirror>: the listener page

    if any(speaker.live for speaker in show.event.speakers):
        # WHIP, the join page, message upload. Imported only here: aiortc takes about half
        # a second of CPU to import, which an event without live speakers never needs.
        from orchestrator.api.whip import add_speaker_routes

        add_speaker_routes(app, show, state_dir, operator, join_problems)
    # live add/remove/pause/resume (and listener counts for what is added)
    add_destination_routes(
        app, show, operator, watch.listeners if watch is not None else None, state_dir
    )
    add_rundown_routes(app, show, operator)  # /api/rundown: live control of the rundown
    add_audio_routes(app, show, state_dir, operator)  # /api/audio: levels, mute, gain (saved)
    add_live_routes(app, show, token, operator, require)  # the console's /api/live and its files
    add_speaker_desk_routes(app, show, state_dir, operator)  # green room: thumbnails, links
    if watch is not None:  # POST /agents/<id>/rounds: signed rounds of pushing probe agents
        from orchestrator.api.agents import add_agent_routes

        add_agent_routes(app, watch.agent_ingest)
    return app


def _jpeg(frame: Any) -> bytes:
    buffer = io.BytesIO()
    frame.to_image().save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()
