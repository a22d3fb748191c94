"""The /api/rundown routes over real HTTP (uvicorn on loopback, in a thread), on a real
live rundown and journal: the operator token first, then the body (64 KiB at most),
each refusal its status and the field it names, and nothing changed by a refusal."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import Depends, FastAPI
from waiting import wait_for

from orchestrator.api.auth import RequireOperator
from orchestrator.api.rundown import MAX_BODY, add_rundown_routes
from orchestrator.event import parse_event
from orchestrator.event.secret import Secret
from orchestrator.live_rundown import Change
from orchestrator.rundown_control import JOURNAL_FILE, RundownControl

TOKEN = "operator-token-for-tests-0123456789"
T0 = time.time()
HARD = datetime.fromtimestamp(T0 + 3600, tz=UTC).isoformat()


class Host:
    """The show's side of the routes, without media: a RundownControl on the wall clock."""

    def __init__(self, control: RundownControl) -> None:
        self.control = control

    async def operate(self, op: str, args: Mapping[str, object], version: int) -> Change:
        return await self.control.operate(op, args, version)

    def rundown_status(self) -> dict[str, Any]:
        return self.control.status_json(time.time())


class Api:
    def __init__(self, port: int, state_dir: Path) -> None:
        self.port = port
        self.state_dir = state_dir

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = TOKEN,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, http.client.HTTPResponse]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        text = response.read()
        connection.close()
        return response.status, json.loads(text) if text else None, response

    def rundown(self) -> dict[str, Any]:
        status, body, _ = self.call("GET", "/api/rundown")
        assert status == 200
        return body  # type: ignore[no-any-return]

    def journaled(self) -> list[str]:
        lines = (self.state_dir / JOURNAL_FILE).read_text().splitlines()[1:]
        return [json.loads(line)["op"] for line in lines]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    event = parse_event(
        {
            "event": {"name": "API Test"},
            "speakers": [
                {"id": s, "name": s.capitalize(), "source": "testsrc"}
                for s in ("host", "guest", "imam")
            ],
            "rundown": [
                {"speaker": "host", "duration": "10m"},
                {"speaker": "guest", "duration": "10m"},
                {"speaker": "host", "duration": "5m", "start": HARD},
            ],
        },
        base_dir=tmp_path,
        env={},
    )
    control = RundownControl.open(tmp_path, event)
    app = FastAPI()
    add_rundown_routes(app, Host(control), Depends(RequireOperator(Secret(TOKEN))))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-test-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, "uvicorn to listen")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Api(port, tmp_path)
    finally:
        server.should_exit = True
        thread.join(10)


def test_get_gives_the_rundown_and_its_version_as_etag(api: Api) -> None:
    status, body, response = api.call("GET", "/api/rundown")
    assert status == 200 and response.headers["ETag"] == '"0"'
    assert response.headers["Cache-Control"] == "no-store"
    assert (body["version"], body["state"], body["current"]) == (0, "on", "host")
    assert [(i["id"], i["state"]) for i in body["items"]] == [
        ("host", "on"),
        ("guest", "next"),
        ("host-2", "upcoming"),
    ]
    item = body["items"][0]
    assert set(item) >= {"id", "speaker", "duration", "start", "end", "state"}
    assert item["duration"] == 600 and item["end"] - item["start"] == pytest.approx(600)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/rundown"),
        ("POST", "/api/rundown/next"),
        ("POST", "/api/rundown/take"),
        ("PATCH", "/api/rundown/items/host"),
        ("POST", "/api/rundown/items"),
        ("DELETE", "/api/rundown/items/guest"),
        ("POST", "/api/rundown/move"),
        ("POST", "/api/rundown/hold"),
        ("POST", "/api/rundown/resume"),
        ("POST", "/api/rundown/end"),
    ],
)
def test_every_route_needs_the_operator_token(api: Api, method: str, path: str) -> None:
    status, body, _ = api.call(method, path, {"version": 0}, token=None)
    assert status == 401 and "operator token" in body["detail"]
    assert api.call(method, path, {"version": 0}, token="wrong-token-wrong-token")[0] == 401
    assert api.rundown()["version"] == 0


def test_the_token_is_checked_before_the_body_is_read(api: Api) -> None:
    huge = b'{"version": 0, "text": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    status, body, _ = api.call("POST", "/api/rundown/hold", raw=huge, token=None)
    assert status == 401, body  # not 413: nobody without the token gets that far


