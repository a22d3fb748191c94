"""The listener page ``GET /watch/<mirror>``: the HLS ladder in any browser, for anyone.

Public, like the mirror. The page is plain HTML, CSS and JavaScript with a vendored,
pinned hls.js (``static/vendor/hls.light.min.js``, 1.7.4, Apache-2.0; nothing fetched
from a CDN at run time); a browser with native HLS (Safari, iOS) plays the master
playlist itself. It starts on the audio-only rendition when the link is poor, shows who
is speaking and who is next (``GET /watch/<mirror>/now``: public, cacheable for 2 s,
made at most once a second however many ask), and while it plays it sends a heartbeat
(``POST /watch/<mirror>/beat?s=<session>``, never cached) that counts it in
``jalsa_listeners{platform="hls"}``, even when the segments come from a cache
(:mod:`monitoring.heartbeats`: bounded per address, no personal data kept).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Final

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from monitoring.heartbeats import BEAT_SECONDS, SESSION, HeartbeatGate
from orchestrator.api.mirror import MIRROR_NAME
from orchestrator.show import Show

if TYPE_CHECKING:
    from monitoring.hls_viewers import HlsViewers

ASSETS: Final = {
    "watch.js": "text/javascript; charset=utf-8",
    "watch.css": "text/css; charset=utf-8",
    "hls.light.min.js": "text/javascript; charset=utf-8",
}
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors *; base-uri 'none'; form-action 'none'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "public, max-age=60",
}
NOW_SECONDS = 1.0
_FORWARDERS = ("127.0.0.1", "::1")  # a proxy on this machine (deploy/nginx/jalsa-mirror.conf)


def add_watch_routes(
    app: FastAPI, show: Show, is_mirror: Callable[[str], bool], viewers: HlsViewers | None
) -> None:
    static = resources.files("orchestrator.api").joinpath("static")
    page = static.joinpath("watch.html").read_text()
    # Each asset read once and gzipped once: a cheap phone on a throttled link gets
    # hls.js in ~120 KB instead of ~390 KB.
    assets = {name: static.joinpath(_asset_path(name)).read_bytes() for name in ASSETS}
    zipped = {name: gzip.compress(data, 9, mtime=0) for name, data in assets.items()}
    gate = HeartbeatGate()
    now_cache: dict[str, tuple[float, bytes]] = {}

    def mirror_or_404(name: str) -> None:
        if not MIRROR_NAME.fullmatch(name) or not is_mirror(name):
            raise HTTPException(404, "no such mirror")

    @app.get("/watch/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def watch(name: str) -> HTMLResponse:
        mirror_or_404(name)
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/watch-assets/{file}", include_in_schema=False)
    async def asset(file: str, request: Request) -> Response:
        if file not in ASSETS:
            raise HTTPException(404, "no such file")
        headers = {"Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(zipped[file], media_type=ASSETS[file], headers=headers)
        return Response(assets[file], media_type=ASSETS[file], headers=headers)

    @app.get("/watch/{name}/now", include_in_schema=False)
    async def now(name: str) -> Response:
        mirror_or_404(name)
        made = now_cache.get(name)
        if made is None or time.monotonic() - made[0] > NOW_SECONDS:
            made = (time.monotonic(), json.dumps(_now(show, name)).encode())
            now_cache[name] = made
        return Response(
            made[1],
            media_type="application/json",
            headers={"Cache-Control": "public, max-age=2", "Access-Control-Allow-Origin": "*"},
        )

    @app.post("/watch/{name}/beat", include_in_schema=False)
    async def beat(name: str, request: Request, s: str = "") -> Response:
        mirror_or_404(name)
        headers = {"Cache-Control": "no-store"}
        if not SESSION.fullmatch(s):
            return Response(status_code=400, headers=headers)
        who = gate.admit(_address(request), s)
        if who is None:  # that address holds its most sessions already
            return Response(status_code=429, headers=headers)
        if viewers is not None:
            viewers.seen(name, who.hex(), "watch")
        headers["X-Beat-Seconds"] = f"{BEAT_SECONDS:g}"
        return Response(status_code=204, headers=headers)


def _asset_path(name: str) -> str:
    return f"vendor/{name}" if name.startswith("hls.") else name


def _address(request: Request) -> str | None:
    """The listener's address: the peer's, or the one a proxy on this machine forwards."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in _FORWARDERS:
        return forwarded.split(",")[-1].strip()
    return peer


def _now(show: Show, mirror: str) -> dict[str, object]:
    """Who is on air and who is next, as the page shows it (names and titles only)."""
    snapshot = show.snapshot()
    speakers = {s.id: s for s in show.event.speakers}

    def who(speaker: str) -> dict[str, str]:
        spec = speakers.get(speaker)
        return {"name": spec.name, "title": spec.title} if spec else {"name": speaker, "title": ""}

    on_air = who(snapshot.on_air) if snapshot.on_air in speakers else None
    upcoming = snapshot.next
    following = None
    if upcoming is not None:
        following = {**who(upcoming.speaker), "in_seconds": round(snapshot.remaining)}
    return {
        "event": snapshot.event,
        "mirror": mirror,
        "state": snapshot.state,
        "on_air": on_air,
        "next": following,
    }
