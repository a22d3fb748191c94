"""jalsa's real web app (``create_app`` on a real, idle :class:`Show`: no media runs),
served on loopback by uvicorn in a thread with the config ``jalsa run`` uses
(:func:`orchestrator.service.server_config`), for the web side's adversarial tests."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from waiting import wait_for

from orchestrator.api.app import create_app
from orchestrator.event import parse_event
from orchestrator.event.address import Address
from orchestrator.event.secret import Secret
from orchestrator.rundown_control import RundownControl
from orchestrator.service import _Server, server_config
from orchestrator.show import Show

TOKEN = "web-side-operator-token-0123456789"


@dataclass
class Served:
    port: int
    base_dir: Path
    state_dir: Path
    app: FastAPI

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = TOKEN,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, http.client.HTTPResponse]:
        """One request on its own connection: (status, JSON body or text, response)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            text = response.read()
        finally:
            connection.close()
        try:
            value: Any = json.loads(text) if text else None
        except ValueError:
            value = text.decode(errors="replace")
        return response.status, value, response


@contextmanager
def served_app(work: Path, live: int = 1) -> Iterator[Served]:
    """The app of a small event (two testsrc speakers and ``live`` live ones: ``remote``,
    ``remote2``, …; an HLS mirror, a recording in ``<work>/event/recordings``)."""
    base_dir, state_dir = work / "event", work / "state"
    base_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    event = parse_event(
        {
            "event": {"name": "Web Side"},
            "program": {"width": 320, "height": 180, "fps": 15, "preset": "ultrafast"},
            "speakers": [
                {"id": "host", "name": "Host", "source": "testsrc"},
                {"id": "guest", "name": "Guest", "source": "testsrc"},
                {"id": "remote", "name": "Remote"},  # live: the speaker routes too
                *({"id": f"remote{n}", "name": f"Remote {n}"} for n in range(2, live + 1)),
            ],
            "rundown": [
                {"speaker": "host", "duration": "10m"},
                {"speaker": "guest", "duration": "10m"},
            ],
            "destinations": [
                {"name": "mirror", "platform": "custom", "url": "hls"},
                {"name": "recording", "platform": "custom", "url": "recordings/show.mkv"},
            ],
        },
        base_dir=base_dir,
        env={},
    )
    control = RundownControl.open(state_dir, event)
    show = Show(event, state_dir, control)
    app = create_app(show, Secret(TOKEN), state_dir)
    server = _Server(server_config(app, Address("127.0.0.1", 0)))
    thread = threading.Thread(target=server.run, name="web-side-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, "uvicorn to listen")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(port, base_dir, state_dir, app)
    finally:
        server.should_exit = True
        thread.join(10)
