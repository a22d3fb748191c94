"""Platform API stand-ins: a local aiohttp app with the documented response shapes.

One :class:`PlatformStandIn` serves, on 127.0.0.1, the four listener APIs and an Icecast
status page, each following a script of responses set by the test:

- YouTube Data API v3: ``GET /youtube/v3/videos?part=snippet,liveStreamingDetails&id=&key=``
  (``snippet.liveBroadcastContent`` only if ``part`` asks for the snippet, as YouTube does)
- Facebook Graph: ``GET /v<version>/<live_video_id>?fields=live_views&access_token=``
- Twitch Helix: ``GET /helix/streams?user_login=`` with ``Client-Id`` and ``Bearer``
- X API v2: ``GET /2/spaces/<id>?space.fields=participant_count`` with ``Bearer``
- Icecast: ``GET /status-json.xsl``

A script step is a :data:`Step`: ``("count", n)``, ``("offline",)``, ``("429", seconds)``,
``("quota",)``, ``("error", status)``, ``("hang", seconds)`` or ``("auth",)``, and for
YouTube ``("ended",)`` (the broadcast is over); after the last step the last one repeats.
A YouTube ``count`` is a live broadcast, ``offline`` one still upcoming. Wrong
credentials always get the platform's auth error. The app runs on its own loop in a
daemon thread, so sync tests (driving a jalsa subprocess) and async tests use it alike.
Every request is recorded, with its time (``time.monotonic()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Step = tuple[Any, ...]

YT_KEY = "yt-api-KEY-0123456789"
FB_TOKEN = "fb-access-TOKEN-0123456789"
TWITCH_TOKEN = "twitch-TOKEN-0123456789"
TWITCH_CLIENT = "clientid123"
X_TOKEN = "x-bearer-TOKEN-0123456789"
SECRETS = (YT_KEY, FB_TOKEN, TWITCH_TOKEN, X_TOKEN)


@dataclass
class Seen:
    platform: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Script:
    steps: list[Step] = field(default_factory=lambda: [("count", 0)])
    index: int = 0

    def next(self) -> Step:
        step = self.steps[min(self.index, len(self.steps) - 1)]
        self.index += 1
        return step


class PlatformStandIn:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._scripts: dict[str, _Script] = {}
        self.icecast_mount = "/jalsa.mp3"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- control ---------------------------------------------------------------------------
    def script(self, platform: str, *steps: Step) -> None:
        self._scripts[platform] = _Script(list(steps))

    def seen(self, platform: str) -> list[Seen]:
        return [r for r in list(self.requests) if r.platform == platform]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PlatformStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/youtube/v3/videos", self._youtube)
        app.router.add_get("/helix/streams", self._twitch)
        app.router.add_get("/2/spaces/{id}", self._x)
        app.router.add_get("/status-json.xsl", self._icecast)
        app.router.add_get("/status.xsl", self._icecast_html)
        app.router.add_get("/{version:v[0-9.]+}/{id}", self._facebook)
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=0.1, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the platforms -----------------------------------------------------------------------
    async def _step(self, platform: str, request: web.Request) -> Step:
        self.requests.append(
            Seen(platform, request.path, dict(request.query), dict(request.headers))
        )
        step = self._scripts.setdefault(platform, _Script()).next()
        if step[0] == "hang":
            await asyncio.sleep(step[1])
        return step

    async def _youtube(self, request: web.Request) -> web.Response:
        step = await self._step("youtube", request)
        if request.query.get("key") != YT_KEY:
            return _error(
                400,
                {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "errors": [{"reason": "keyInvalid"}],
                },
            )
        if step[0] == "quota":
            return _error(
                403,
                {
                    "code": 403,
                    "message": "The request cannot be completed because you have exceeded "
                    "your quota.",
                    "errors": [{"reason": "quotaExceeded", "domain": "youtube.quota"}],
                },
            )
        if (other := _common(step)) is not None:
            return other
        details: dict[str, Any] = {"scheduledStartTime": "2026-12-17T20:30:00Z"}
        content = "upcoming"
        if step[0] in ("count", "ended"):
            details["actualStartTime"] = "2026-12-17T20:30:00Z"
            content = "live"
        if step[0] == "count":
            details["concurrentViewers"] = str(step[1])
        if step[0] == "ended":
            details["actualEndTime"] = "2026-12-17T21:00:00Z"
            content = "none"
        item: dict[str, Any] = {"kind": "youtube#video", "id": request.query.get("id")}
        parts = request.query.get("part", "").split(",")
        if "snippet" in parts:
            item["snippet"] = {"title": "Jalsa", "liveBroadcastContent": content}
        if "liveStreamingDetails" in parts:
            item["liveStreamingDetails"] = details
        return web.json_response(
            {"kind": "youtube#videoListResponse", "items": [item], "pageInfo": {"totalResults": 1}}
        )

    async def _facebook(self, request: web.Request) -> web.Response:
        step = await self._step("facebook", request)
        if request.query.get("access_token") != FB_TOKEN:
            return _error(
                400,
                {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190},
            )
        if step[0] == "quota":
            return _error(
                400,
                {
                    "message": "(#4) Application request limit reached",
                    "type": "OAuthException",
                    "code": 4,
                },
            )
        if (other := _common(step)) is not None:
            return other
        views = step[1] if step[0] == "count" else 0
        return web.json_response({"live_views": views, "id": request.match_info["id"]})

    async def _twitch(self, request: web.Request) -> web.Response:
        step = await self._step("twitch", request)
        auth = request.headers.get("Authorization") == f"Bearer {TWITCH_TOKEN}"
        if not auth or request.headers.get("Client-Id") != TWITCH_CLIENT:
            return web.json_response(
                {"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"},
                status=401,
            )
        if step[0] == "429":
            reset = int(time.time() + step[1])
            return web.json_response(
                {"error": "Too Many Requests", "status": 429, "message": ""},
                status=429,
                headers={"Ratelimit-Reset": str(reset)},
            )
        if (other := _common(step)) is not None:
            return other
        data = []
        if step[0] == "count":
            data = [
                {
                    "id": "1",
                    "user_login": request.query.get("user_login"),
                    "type": "live",
                    "viewer_count": step[1],
                }
            ]
        return web.json_response({"data": data, "pagination": {}})

    async def _x(self, request: web.Request) -> web.Response:
        step = await self._step("x", request)
        if request.headers.get("Authorization") != f"Bearer {X_TOKEN}":
            return web.json_response(
                {
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                },
                status=401,
            )
        if (other := _common(step)) is not None:
            return other
        space: dict[str, Any] = {"id": request.match_info["id"], "state": "live"}
        if step[0] == "count":
            space["participant_count"] = step[1]
        else:
            space["state"] = "ended"
        return web.json_response({"data": space})

    async def _icecast(self, request: web.Request) -> web.Response:
        step = await self._step("icecast", request)
        if (other := _common(step)) is not None:
            return other
        if step[0] == "broken":  # what Icecast 2.4.4 sends with some libxslt versions
            return web.Response(
                text='{"icestats":"server_start":"Sun, 22 Nov 2026 03:59:52 +0000","dummy":null}}',
                content_type="application/json",
            )
        other_source = {"listenurl": f"http://127.0.0.1:{self.port}/other.ogg", "listeners": 99}
        if step[0] == "offline":
            source: Any = other_source
        else:
            ours = {
                "listenurl": f"http://127.0.0.1:{self.port}{self.icecast_mount}",
                "listeners": step[1],
                "server_name": "jalsa",
            }
            source = [other_source, ours]
        return web.json_response({"icestats": {"admin": "icemaster@localhost", "source": source}})

    async def _icecast_html(self, request: web.Request) -> web.Response:
        self.requests.append(Seen("icecast-html", request.path, {}, dict(request.headers)))
        script = self._scripts.get("icecast")
        step = script.steps[min(script.index, len(script.steps)) - 1] if script else ("count", 0)
        listeners = step[1] if step[0] == "broken" else 0
        mount = (
            f'<div class="roundbox"><div class="mounthead"><h3 class="mount">Mount Point '
            f'{self.icecast_mount}</h3></div><div class="mountcont"><table class="yellowkeys">'
            f'<tbody><tr><td>Listeners (current):</td><td class="streamstats">{listeners}'
            "</td></tr></tbody></table></div></div>"
        )
        other = (
            '<div class="roundbox"><h3 class="mount">Mount Point /other.ogg</h3><table><tr>'
            '<td>Listeners (current):</td><td class="streamstats">99</td></tr></table></div>'
        )
        html = f"<html><body><h2>Icecast2 Status</h2>{other}{mount}</body></html>"
        return web.Response(text=html, content_type="text/html")


def _common(step: Step) -> web.Response | None:
    if step[0] == "429":
        return web.json_response(
            {"error": {"code": 429, "message": "Too Many Requests"}},
            status=429,
            headers={"Retry-After": str(step[1])},
        )
    if step[0] == "error":
        return web.Response(status=step[1], text="upstream trouble")
    if step[0] == "auth":
        return web.json_response({"error": {"code": 401, "message": "unauthorised"}}, status=401)
    return None


def _error(status: int, error: dict[str, Any]) -> web.Response:
    return web.json_response({"error": error}, status=status)
