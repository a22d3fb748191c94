"""The console's live channel, ``/api/live`` (a WebSocket), and the console's own files.

The protocol, as the console (``static/console.js``) speaks it:

1. The client opens ``/api/live``; the URL carries no token. Its first message, within
   :data:`AUTH_SECONDS`, is ``{"token": "<operator token>"}``. No message, something
   else, or a wrong token: the server closes with code 4401 (and the page asks for the
   token again). An address that sent too many wrong tokens (to the channel or to any
   ``/api`` route: see :mod:`orchestrator.api.auth`) is closed with 4429 at once, its
   reason saying in how many seconds to retry.
2. Then the server pushes text frames, each one JSON object
   ``{"type": <topic>, "at": <server time, epoch s>, "status": <HTTP status>,
   "data": <body>}``, where ``data`` is exactly what ``GET <path>`` answers (with the
   operator token) for the topics of :data:`TOPICS`: ``state`` (``/api/state``, every
   second), ``rundown``, ``audio``, ``messages`` and ``monitoring``, each looked at every
   ``period`` seconds (the rundown also at once when the show signals a change) and
   pushed only when it changed. A topic this server does not serve (yet) comes once with
   ``"status": 404``. A client that connects gets the latest frame of every topic at
   once. What the client sends after its token is ignored.

The channel asks the app itself (an in-process ASGI request, no socket): what is pushed is
byte for byte what the page's polling fallback gets from the same GETs, and an API added
to the app is pushed as soon as it answers.

Cost: one producer task for all clients, running only while one is connected, makes
each frame once; a client has at most one frame per topic waiting (a slow client gets
the latest of each, older frames are dropped), and one whose frame has not gone out
within :data:`SEND_TIMEOUT` is closed (it reconnects and starts from the latest). Every
task is owned: a client's sender by its connection, the producer by the channel, and
:meth:`LiveChannel.close` (called by the show's close) ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, TypeAlias

from fastapi import FastAPI, HTTPException, WebSocket, params
from fastapi.responses import Response
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect, WebSocketState

from orchestrator.api.auth import RequireOperator, TooManyGuesses
from orchestrator.event.secret import Secret
from orchestrator.ingest.media_source import is_pull
from orchestrator.show import Show

log = logging.getLogger(__name__)

AUTH_SECONDS: Final = 5.0  # for the first message, the token
MAX_AUTH_MESSAGE: Final = 4096  # characters
SEND_TIMEOUT: Final = 20.0  # a client that takes longer over one frame is closed
MAX_CLIENTS: Final = 64
TICK: Final = 0.25  # how often the producer looks whether a topic is due
UNAUTHORIZED: Final = 4401  # close code: no or wrong token
TOO_MANY_GUESSES: Final = 4429  # close code: this address guessed wrong too often
ASSETS: Final = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# The console's page and files: the join page's protections (orchestrator/api/
# speaker_page.py): nothing but its own files, never in a frame, no type sniffing, no
# referrer. connect-src 'self' covers the /api/live WebSocket of the same host.
CONSOLE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


# A change signal: ``seen = await signal(seen)`` returns once there is something new.
Signal: TypeAlias = Callable[[int], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Topic:
    """What is pushed as ``{"type": name}``: ``GET path``, looked at every ``period``
    seconds; ``always``: pushed every time (the state changes every second anyway)."""

    name: str
    path: str
    period: float
    always: bool = False


# Each look is an in-process GET, about 0.5 ms of CPU: about 2.5 ms a second in all,
# shared by every console.
TOPICS: Final = (
    Topic("state", "/api/state", 1.0, always=True),
    Topic("rundown", "/api/rundown", 2.0),  # and at once on the show's change signal
    Topic("audio", "/api/audio", 0.5),  # the levels are of the last second
    Topic("messages", "/api/messages", 2.0),
    Topic("monitoring", "/api/monitoring", 2.0),
)


class _Client:
    """One console: the frames waiting for it (the latest per topic) and its sender."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._waiting: dict[str, str] = {}
        self._wake = asyncio.Event()

    def offer(self, topic: str, frame: str) -> None:
        """Queue ``frame``; one still waiting for the same topic is dropped."""
        self._waiting.pop(topic, None)
        self._waiting[topic] = frame
        self._wake.set()

    async def send_forever(self) -> None:
        """Send what waits, oldest topic first. Raises on a send that fails or times out."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                topic = next(iter(self._waiting))
                frame = self._waiting.pop(topic)
                async with asyncio.timeout(SEND_TIMEOUT):
                    await self.websocket.send_text(frame)


class LiveChannel:
    """The ``/api/live`` WebSocket of one app: see the module's docstring."""

    def __init__(
        self,
        app: FastAPI,
        token: Secret,
        topics: Sequence[Topic] = TOPICS,
        signals: Mapping[str, Signal] | None = None,
        operator: RequireOperator | None = None,
    ) -> None:
        """``signals``: per topic, a change signal that has it looked at at once (not
        only every ``period``). ``operator``: the app's token check (its guess counts
        are shared with the /api routes)."""
        self._app = app
        self._token = token.reveal().encode()
        self._operator = operator or RequireOperator(token)
        self._topics = tuple(topics)
        self._signals = dict(signals or {})
        self._due: dict[str, float] = {}  # topic -> when it is next looked at (monotonic)
        self._wake = asyncio.Event()
        self._clients: set[_Client] = set()
        self._latest: dict[str, str] = {}  # topic -> its last frame, for newcomers
        self._bodies: dict[str, tuple[int, bytes]] = {}  # topic -> last (status, body)
        self._producer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._empty = asyncio.Event()  # set while no console is connected
        self._empty.set()
        self._failing: set[str] = set()  # topics whose GET raised (logged once)

        @app.websocket("/api/live")
        async def live(websocket: WebSocket) -> None:
            await self.serve(websocket)

    # -- one connection ---------------------------------------------------------------------
    async def serve(self, websocket: WebSocket) -> None:
        """Authenticate ``websocket``, then push to it until either side closes."""
        await websocket.accept()
        try:
            authenticated = await self._authenticated(websocket)
        except TooManyGuesses as blocked:
            await _close(websocket, TOO_MANY_GUESSES, str(blocked))
            return
        if not authenticated:
            await _close(websocket, UNAUTHORIZED, 'operator token required: send {"token": ...}')
            return
        if self._stopping.is_set() or len(self._clients) >= MAX_CLIENTS:
            await _close(websocket, 1013, "too many consoles, or stopping: try again later")
            return
        client = _Client(websocket)
        self._join(client)
        sender = asyncio.create_task(client.send_forever(), name="live-send")
        reader = asyncio.create_task(_read_until_closed(websocket), name="live-read")
        stopping = asyncio.create_task(self._stopping.wait(), name="live-stop")
        tasks = {sender, reader, stopping}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if sender in done and not sender.cancelled() and sender.exception() is not None:
                log.info("console dropped from the live channel: %r", sender.exception())
            if reader not in done:
                going_away = stopping in done
                await _close(websocket, 1001 if going_away else 1013, "reconnect")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._leave(client)

    async def _authenticated(self, websocket: WebSocket) -> bool:
        """Raises TooManyGuesses: the client's address is blocked (at once, unread)."""
        address = websocket.client.host if websocket.client else ""
        blocked = self._operator.guesses.retry_after(address)
        if blocked is not None:
            raise TooManyGuesses(blocked)
        try:
            async with asyncio.timeout(AUTH_SECONDS):
                message = await websocket.receive()
        except (TimeoutError, WebSocketDisconnect):
            return False
        text = message.get("text")
        if not isinstance(text, str) or len(text) > MAX_AUTH_MESSAGE:
            return False
        try:
            body = json.loads(text)
        except ValueError:
            return False
        token = body.get("token") if isinstance(body, dict) else None
        return self._operator.check(token if isinstance(token, str) else "", address)

    # -- the clients and the producer -------------------------------------------------------
    def _join(self, client: _Client) -> None:
        self._clients.add(client)
        self._empty.clear()
        for topic, frame in self._latest.items():
            client.offer(topic, frame)
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce(), name="live-producer")

    async def _leave(self, client: _Client) -> None:
        self._clients.discard(client)
        if not self._clients:
            self._empty.set()
        if not self._clients and self._producer is not None:
            producer, self._producer = self._producer, None
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    async def _produce(self) -> None:
        self._due = dict.fromkeys((t.name for t in self._topics), 0.0)
        async with asyncio.TaskGroup() as watchers:  # cancelled with the producer
            for name, signal in self._signals.items():
                watchers.create_task(self._watch(name, signal), name=f"live-watch-{name}")
            while True:
                self._wake.clear()
                for topic in self._topics:
                    now = time.monotonic()
                    if now >= self._due[topic.name]:
                        self._due[topic.name] = now + topic.period
                        await self._look(topic)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK):
                        await self._wake.wait()

    async def _watch(self, topic: str, signal: Signal) -> None:
        """Have ``topic`` looked at as soon as its signal says it changed."""
        seen = -1
        while True:
            try:
                seen = await signal(seen)
            except Exception:
                log.exception("live channel: the %s change signal failed", topic)
                await asyncio.sleep(TICK * 4)
                continue
            self._due[topic] = 0.0
            self._wake.set()

    async def _look(self, topic: Topic) -> None:
        try:
            answer = await self._get(topic.path)
        except Exception:
            if topic.name not in self._failing:
                self._failing.add(topic.name)
                log.exception("live channel: GET %s failed", topic.path)
            return
        self._failing.discard(topic.name)
        if not topic.always and self._bodies.get(topic.name) == answer:
            return
        self._bodies[topic.name] = answer
        status, body = answer
        data = body.decode() if body else "null"
        frame = (
            f'{{"type":{json.dumps(topic.name)},"at":{time.time():.3f},'
            f'"status":{status},"data":{data}}}'
        )
        self._latest[topic.name] = frame
        for client in self._clients:
            client.offer(topic.name, frame)

    async def _get(self, path: str) -> tuple[int, bytes]:
        """``GET path`` from the app itself, as an operator: (status, JSON body)."""
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"authorization", b"Bearer " + self._token), (b"host", b"live")],
            "client": None,
            "server": None,
            "state": {},
        }
        status = 500
        chunks: list[bytes] = []
        asked = False

        async def receive() -> Message:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # never disconnects: the app finishes first
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        body = b"".join(chunks)
        if status != 200:  # the detail only (FastAPI's errors are JSON; keep it so)
            try:
                body = json.dumps(json.loads(body)).encode()
            except ValueError:
                body = json.dumps({"detail": body.decode(errors="replace")[:200]}).encode()
        return status, body

    # -- shutdown -----------------------------------------------------------------------------
    async def close(self) -> None:
        """Close every console (1001, going away) and stop the producer."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await self._empty.wait()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


async def _read_until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it closes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):  # the client may be gone already
        async with asyncio.timeout(1.0):
            await websocket.close(code, reason)


def add_live_routes(
    app: FastAPI,
    show: Show,
    token: Secret,
    operator: params.Depends,
    require: RequireOperator | None = None,
) -> None:
    """The live channel, the console's files (``/console-assets/…``) and what the console
    needs to know once (``GET /api/console``). ``require``: the token check behind
    ``operator``, whose guess counts the channel shares."""
    folder = resources.files("orchestrator.api").joinpath("static")
    assets = {name: folder.joinpath(name).read_bytes() for name in ASSETS}
    channel = LiveChannel(
        app, token, signals={"rundown": show.wait_rundown_change}, operator=require
    )
    show.on_close(channel.close)
    speakers = [
        {
            "id": s.id,
            "name": s.name,
            "title": s.title,
            "live": s.live,
            "source": _source_kind(s.source),
        }
        for s in show.event.speakers
    ]

    @app.get("/console-assets/{name}", include_in_schema=False)
    async def console_asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "no such file")
        return Response(assets[name], media_type=ASSETS[name], headers=CONSOLE_HEADERS)

    @app.get("/api/console", dependencies=[operator])
    async def console_facts() -> dict[str, Any]:
        """What the console needs once: the event's name and its speakers."""
        return {"event": show.event.info.name, "speakers": speakers}


def _source_kind(source: str | None) -> str:
    if source is None:
        return "browser"
    if source == "testsrc":
        return "testsrc"
    return "pull" if is_pull(source) else "clip"
