"""Live control of the destinations: list, add, remove, pause, resume (operators only).

``POST /api/destinations`` takes the same fields as an event file's ``[[destinations]]``
table, as JSON, and validates them with the same code (so the messages are the ones
``jalsa check`` gives); each other destination goes on untouched.

=======  ==========================================  =======================================
GET      /api/destinations                           every destination's snapshot
POST     /api/destinations                           add one (201; 422 invalid; 409 name taken)
DELETE   /api/destinations/{name}                    stop and remove it (404 unknown)
POST     /api/destinations/{name}/pause              end its stream and hold it
POST     /api/destinations/{name}/resume             reconnect it (at the next keyframe)
=======  ==========================================  =======================================

The operator token is checked before the body is read; a body is at most 64 KiB of JSON
(413 over it, unread; 400 not JSON). A recording added here is confined to the
recordings folders (:func:`recording_folders`): a ``url`` whose path, once ``..`` and
symlinks are resolved, lies anywhere else is 422 naming ``url``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request, params
from fastapi.responses import JSONResponse

from orchestrator.api.body import BodyRefused, read_json
from orchestrator.event.destination_spec import DestinationSpec, parse_destinations
from orchestrator.event.problems import EventError, Problems
from orchestrator.event.reader import Table
from orchestrator.show import Show
from relays.destination import Destination
from relays.edge_remote import EdgeRemote, EdgeUnreachable

if TYPE_CHECKING:
    from monitoring.listeners import Listeners

log = logging.getLogger(__name__)

REMOVE_SECONDS = 3.0
RECORDINGS = "recordings"
# The schema of the body (read by hand, after the token: see orchestrator/api/body.py).
_ADD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The fields of an event file's [[destinations]] table, as JSON",
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "example": {"name": "fb", "platform": "facebook", "key": "FB-STREAM-KEY"},
            }
        },
    }
}


def problems_response(status: int, problems: Iterable[tuple[str, str]]) -> JSONResponse:
    """``{"detail": [{"key", "message"}, ...]}``: every problem, each naming its field."""
    detail = [{"key": key, "message": message} for key, message in problems]
    return JSONResponse({"detail": detail}, status_code=status)


async def read_table(request: Request) -> dict[str, Any] | JSONResponse:
    """The body as one ``[[destinations]]`` table, or the answer that refuses it."""
    try:
        body = await read_json(request)
    except BodyRefused as refused:
        return problems_response(refused.status, [("body", refused.detail)])
    if not isinstance(body, dict):
        return problems_response(422, [("body", 'send a JSON object, like {"name": "fb", ...}')])
    return body


def add_destination_routes(
    app: FastAPI,
    show: Show,
    operator: params.Depends,
    listeners: Listeners | None = None,
    state_dir: Path | None = None,
) -> None:
    """Register the /api/destinations routes on ``app``; all need the operator token.
    Destinations added or removed here are counted in (or out of) ``listeners``; a
    recording added here must be in one of :func:`recording_folders`."""
    relay = show.relay
    folders = recording_folders(show, state_dir)

    def find(name: str) -> Destination:
        try:
            return relay.get(name)
        except KeyError:
            raise HTTPException(404, f"no destination named {name!r}") from None

    def edge_of(name: str) -> EdgeRemote | None:
        """The edge that sends ``name``, if the studio does not."""
        return next((e for e in show.edges.values() if e.has(name)), None)

    async def via(edge: EdgeRemote, method: str, path: str, body: Any = None) -> JSONResponse:
        """Pass an operator's call on to ``edge``; its answer, marked ``via`` it."""
        try:
            status, answer = await edge.call(method, path, body)
        except EdgeUnreachable as exc:
            raise HTTPException(502, str(exc)) from None
        await edge.refresh()
        for item in answer if isinstance(answer, list) else [answer]:
            if isinstance(item, dict) and "state" in item:
                item["via"] = edge.name
        return JSONResponse(answer, status_code=status)

    @app.get("/api/destinations", dependencies=[operator])
    async def list_destinations() -> list[dict[str, Any]]:
        edges = [s for edge in show.edges.values() for s in edge.snapshots()]
        return [dataclasses.asdict(s) for s in [*relay.snapshots(), *edges]]

    @app.post(
        "/api/destinations", dependencies=[operator], status_code=201, openapi_extra=_ADD_BODY
    )
    async def add_destination(request: Request) -> Any:
        body = await read_table(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            specs = parse_body(body, show)
        except EventError as exc:
            return problems_response(422, ((p.key, p.message) for p in exc.problems))
        names = {d.name for d in show.snapshot().destinations}
        taken = [s.name for s in specs if s.name in names]
        via_edge = specs[0].via  # (a YouTube backup goes the way of its primary)
        edge = show.edges.get(via_edge) if via_edge else None
        if via_edge and edge is None:
            known = ", ".join(show.edges) or "none sends a destination of this event"
            unknown = f"unknown edge {via_edge!r} (edges: {known})"
            return problems_response(422, [("via", unknown)])
        if taken:
            raise HTTPException(409, f"a destination named {taken[0]!r} already exists")
        if edge is not None:  # the edge sends it: the table goes there, without via
            return await via(edge, "POST", "", {k: v for k, v in body.items() if k != "via"})
        if taken:
            raise HTTPException(409, f"a destination named {taken[0]!r} already exists")
        outside = [s for s in specs if s.kind == "file" and not _inside(s.target_url(), folders)]
        if outside:
            where = " or ".join(str(f) for f in folders)
            return problems_response(
                422,
                [
                    (
                        "url",
                        f"a recording added over the API must be written inside {where}: "
                        'write it like "recordings/extra.mkv"',
                    )
                ],
            )
        added = []
        for spec in specs:
            try:
                added.append(relay.add(spec))
            except ValueError as exc:  # lost a race for the name, or shutting down
                raise HTTPException(409, str(exc)) from None
            show.ladders.add(spec, show.program.encoder.video_stream)  # an HLS ladder
            log.info("destination %s added (%s)", spec.name, spec.safe_url())
            if listeners is not None:
                listeners.add(spec)
        return [dataclasses.asdict(d.snapshot()) for d in added]

    @app.delete("/api/destinations/{name}", dependencies=[operator])
    async def remove_destination(name: str) -> Any:
        if (edge := edge_of(name)) is not None:
            return await via(edge, "DELETE", edge.path_of(name))
        find(name)
        try:
            finished = await asyncio.to_thread(relay.remove, name, REMOVE_SECONDS)
            await asyncio.to_thread(show.ladders.remove, name)
        except KeyError:
            raise HTTPException(404, f"no destination named {name!r}") from None
        if listeners is not None:
            listeners.remove(name)
        log.info("destination %s removed", name)
        return {"removed": name, "closed_cleanly": finished}

    @app.post("/api/destinations/{name}/pause", dependencies=[operator])
    async def pause_destination(name: str) -> Any:
        if (edge := edge_of(name)) is not None:
            return await via(edge, "POST", edge.path_of(name, "pause"))
        destination = find(name)
        destination.pause()
        log.info("destination %s paused", name)
        return dataclasses.asdict(destination.snapshot())

    @app.post("/api/destinations/{name}/resume", dependencies=[operator])
    async def resume_destination(name: str) -> Any:
        if (edge := edge_of(name)) is not None:
            return await via(edge, "POST", edge.path_of(name, "resume"))
        destination = find(name)
        destination.resume()
        log.info("destination %s resumed", name)
        return dataclasses.asdict(destination.snapshot())


def recording_folders(show: Show, state_dir: Path | None) -> tuple[Path, ...]:
    """Where a recording added over the API may go: ``recordings/`` beside the event
    file, ``<state dir>/recordings/`` (the demo's), and each folder a recording of the
    event file itself writes to (its author chose those)."""
    folders = [show.event.base_dir / RECORDINGS]
    if state_dir is not None:
        folders.append(state_dir / RECORDINGS)
    folders += [Path(d.target_url()).parent for d in show.event.destinations if d.kind == "file"]
    unique: dict[str, Path] = {}
    for folder in folders:
        unique.setdefault(os.path.realpath(folder), Path(os.path.abspath(folder)))
    return tuple(unique.values())


def _inside(target: str, folders: Iterable[Path]) -> bool:
    """``target`` (an absolute path), with ``..`` and symlinks resolved, is in a folder."""
    real = Path(os.path.realpath(target))
    return any(real.is_relative_to(os.path.realpath(folder)) for folder in folders)


def parse_body(body: dict[str, Any], show: Show) -> tuple[DestinationSpec, ...]:
    """Validate ``body`` as a ``[[destinations]]`` table; a YouTube ``backup = true``
    gives two destinations.

    Values are taken as given: no ``${VAR}`` substitution (an API caller must not be
    able to send the server's environment to a URL of their choosing).

    Raises:
        EventError: Every problem, each naming its field, with secrets scrubbed.
    """
    problems = Problems()
    specs = parse_destinations(
        [Table(body, "", problems)], show.event.base_dir, show.event.program.height
    )
    problems.raise_if_any()
    return specs
