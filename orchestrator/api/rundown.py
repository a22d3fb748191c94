"""Live control of the rundown: ``/api/rundown`` (operators only).

=======  ===============================  ====================================================
GET      /api/rundown                     the rundown now (``ETag: "<version>"``)
POST     /api/rundown/next                ``{"version"}``: end the item on air
POST     /api/rundown/take                ``{"version", "item"}`` or
                                          ``{"version", "speaker", "duration"}``
PATCH    /api/rundown/items/{id}          ``{"version", "duration"}``: a new duration
POST     /api/rundown/items               ``{"version", "speaker", "duration", "after"}``
DELETE   /api/rundown/items/{id}          ``{"version"}`` (or ``If-Match``): skip it
POST     /api/rundown/move                ``{"version", "item", "after"}``
POST     /api/rundown/hold                ``{"version", "text"}``
POST     /api/rundown/resume              ``{"version"}``
POST     /api/rundown/end                 ``{"version"}``
=======  ===============================  ====================================================

Every write carries the ``version`` it was made against, in the body or as ``If-Match``
(``"3"``, ``3`` or ``W/"3"``). A ``duration`` is seconds (a number) or a duration like
``"90s"``, ``"5m"``, ``"1h30m"``; ``after`` is an item id or null (first of what is to
come). The operator token is checked before the body is read; a body over 64 KiB is not
read at all.

Answers: 200 with the rundown as ``GET`` gives it plus ``"cut"`` (items a hard start cut
because of this change) and ``"added"`` (the new item's id, for a take of a speaker or
an insert); 400 a request that is not well-formed (not a JSON object, a field missing,
of the wrong type or unknown, no version); 404 the item in the path is not in the
rundown; 409 the version is stale (``"rundown"`` holds the current one); 413 the body
is over 64 KiB; 422 the rundown refuses the change (an unknown speaker, an item already
played or on air, a duration out of range, resume when not held, anything once ended).
Every 4xx but 401 and 413 answers ``{"detail": ..., "field": ...}``; nothing changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, TypeAlias

from fastapi import FastAPI, Request, params
from fastapi.responses import JSONResponse

from orchestrator.api.body import MAX_JSON_BODY, BodyRefused, read_json
from orchestrator.event.duration import parse_duration
from orchestrator.live_rundown import Change, RundownError, StaleVersion

MAX_BODY: Final = MAX_JSON_BODY
_NO_STORE: Final = {"Cache-Control": "no-store"}


class RundownHost(Protocol):
    """What the routes need of the show (:class:`orchestrator.show.Show` is one)."""

    async def operate(self, op: str, args: Mapping[str, object], version: int) -> Change: ...

    def rundown_status(self) -> dict[str, Any]: ...


# Makes an operation's (name, if not the route's) and args from the body.
Build: TypeAlias = Callable[[Mapping[str, Any]], tuple[str | None, dict[str, object]]]


class _Refused(Exception):
    def __init__(self, status: int, field: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.field, self.detail = status, field, detail


def add_rundown_routes(app: FastAPI, show: RundownHost, operator: params.Depends) -> None:
    """Register the /api/rundown routes on ``app``; all need the operator token."""

    async def write(
        request: Request,
        op: str,
        fields: tuple[str, ...],
        build: Build,
        item: str | None = None,
    ) -> JSONResponse:
        """Read and check the body (``fields`` besides version), make the op's args with
        ``build(body)``, apply it; every refusal as its status."""
        try:
            body = await _body(request)
            unknown = sorted(set(body) - {"version", *fields})
            if unknown:
                allowed = ", ".join(("version", *fields))
                raise _Refused(400, unknown[0], f"unknown field: this call takes {allowed}")
            version = _version(body, request.headers.get("if-match"))
            if item is not None and item not in {i["id"] for i in show.rundown_status()["items"]}:
                raise _Refused(404, "item", f"no item {item!r} in the rundown")
            operation, args = build(body)
            change = await show.operate(operation or op, args, version)
        except _Refused as refused:
            return _error(refused.status, refused.field, refused.detail)
        except StaleVersion as stale:
            answer = {
                "detail": stale.message,
                "field": "version",
                "version": stale.current,
                "rundown": show.rundown_status(),
            }
            return JSONResponse(answer, 409, headers=_NO_STORE)
        except RundownError as refused:
            return _error(422, refused.field, refused.message)
        answer = {**show.rundown_status(), "cut": list(change.cut), "added": change.added}
        return JSONResponse(answer, headers={**_NO_STORE, "ETag": f'"{change.version}"'})

    @app.get("/api/rundown", dependencies=[operator])
    async def rundown() -> JSONResponse:
        status = show.rundown_status()
        return JSONResponse(status, headers={**_NO_STORE, "ETag": f'"{status["version"]}"'})

    @app.post("/api/rundown/next", dependencies=[operator])
    async def next_item(request: Request) -> JSONResponse:
        return await write(request, "next", (), lambda body: (None, {}))

    @app.post("/api/rundown/take", dependencies=[operator])
    async def take(request: Request) -> JSONResponse:
        def build(body: Mapping[str, Any]) -> tuple[str | None, dict[str, object]]:
            if "item" in body:
                extra = sorted({"speaker", "duration"} & set(body))
                if extra:
                    raise _Refused(400, extra[0], "give item, or speaker and duration, not both")
                return "take", {"item": _text(body, "item")}
            if "speaker" not in body:
                raise _Refused(400, "item", "give item, or speaker and duration")
            return "take_speaker", {
                "speaker": _text(body, "speaker"),
                "duration": _duration(body),
            }

        return await write(request, "take", ("item", "speaker", "duration"), build)

    @app.patch("/api/rundown/items/{item}", dependencies=[operator])
    async def set_duration(item: str, request: Request) -> JSONResponse:
        def build(body: Mapping[str, Any]) -> tuple[str | None, dict[str, object]]:
            return None, {"item": item, "duration": _duration(body)}

        return await write(request, "set_duration", ("duration",), build, item)

    @app.post("/api/rundown/items", dependencies=[operator])
    async def insert(request: Request) -> JSONResponse:
        def build(body: Mapping[str, Any]) -> tuple[str | None, dict[str, object]]:
            return None, {
                "speaker": _text(body, "speaker"),
                "duration": _duration(body),
                "after": _after(body),
            }

        return await write(request, "insert", ("speaker", "duration", "after"), build)

    @app.delete("/api/rundown/items/{item}", dependencies=[operator])
    async def skip(item: str, request: Request) -> JSONResponse:
        return await write(request, "skip", (), lambda body: (None, {"item": item}), item)

    @app.post("/api/rundown/move", dependencies=[operator])
    async def move(request: Request) -> JSONResponse:
        def build(body: Mapping[str, Any]) -> tuple[str | None, dict[str, object]]:
            return None, {"item": _text(body, "item"), "after": _after(body)}

        return await write(request, "move", ("item", "after"), build)

    @app.post("/api/rundown/hold", dependencies=[operator])
    async def hold(request: Request) -> JSONResponse:
        def build(body: Mapping[str, Any]) -> tuple[str | None, dict[str, object]]:
            return None, {"text": _text(body, "text") if "text" in body else ""}

        return await write(request, "hold", ("text",), build)

    @app.post("/api/rundown/resume", dependencies=[operator])
    async def resume(request: Request) -> JSONResponse:
        return await write(request, "resume", (), lambda body: (None, {}))

    @app.post("/api/rundown/end", dependencies=[operator])
    async def end(request: Request) -> JSONResponse:
        return await write(request, "end", (), lambda body: (None, {}))


def _error(status: int, field: str, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status, headers=_NO_STORE)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object in the body ({} for an empty one), read up to MAX_BODY bytes."""
    try:
        value = await read_json(request, MAX_BODY, empty={})
    except BodyRefused as refused:
        raise _Refused(refused.status, "body", refused.detail) from None
    if not isinstance(value, dict):
        raise _Refused(400, "body", 'expected a JSON object, like {"version": 3}')
    return value