def test_a_body_over_64_kib_is_refused(api: Api) -> None:
    big = json.dumps({"version": 0, "text": "x" * MAX_BODY}).encode()
    status, body, _ = api.call("POST", "/api/rundown/hold", raw=big)
    assert (status, body["field"]) == (413, "body")
    assert api.rundown()["version"] == 0


@pytest.mark.parametrize(
    ("path", "raw", "field", "says"),
    [
        ("/api/rundown/next", b"{not json", "body", "not JSON"),
        ("/api/rundown/next", b"[0]", "body", "expected a JSON object"),
        ("/api/rundown/next", b"{}", "version", "give the version"),
        ("/api/rundown/next", b'{"version": "0"}', "version", "expected an integer"),
        ("/api/rundown/next", b'{"version": true}', "version", "expected an integer"),
        ("/api/rundown/next", b'{"version": 0, "force": 1}', "force", "unknown field"),
        ("/api/rundown/take", b'{"version": 0}', "item", "give item, or speaker"),
        ("/api/rundown/take", b'{"version": 0, "item": 3}', "item", "expected a string"),
        (
            "/api/rundown/take",
            b'{"version": 0, "item": "guest", "speaker": "imam"}',
            "speaker",
            "not both",
        ),
        ("/api/rundown/take", b'{"version": 0, "speaker": "imam"}', "duration", "missing"),
        (
            "/api/rundown/take",
            b'{"version": 0, "speaker": "imam", "duration": NaN}',
            "body",
            "not JSON",
        ),
        (
            "/api/rundown/take",
            b'{"version": 0, "speaker": "imam", "duration": [5]}',
            "duration",
            "expected seconds",
        ),
        ("/api/rundown/items", b'{"version": 0, "duration": 60}', "speaker", "missing"),
        (
            "/api/rundown/items",
            b'{"version": 0, "speaker": "imam", "duration": 60, "after": 2}',
            "after",
            "an item id or null",
        ),
        ("/api/rundown/move", b'{"version": 0, "after": "host"}', "item", "missing"),
        ("/api/rundown/hold", b'{"version": 0, "text": 5}', "text", "expected a string"),
    ],
)
def test_a_malformed_request_is_400_naming_the_field(
    api: Api, path: str, raw: bytes, field: str, says: str
) -> None:
    status, body, _ = api.call("POST", path, raw=raw)
    assert (status, body["field"]) == (400, field), body
    assert says in body["detail"]
    assert api.rundown()["version"] == 0 and api.journaled() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "says"),
    [
        ("POST", "/api/rundown/take", {"item": "nobody"}, "item", "no item 'nobody'"),
        ("POST", "/api/rundown/take", {"item": "host"}, "item", "already on air"),
        (
            "POST",
            "/api/rundown/take",
            {"speaker": "nobody", "duration": "5m"},
            "speaker",
            "no speaker 'nobody'",
        ),
        ("PATCH", "/api/rundown/items/host", {"duration": "5 minutes"}, "duration", "not a dur"),
        ("PATCH", "/api/rundown/items/host", {"duration": "90"}, "duration", "needs a unit"),
        ("PATCH", "/api/rundown/items/host", {"duration": -5}, "duration", "more than 0 s"),
        ("PATCH", "/api/rundown/items/host", {"duration": 0}, "duration", "more than 0 s"),
        ("PATCH", "/api/rundown/items/host", {"duration": "25h"}, "duration", "at most 24 h"),
        ("DELETE", "/api/rundown/items/host", {}, "item", "is on air"),
        ("POST", "/api/rundown/move", {"item": "host", "after": "guest"}, "item", "is on air"),
        ("POST", "/api/rundown/move", {"item": "guest", "after": "guest"}, "after", "itself"),
        ("POST", "/api/rundown/move", {"item": "guest", "after": "nope"}, "after", "no item"),
        ("POST", "/api/rundown/hold", {"text": "two\nlines"}, "text", "one line"),
        ("POST", "/api/rundown/hold", {"text": "x" * 201}, "text", "at most 200"),
        ("POST", "/api/rundown/resume", {}, "state", "not on hold"),
    ],
)
def test_a_change_the_rundown_refuses_is_422_naming_the_field(
    api: Api, method: str, path: str, body: dict[str, Any], field: str, says: str
) -> None:
    status, answer, _ = api.call(method, path, {"version": 0, **body})
    assert (status, answer["field"]) == (422, field), answer
    assert says in answer["detail"]
    assert api.rundown()["version"] == 0 and api.journaled() == []


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_an_unknown_item_in_the_path_is_404(api: Api, method: str) -> None:
    body = {"version": 0, "duration": 9} if method == "PATCH" else {"version": 0}
    status, body, _ = api.call(method, "/api/rundown/items/nobody", body)
    assert (status, body["field"]) == (404, "item") and "no item 'nobody'" in body["detail"]


