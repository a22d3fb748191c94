"""The green room's thumbnail and link routes over real HTTP (uvicorn on loopback, in a
thread): the operator token, a small JPEG of the speaker's latest picture made once a
second however many consoles ask, 404 without a picture, and a join link exactly as
``jalsa links`` makes it, that the join checks accept and that a revocation outdates."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from PIL import Image
from waiting import wait_for

from orchestrator.api.auth import RequireOperator
from orchestrator.api.speaker_desk import Thumbnails, add_speaker_desk_routes
from orchestrator.event import Event, parse_event
from orchestrator.event.secret import Secret
from orchestrator.ingest.test_pattern import TestPattern
from orchestrator.program.source import Source
from orchestrator.speakers.links import Links, default_expiry, revoke

TOKEN = "operator-token-for-tests-0123456789"
SECRET = "link-secret-for-tests-0123456789"


class Host:
    """The show's side: speaker id -> the source whose picture is theirs."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.sources: dict[str, Source] = {}
        self.asked = 0

    def speaker_source(self, speaker: str) -> Source | None:
        self.asked += 1
        return self.sources.get(speaker)


class Api:
    def __init__(self, port: int, host: Host, thumbnails: Thumbnails, state_dir: Path) -> None:
        self.port, self.host, self.thumbnails, self.state_dir = port, host, thumbnails, state_dir

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = TOKEN,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        connection.request(method, path, headers=sent)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, data, response

    def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, data, _ = self.call(method, path, **kwargs)
        return status, json.loads(data)


def desk_event(tmp_path: Path, rundown: list[dict[str, Any]] | None = None) -> Event:
    return parse_event(
        {
            "event": {"name": "Desk Test"},
            "speakers": [
                {"id": "host", "name": "Host", "source": "testsrc"},
                {"id": "guest", "name": "Guest"},  # live: joins from the browser
            ],
            "rundown": rundown
            or [{"speaker": "host", "duration": "10m"}, {"speaker": "guest", "duration": "5m"}],
        },
        base_dir=tmp_path,
        env={},
    )


@contextlib.contextmanager
def serve(event: Event, state_dir: Path) -> Iterator[Api]:
    host = Host(event)
    app = FastAPI()
    thumbnails = add_speaker_desk_routes(
        app, host, state_dir, Depends(RequireOperator(Secret(TOKEN)))
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="desk-test-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, "uvicorn to listen")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Api(port, host, thumbnails, state_dir)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("JALSA_SECRET", SECRET)
    with serve(desk_event(tmp_path), tmp_path) as running:
        yield running


class Still(Source):
    """One solid colour picture, or none."""

    def __init__(self, rgb: tuple[int, int, int] | None, size: tuple[int, int] = (1280, 720)):
        super().__init__("still")
        self._frame = None
        if rgb is not None:
            picture = np.zeros((size[1], size[0], 3), np.uint8)
            picture[:, :] = rgb
            self._frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                format="yuv420p"
            )

    def start(self) -> None: ...
    def stop(self) -> None: ...

    @property
    def state(self) -> Any:
        raise NotImplementedError

    def video(self) -> av.VideoFrame | None:
        return self._frame

    def audio(self, count: int) -> Any:
        raise NotImplementedError

    def snapshot(self) -> Any:
        raise NotImplementedError


# -- thumbnails ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/speakers/host/thumbnail.jpg", "/api/speakers/guest/link"])
def test_both_need_the_operator_token(api: Api, path: str) -> None:
    method = "POST" if path.endswith("link") else "GET"
    for token in (None, "wrong-token-0123456789"):
        status, _, _ = api.call(method, path, token=token)
        assert status == 401


def test_a_thumbnail_is_a_small_jpeg_of_the_latest_picture(api: Api) -> None:
    api.host.sources["guest"] = Still((20, 180, 40))
    status, data, response = api.call("GET", "/api/speakers/guest/thumbnail.jpg")
    assert status == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (256, 144)
    r, g, b = image.convert("RGB").getpixel((128, 72))  # type: ignore[misc]
    assert g > 150 and r < 60 and b < 80  # the speaker's green
    assert len(data) < 20_000


def test_a_test_pattern_speaker_has_its_card_as_thumbnail(api: Api) -> None:
    api.host.sources["host"] = TestPattern("Host", width=640, height=360, index=0)
    status, data, _ = api.call("GET", "/api/speakers/host/thumbnail.jpg")
    assert status == 200
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.size == (256, 144)
    r, g, b = image.getpixel((20, 20))  # type: ignore[misc]
    assert r > 150 and g < 90 and b < 90  # the first palette colour: red


def test_the_aspect_is_kept(api: Api) -> None:
    api.host.sources["guest"] = Still((200, 200, 200), size=(640, 480))
    _, data, _ = api.call("GET", "/api/speakers/guest/thumbnail.jpg")
    assert Image.open(io.BytesIO(data)).size == (256, 192)