def _version(body: Mapping[str, Any], if_match: str | None) -> int:
    """The version from the body or ``If-Match``; both must agree when both are given."""
    header = None
    if if_match is not None:
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise _Refused(400, "version", f'If-Match must be a version, like "3": {if_match!r}')
        header = int(tag)
    if "version" in body:
        version = body["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise _Refused(400, "version", f"expected an integer, the rundown's: {version!r}")
        if header is not None and header != version:
            raise _Refused(400, "version", f"If-Match says {header}, the body {version}")
        return version
    if header is None:
        raise _Refused(
            400, "version", "give the version the change is made against (body or If-Match)"
        )
    return header


def _text(body: Mapping[str, Any], field: str) -> str:
    if field not in body:
        raise _Refused(400, field, "missing")
    value = body[field]
    if not isinstance(value, str):
        raise _Refused(400, field, f"expected a string: {value!r}")
    return value


def _after(body: Mapping[str, Any]) -> str | None:
    value = body.get("after")
    if value is not None and not isinstance(value, str):
        raise _Refused(400, "after", f"expected an item id or null: {value!r}")
    return value


def _duration(body: Mapping[str, Any]) -> float:
    """Seconds (a number), or a duration like "90s" or "5m"."""
    if "duration" not in body:
        raise _Refused(400, "duration", 'missing: seconds, or like "90s" or "5m"')
    value = body["duration"]
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise _Refused(422, "duration", str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Refused(400, "duration", f'expected seconds or a duration like "90s": {value!r}')
    return float(value)