def test_a_played_item_is_refused(api: Api) -> None:
    assert api.call("POST", "/api/rundown/next", {"version": 0})[0] == 200
    status, body, _ = api.call("PATCH", "/api/rundown/items/host", {"version": 1, "duration": 60})
    assert (status, body["field"]) == (422, "item") and "has already played" in body["detail"]


def test_a_stale_version_is_409_with_the_current_rundown(api: Api) -> None:
    assert api.call("POST", "/api/rundown/hold", {"version": 0, "text": "Wait"})[0] == 200
    status, body, _ = api.call("POST", "/api/rundown/next", {"version": 0})
    assert (status, body["field"], body["version"]) == (409, "version", 1)
    assert "reload" in body["detail"]
    assert body["rundown"]["version"] == 1 and body["rundown"]["state"] == "hold"
    assert api.journaled() == ["hold"]


def test_the_version_may_come_as_if_match(api: Api) -> None:
    status, body, response = api.call(
        "DELETE", "/api/rundown/items/guest", headers={"If-Match": '"0"'}
    )
    assert status == 200 and response.headers["ETag"] == '"1"'
    assert [i["state"] for i in body["items"]][1] == "skipped"
    assert api.call("POST", "/api/rundown/hold", headers={"If-Match": 'W/"1"'})[0] == 200
    assert api.call("POST", "/api/rundown/resume", headers={"If-Match": "2"})[0] == 200
    status, body, _ = api.call(
        "POST", "/api/rundown/next", {"version": 3}, headers={"If-Match": "2"}
    )
    assert (status, body["field"]) == (400, "version")
    status, body, _ = api.call("POST", "/api/rundown/next", headers={"If-Match": "*"})
    assert (status, body["field"]) == (400, "version")
    assert api.call("POST", "/api/rundown/next", headers={"If-Match": '"1"'})[0] == 409


def test_each_operation_answers_the_new_rundown(api: Api) -> None:
    status, body, _ = api.call(
        "POST", "/api/rundown/take", {"version": 0, "speaker": "imam", "duration": "90s"}
    )
    assert status == 200 and (body["added"], body["current"], body["cut"]) == (
        "imam.1",
        "imam.1",
        [],
    )
    on = body["items"][1]
    assert (on["id"], on["duration"], on["state"]) == ("imam.1", 90, "on")
    status, body, _ = api.call(
        "POST",
        "/api/rundown/items",
        {"version": 1, "speaker": "host", "duration": 30, "after": "guest"},
    )
    assert body["added"] == "host.1"
    assert [i["id"] for i in body["items"]][2:] == ["guest", "host.1", "host-2"]
    body = api.call("POST", "/api/rundown/move", {"version": 2, "item": "host.1", "after": None})[1]
    assert [i["id"] for i in body["items"]][2:] == ["host.1", "guest", "host-2"]
    body = api.call("PATCH", "/api/rundown/items/imam.1", {"version": 3, "duration": "5m"})[1]
    assert body["items"][1]["duration"] == 300
    body = api.call("POST", "/api/rundown/hold", {"version": 4})[1]
    assert (body["state"], body["hold"]) == ("hold", "Please stand by")
    body = api.call("POST", "/api/rundown/take", {"version": 5, "item": "guest"})[1]
    assert (body["state"], body["current"], body["hold"]) == ("on", "guest", None)
    body = api.call("POST", "/api/rundown/end", {"version": 6})[1]
    assert body["state"] == "ended"
    status, body, _ = api.call("POST", "/api/rundown/next", {"version": 7})
    assert (status, body["field"]) == (422, "state") and "has ended" in body["detail"]
    assert api.journaled() == [
        "take_speaker",
        "insert",
        "move",
        "set_duration",
        "hold",
        "take",
        "end",
    ]


def test_an_edit_into_a_hard_start_says_which_item_is_cut(api: Api) -> None:
    # guest runs to the hard start at +1 h exactly (10 + 50 min); an hour more is cut there
    status, body, _ = api.call(
        "PATCH", "/api/rundown/items/guest", {"version": 0, "duration": "1h"}
    )
    assert status == 200 and body["cut"] == ["guest"]
    guest = body["items"][1]
    assert guest["cut"] is True and guest["end"] == pytest.approx(T0 + 3600, abs=1)
