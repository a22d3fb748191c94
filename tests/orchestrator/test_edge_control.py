"""The edge's control routes and roster (orchestrator/edge/control.py, roster.py), and
the studio's reading of them (relays/edge_remote.py), without media: what a studio, or
a stranger, gets from each route before any contribution has arrived."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from asgi import asgi_request
from starlette.applications import Starlette
from starlette.requests import Request

from orchestrator.edge.control import control_routes
from orchestrator.edge.roster import WAITING, Roster
from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.edge_spec import EdgeSpec
from orchestrator.event.secret import Secret
from relays.edge_remote import EdgeRemote, EdgeUnreachable, control_url, parse_snapshots

KEY = "edge-key-for-the-control-test"


def spec(name: str) -> DestinationSpec:
    return DestinationSpec(
        name=name, platform="custom", kind="rtmp", url="rtmp://127.0.0.1/rec", key=Secret(name)
    )


def app(roster: Roster, tmp_path: Path) -> Starlette:
    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {KEY}"

    return Starlette(routes=control_routes(roster, authorized, tmp_path))


def call(
    asgi: Starlette, method: str, path: str, body: bytes = b"", key: str | None = KEY
) -> tuple[int, Any]:
    """One request through the ASGI app: (status, the JSON answer)."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    status, _, data = asyncio.run(asgi_request(asgi, method, path, headers=headers, body=body))
    return status, json.loads(data or b"null")


def test_the_roster_keeps_what_the_studio_changed_before_a_contribution() -> None:
    roster = Roster([spec("yt")])
    assert [(s.name, s.state, s.last_error) for s in roster.snapshots()] == [
        ("yt", "connecting", WAITING)
    ]
    assert roster.add(spec("tw")).state == "connecting"
    with pytest.raises(ValueError, match="already exists"):
        roster.add(spec("tw"))
    assert roster.pause("yt").state == "paused"
    assert {s.name: s.state for s in roster.snapshots()} == {"yt": "paused", "tw": "connecting"}
    assert roster.resume("yt").state == "connecting"
    assert roster.remove("tw", 1.0) is True
    assert [s.name for s in roster.snapshots()] == ["yt"]
    with pytest.raises(KeyError):
        roster.pause("tw")


def test_every_route_needs_the_edge_key(tmp_path: Path) -> None:
    asgi = app(Roster([spec("yt")]), tmp_path)
    table = json.dumps({"name": "x", "url": "rtmp://127.0.0.1/rec", "key": "k"}).encode()
    for method, path, body in [
        ("GET", "/destinations", b""),
        ("POST", "/destinations", table),
        ("DELETE", "/destinations/yt", b""),
        ("POST", "/destinations/yt/pause", b""),
    ]:
        for key in (None, "wrong-key-wrong-key"):
            assert call(asgi, method, path, body, key=key)[0] == 401, (method, path, key)
    assert call(asgi, "GET", "/destinations")[1][0]["state"] == "connecting"  # untouched


def test_adding_over_the_route_is_validated_and_bounded(tmp_path: Path) -> None:
    roster = Roster([spec("yt")])
    asgi = app(roster, tmp_path)
    status, answer = call(asgi, "POST", "/destinations", b'{"name": "tw"}')
    assert status == 422 and "nowhere to send the program" in answer["detail"][0]["message"]
    recording = {"name": "rec", "url": str(tmp_path / "x.mkv")}
    status, answer = call(asgi, "POST", "/destinations", json.dumps(recording).encode())
    assert status == 422 and "edge file" in answer["detail"][0]["message"]
    assert call(asgi, "POST", "/destinations", b"[1, 2]")[0] == 422
    assert call(asgi, "POST", "/destinations", b"{not json")[0] == 400
    big = json.dumps({"name": "tw", "pad": "x" * 70_000}).encode()
    assert call(asgi, "POST", "/destinations", big)[0] == 413
    table = {"name": "tw", "url": "rtmp://127.0.0.1/rec", "key": "tw-stream-key-1"}
    status, answer = call(asgi, "POST", "/destinations", json.dumps(table).encode())
    assert status == 201 and answer[0]["name"] == "tw"
    assert "tw-stream-key-1" not in json.dumps(answer)
    assert call(asgi, "POST", "/destinations", json.dumps(table).encode())[0] == 409
    assert call(asgi, "POST", "/destinations/nope/pause")[0] == 404
    assert call(asgi, "POST", "/destinations/yt/explode")[0] == 404
    assert call(asgi, "DELETE", "/destinations/nope")[0] == 404
    assert call(asgi, "DELETE", "/destinations/tw")[1] == {"removed": "tw", "closed_cleanly": True}


def test_the_studio_reads_an_edges_answer_as_snapshots_via_it() -> None:
    assert control_url("https://edge.example.org/contribute") == (
        "https://edge.example.org/destinations"
    )
    assert control_url("https://h:8443/jalsa/contribute") == "https://h:8443/jalsa/destinations"
    roster = Roster([spec("yt")])
    answer = json.loads(json.dumps([dataclasses.asdict(s) for s in roster.snapshots()]))
    snapshots = parse_snapshots([*answer, "junk", {"name": "half"}], "karachi-vm")
    assert [(s.name, s.via) for s in snapshots] == [("yt", "karachi-vm")]
    assert parse_snapshots({"detail": "no"}, "karachi-vm") == ()


def test_an_edge_that_does_not_answer_is_said_so_without_its_key() -> None:
    key = "edge-key-never-in-an-error-12345"
    remote = EdgeRemote(EdgeSpec("karachi-vm", "http://127.0.0.1:9/contribute", Secret(key)))
    with pytest.raises(EdgeUnreachable) as raised:
        asyncio.run(remote.call("GET", ""))
    assert "karachi-vm" in str(raised.value) and key not in str(raised.value)
    asyncio.run(remote.refresh())  # no snapshots before: none after, no exception
    assert remote.snapshots() == ()


def test_the_edge_serves_its_mirrors_files_and_nothing_else(tmp_path: Path) -> None:
    """/hls on the edge's port is public and read-only: the edge file's mirrors only, by
    strict names, with the studio's cache headers; no key needed, none leaked."""
    from orchestrator.edge.fanout import Fanout
    from orchestrator.edge.server import edge_app
    from orchestrator.event.edge_spec import EdgeFile

    mirror = DestinationSpec(name="mirror", platform="custom", kind="hls", url="hls")
    fanout = Fanout([spec("yt"), mirror], tmp_path)
    asgi = edge_app(fanout, EdgeFile("edge", Secret(KEY), (spec("yt"), mirror)), tmp_path)
    folder = tmp_path / "hls" / "mirror"
    folder.mkdir(parents=True)
    (folder / "index.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n")
    (tmp_path / "edge.toml").write_text(f'key = "{KEY}"\n')

    def get(path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        return asyncio.run(asgi_request(asgi, method, path))

    status, headers, body = get("/hls/mirror/index.m3u8")
    assert status == 200 and body.startswith(b"#EXTM3U")
    assert headers["cache-control"] == "public, max-age=1"
    assert get("/hls/mirror/index.m3u8", "OPTIONS")[0] == 204
    for path in (
        "/hls/yt/index.m3u8",  # an RTMP destination, not a mirror
        "/hls/other/index.m3u8",
        "/hls/mirror/..%2F..%2Fedge.toml",
        "/hls/mirror/../../edge.toml",
        "/hls/mirror/edge.toml",
    ):
        status, _, body = get(path)
        assert status == 404 and KEY.encode() not in body, path
