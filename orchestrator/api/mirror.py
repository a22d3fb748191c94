"""The self-hosted HLS mirror over HTTP, made to sit behind caches and CDNs.

``GET``/``HEAD /hls/<mirror>/<file>`` (public):
- a playlist (``.m3u8``) is short-lived: ``max-age=1`` for a media playlist (half its
  2 s segments, so a cache refetches it at most once a second whatever its audience),
  10 s for a ladder's master playlist; gzip when asked (``Vary: Accept-Encoding``);
- a segment (``.ts``) never changes and its name is never used again within an event
  (:func:`relays.files.hls_output`): ``max-age=31536000, immutable``; byte ranges work;
- both: ``ETag`` and ``Last-Modified`` (``If-None-Match`` gets a 304), ``Content-Length``,
  and CORS for web players on other origins (``Access-Control-Allow-Origin: *``, a
  preflight ``OPTIONS`` answered for ``Range``).

Viewers are counted (``jalsa_listeners{platform="hls"}``) from the requests that reach
jalsa, except those a cache makes (``X-Jalsa-Cache``, set by the documented proxy
config) and those of the watch page, whose heartbeats count instead
(:mod:`orchestrator.api.watch_page`). docs/mirror.md has the nginx and CDN configs.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import re
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from relays.files import hls_dir

if TYPE_CHECKING:
    from monitoring.hls_viewers import HlsViewers

HLS_FILE = re.compile(r"[A-Za-z0-9_-]{1,64}\.(m3u8|ts)")
MIRROR_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_TYPES = {"m3u8": "application/vnd.apple.mpegurl", "ts": "video/mp2t"}
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag, Last-Modified",
}
SEGMENT_CACHE = "public, max-age=31536000, immutable"
MEDIA_PLAYLIST_CACHE = "public, max-age=1"
MASTER_PLAYLIST_CACHE = "public, max-age=10"
# Set by the caching proxy in front of jalsa (docs/mirror.md): its requests are not viewers.
CACHE_HEADER = "x-jalsa-cache"
HLS_PATH = "/hls/{name}/{file}"


def mirror_routes(
    is_mirror: Callable[[str], bool], state_dir: Path, viewers: HlsViewers | None
) -> list[Route]:
    """``/hls/<mirror>/<file>``, as Starlette routes (the studio's app and the edge's).
    ``is_mirror(name)``: an HLS destination of the relay now."""

    def path_of(request: Request) -> tuple[Path, str]:
        name, file = request.path_params["name"], request.path_params["file"]
        match = HLS_FILE.fullmatch(file)
        if not MIRROR_NAME.fullmatch(name) or match is None or not is_mirror(name):
            raise HTTPException(404, "no such HLS stream", headers=CORS)
        return hls_dir(state_dir, name) / file, match.group(1)

    async def preflight(request: Request) -> Response:
        path_of(request)
        headers = {
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "Range",
            "Access-Control-Max-Age": "86400",
        }
        return Response(status_code=204, headers=headers)

    async def hls(request: Request) -> Response:
        path, kind = path_of(request)
        if viewers is not None and counts_as_viewer(request):
            viewers.seen(
                request.path_params["name"],
                request.client and request.client.host,
                request.headers.get("user-agent"),
            )
        if kind == "m3u8":
            return await _playlist(path, request)
        return await _segment(path, request)

    return [
        Route(HLS_PATH, hls, methods=["GET", "HEAD"], include_in_schema=False),
        Route(HLS_PATH, preflight, methods=["OPTIONS"], include_in_schema=False),
    ]


def counts_as_viewer(request: Request) -> bool:
    """A player's own request: not a cache's, nor the watch page's (it sends heartbeats)."""
    if CACHE_HEADER in request.headers:
        return False
    referer = request.headers.get("referer", "")
    return "/watch/" not in referer


async def _playlist(path: Path, request: Request) -> Response:
    try:
        data, stat = await asyncio.to_thread(_read, path)
    except FileNotFoundError:
        raise HTTPException(404, "not yet available", headers=CORS) from None
    zipped = "gzip" in request.headers.get("accept-encoding", "").lower()
    digest = hashlib.blake2b(data, digest_size=12).hexdigest()
    headers = {
        **CORS,
        "Cache-Control": MASTER_PLAYLIST_CACHE
        if path.name == "index.m3u8" and b"#EXT-X-STREAM-INF" in data
        else MEDIA_PLAYLIST_CACHE,
        "ETag": f'"{digest}{"-gz" if zipped else ""}"',
        "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
        "Vary": "Accept-Encoding",
    }
    if _not_modified(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if zipped:
        data = gzip.compress(data, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return Response(status_code=200, headers=headers, media_type=_TYPES["m3u8"])
    return Response(data, headers=headers, media_type=_TYPES["m3u8"])


async def _segment(path: Path, request: Request) -> Response:
    try:
        stat = await asyncio.to_thread(os.stat, path)
    except FileNotFoundError:
        raise HTTPException(404, "gone", headers=CORS) from None
    etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    headers = {**CORS, "Cache-Control": SEGMENT_CACHE, "ETag": etag}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, headers=headers, media_type=_TYPES["ts"], stat_result=stat)


def _read(path: Path) -> tuple[bytes, os.stat_result]:
    with path.open("rb") as file:
        return file.read(), os.fstat(file.fileno())


def _not_modified(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match")
    if wanted is None:
        return False
    return wanted.strip() == "*" or etag in (tag.strip() for tag in wanted.split(","))