def test_no_picture_or_no_speaker_is_404(api: Api) -> None:
    status, body = api.json("GET", "/api/speakers/guest/thumbnail.jpg")  # not joined
    assert status == 404 and "no picture" in body["detail"]
    api.host.sources["host"] = Still(None)  # opened, no frame decoded yet
    status, body = api.json("GET", "/api/speakers/host/thumbnail.jpg")
    assert status == 404 and "no picture" in body["detail"]
    status, body = api.json("GET", "/api/speakers/nobody/thumbnail.jpg")
    assert status == 404 and "no speaker" in body["detail"]
    assert "nobody" not in api.thumbnails._cache  # unknown ids cost no memory


def test_twenty_consoles_cost_one_encode_per_speaker_per_second(api: Api) -> None:
    api.host.sources["guest"] = Still((20, 180, 40))
    api.host.sources["host"] = Still((200, 40, 40))

    def fetch(path: str) -> bytes:
        status, data, _ = api.call("GET", path)
        assert status == 200
        return data

    paths = [f"/api/speakers/{s}/thumbnail.jpg" for s in ("guest", "host")] * 20
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(fetch, paths))
    assert api.host.asked == 2  # one look (and one encode) per speaker
    assert len({a for a in answers[0::2]}) == 1  # everyone got the same bytes
    time.sleep(1.1)  # a second later: a fresh picture
    fetch(paths[0])
    assert api.host.asked == 3


def test_a_changed_picture_shows_within_a_second(api: Api) -> None:
    api.host.sources["guest"] = Still((20, 180, 40))
    assert api.call("GET", "/api/speakers/guest/thumbnail.jpg")[0] == 200
    api.host.sources["guest"] = Still((40, 40, 200))

    def blue() -> bool:
        _, data, _ = api.call("GET", "/api/speakers/guest/thumbnail.jpg")
        pixel = Image.open(io.BytesIO(data)).convert("RGB").getpixel((128, 72))
        _, g, b = pixel  # type: ignore[misc]
        return bool(b > 150 and g < 90)

    wait_for(blue, 2.5, "the new picture")


# -- join links ------------------------------------------------------------------------------
def test_a_link_is_made_as_jalsa_links_makes_it(api: Api) -> None:
    before = time.time()
    status, data, response = api.call(
        "POST", "/api/speakers/guest/link", headers={"Host": "jalsa.example.org"}
    )
    assert status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    body = json.loads(data)
    assert set(body) == {"speaker", "url", "expires", "note"}
    assert body["speaker"] == "guest" and body["note"] is None
    prefix = "http://jalsa.example.org/join/"
    assert body["url"].startswith(prefix)
    token = body["url"][len(prefix) :]
    # The same secret and checks as the join page's: the link works for this speaker.
    links = Links(api.host.event, api.state_dir)
    claims = links.check(token)
    assert claims.speaker == "guest" and claims.expires == body["expires"]
    expected = default_expiry(api.host.event, before)  # the rundown's end + 1 h
    assert expected <= body["expires"] <= default_expiry(api.host.event, time.time())


def test_a_link_follows_the_address_the_console_uses(api: Api) -> None:
    status, body = api.json(
        "POST",
        "/api/speakers/guest/link",
        headers={"Host": "rally.example.org:8443", "X-Forwarded-Proto": "https"},
    )
    assert status == 200
    # (uvicorn trusts X-Forwarded-Proto from a proxy on this machine)
    assert body["url"].startswith("https://rally.example.org:8443/join/guest.")


def test_a_loopback_link_says_so(api: Api) -> None:
    status, body = api.json("POST", "/api/speakers/guest/link")
    assert status == 200
    assert body["url"].startswith(f"http://127.0.0.1:{api.port}/join/")
    assert "127.0.0.1" in body["note"] and "--base-url" in body["note"]


def test_a_link_after_a_revocation_is_of_the_new_generation(api: Api) -> None:
    _, old = api.json("POST", "/api/speakers/guest/link", headers={"Host": "a.example"})
    revoke(api.state_dir, "guest")  # jalsa links --revoke, or the console's Revoke link
    _, new = api.json("POST", "/api/speakers/guest/link", headers={"Host": "a.example"})
    links = Links(api.host.event, api.state_dir)
    assert links.check(new["url"].rsplit("/", 1)[1]).generation == 1
    with pytest.raises(Exception, match="revoked"):
        links.check(old["url"].rsplit("/", 1)[1])


@pytest.mark.parametrize("speaker", ["host", "nobody"])
def test_no_link_for_a_speaker_with_a_source_or_an_unknown_one(api: Api, speaker: str) -> None:
    status, body = api.json("POST", f"/api/speakers/{speaker}/link")
    assert status == 404 and "no live speaker" in body["detail"]


def test_no_link_lasts_longer_than_jalsa_links_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JALSA_SECRET", SECRET)
    far = datetime.fromtimestamp(time.time() + 10 * 86400, tz=UTC).isoformat()
    rundown = [{"speaker": "guest", "duration": "10m", "start": far}]
    with serve(desk_event(tmp_path, rundown), tmp_path) as api:
        status, body = api.json("POST", "/api/speakers/guest/link")
    assert status == 422 and "7 days" in body["detail"]
