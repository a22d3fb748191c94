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
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Body, FastAPI, HTTPException, params
from fastapi.responses import JSONResponse

from orchestrator.event.destination_spec import DestinationSpec, parse_destinations
from orchestrator.event.problems import EventError, Problems
from orchestrator.event.reader import Table
from orchestrator.show import Show
from relays.destination import Destination

if TYPE_CHECKING:
    from monitoring.listeners import Listeners

log = logging.getLogger(__name__)

REMOVE_SECONDS = 3.0


def add_destination_routes(
    app: FastAPI, show: Show, operator: params.Depends, listeners: Listeners | None = None
) -> None:
    """Register the /api/destinations routes on ``app``; all need the operator token.
    Destinations added or removed here are counted in (or out of) ``listeners``."""
    relay = show.relay

    def find(name: str) -> Destination:
        try:
            return relay.get(name)
        except KeyError:
            raise HTTPException(404, f"no destination named {name!r}") from None

    @app.get("/api/destinations", dependencies=[operator])
    async def list_destinations() -> list[dict[str, Any]]:
        return [dataclasses.asdict(s) for s in relay.snapshots()]

    @app.post("/api/destinations", dependencies=[operator], status_code=201)
    async def add_destination(
        body: dict[str, Any] = Body(  # noqa: B008 (FastAPI's way to declare a body)
            ...,
            description="The fields of an event file's [[destinations]] table, as JSON",
            examples=[{"name": "fb", "platform": "facebook", "key": "FB-STREAM-KEY"}],
        ),
    ) -> Any:
        try:
            specs = parse_body(body, show)
        except EventError as exc:
            return JSONResponse(
                {"detail": [{"key": p.key, "message": p.message} for p in exc.problems]},
                status_code=422,
            )
        taken = [s.name for s in specs if s.name in {d.name for d in relay.snapshots()}]
        if taken:
            raise HTTPException(409, f"a destination named {taken[0]!r} already exists")
        added = []
        for spec in specs:
            try:
                added.append(relay.add(spec))
            except ValueError as exc:  # lost a race for the name, or shutting down
                raise HTTPException(409, str(exc)) from None
            log.info("destination %s added (%s)", spec.name, spec.safe_url())
            if listeners is not None:
                listeners.add(spec)
        return [dataclasses.asdict(d.snapshot()) for d in added]

    @app.delete("/api/destinations/{name}", dependencies=[operator])
    async def remove_destination(name: str) -> dict[str, Any]:
        find(name)
        try:
            finished = await asyncio.to_thread(relay.remove, name, REMOVE_SECONDS)
        except KeyError:
            raise HTTPException(404, f"no destination named {name!r}") from None
        if listeners is not None:
            listeners.remove(name)
        log.info("destination %s removed", name)
        return {"removed": name, "closed_cleanly": finished}

    @app.post("/api/destinations/{name}/pause", dependencies=[operator])
    async def pause_destination(name: str) -> dict[str, Any]:
        destination = find(name)
        destination.pause()
        log.info("destination %s paused", name)
        return dataclasses.asdict(destination.snapshot())

    @app.post("/api/destinations/{name}/resume", dependencies=[operator])
    async def resume_destination(name: str) -> dict[str, Any]:
        destination = find(name)
        destination.resume()
        log.info("destination %s resumed", name)
        return dataclasses.asdict(destination.snapshot())


def parse_body(body: dict[str, Any], show: Show) -> tuple[DestinationSpec, ...]:
    """Validate ``body`` as a ``[[destinations]]`` table; a YouTube ``backup = true``
    gives two destinations.

    Values are taken as given: no ``${VAR}`` substitution (an API caller must not be
    able to send the server's environment to a URL of their choosing).

    Raises:
        EventError: Every problem, each naming its field, with secrets scrubbed.
    """
    problems = Problems()
    specs = parse_destinations([Table(body, "", problems)], show.event.base_dir)
    problems.raise_if_any()
    return specs
