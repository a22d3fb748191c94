"""The edge's control routes: the studio sees and steers the edge's destinations.

On ``--listen``, beside ``PUT /contribute``, with the same key (``Authorization: Bearer``,
checked before any body is read; 401 otherwise):

=======  ==============================  ==============================================
GET      /destinations                   every destination's snapshot (no secrets)
POST     /destinations                   add one: an event file's [[destinations]] table
                                         as JSON (201; 422 invalid; 409 name taken)
DELETE   /destinations/{name}            stop and remove it (404 unknown)
POST     /destinations/{name}/pause      end its stream and hold it
POST     /destinations/{name}/resume     reconnect it (at the next keyframe)
=======  ==============================  ==============================================

The studio calls them (relays/edge_remote.py) for the destinations that go ``via`` this
edge, so its console, ``/api/state`` and ``/metrics`` show and control them as its own.
A body is at most 64 KiB of JSON; values are taken as given (no ``${VAR}``: a caller
must not read the edge's environment). Recordings and HLS mirrors are the edge file's
to declare: over this route only network destinations (RTMP(S), Icecast) are added.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orchestrator.api.destinations import problems_response, read_table
from orchestrator.edge.roster import Roster
from orchestrator.event.destination_spec import parse_destinations
from orchestrator.event.problems import EventError, Problems
from orchestrator.event.reader import Table

log = logging.getLogger(__name__)

REMOVE_SECONDS = 3.0
Authorized = Callable[[Request], bool]


def _unauthorized() -> JSONResponse:
    return JSONResponse({"detail": "wrong or missing edge key"}, status_code=401)


def _unknown(name: str) -> JSONResponse:
    return JSONResponse({"detail": f"no destination named {name!r}"}, status_code=404)


def control_routes(roster: Roster, authorized: Authorized, base_dir: Path) -> list[Route]:
    """The routes of the module docstring on ``roster``; ``authorized`` checks the key."""

    async def list_destinations(request: Request) -> Response:
        if not authorized(request):
            return _unauthorized()
        return JSONResponse([dataclasses.asdict(s) for s in roster.snapshots()])

    async def add_destination(request: Request) -> Response:
        if not authorized(request):
            return _unauthorized()
        body = await read_table(request)
        if isinstance(body, JSONResponse):
            return body
        problems = Problems()
        try:
            specs = parse_destinations([Table(body, "", problems)], base_dir)
            problems.raise_if_any()
        except EventError as exc:
            return problems_response(422, ((p.key, p.message) for p in exc.problems))
        local = [s.name for s in specs if s.kind in ("file", "hls")]
        if local:
            return problems_response(
                422,
                [("url", "a recording or HLS mirror on the edge is declared in its edge file")],
            )
        added = []
        for spec in specs:
            try:
                added.append(dataclasses.asdict(roster.add(spec)))
            except ValueError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=409)
            log.info("destination %s added by the studio (%s)", spec.name, spec.safe_url())
        return JSONResponse(added, status_code=201)

    async def remove_destination(request: Request) -> Response:
        if not authorized(request):
            return _unauthorized()
        name = request.path_params["name"]
        try:
            finished = await asyncio.to_thread(roster.remove, name, REMOVE_SECONDS)
        except KeyError:
            return _unknown(name)
        log.info("destination %s removed by the studio", name)
        return JSONResponse({"removed": name, "closed_cleanly": finished})

    async def hold(request: Request) -> Response:
        if not authorized(request):
            return _unauthorized()
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in ("pause", "resume"):
            return JSONResponse({"detail": "pause or resume"}, status_code=404)
        try:
            snapshot = roster.pause(name) if action == "pause" else roster.resume(name)
        except KeyError:
            return _unknown(name)
        log.info("destination %s %sd by the studio", name, action)
        return JSONResponse(dataclasses.asdict(snapshot))

    return [
        Route("/destinations", list_destinations, methods=["GET"]),
        Route("/destinations", add_destination, methods=["POST"]),
        Route("/destinations/{name}", remove_destination, methods=["DELETE"]),
        Route("/destinations/{name}/{action:str}", hold, methods=["POST"]),
    ]
