"""Live control over HTTP on a real ``jalsa run``: add, pause, resume and remove
destinations while the show is on air, and the one nobody touched never notices."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from event_toml import event_toml, slot, speaker
from icecast_server import Icecast
from jalsa_run import JalsaRun
from media import decode_errors, ffprobe
from nginx_rtmp import NginxRtmp

pytestmark = [pytest.mark.media, pytest.mark.timeout(180)]

ICECAST_PASSWORD = "icecast-source-pw-77e"
MAIN_KEY = "main-secret-key-41c2"
SECOND_KEY = "second-secret-key-93ab"
ADDED_KEY = "added-secret-key-0d77"


def call(
    run: JalsaRun, method: str, path: str, body: Any = None, token: str | None = ""
) -> tuple[int, Any]:
    """An API call; ``token=""`` means the operator's token, None means no token."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.http_port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token or run.token()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def state_of(run: JalsaRun, name: str) -> str | None:
    _, listing = call(run, "GET", "/api/destinations")
    return next((d["state"] for d in listing if d["name"] == name), None)


def wait_state(run: JalsaRun, name: str, wanted: str, timeout: float = 10.0) -> None:
    run.wait_for(lambda: state_of(run, name) == wanted, timeout, f"{name} to be {wanted}")


def icecast_listeners(run: JalsaRun) -> float | None:
    return run.metric("jalsa_listeners", platform="icecast")


def wait_metric(run: JalsaRun, name: str, timeout: float = 10.0, **labels: str) -> float:
    """The metric's value once it is exported (0 included)."""
    exported = lambda: (value := run.metric(name, **labels)) is not None and (value,)  # noqa: E731
    (value,) = run.wait_for(exported, timeout, f"{name}{labels} exported")
    return value


def wait_playlist(run: JalsaRun, path: str, timeout: float = 20.0) -> str:
    """The playlist once it is served (its first segment written)."""
    served = lambda: (answer := run.http(path))[0] == 200 and answer[1].decode()  # noqa: E731
    return run.wait_for(served, timeout, f"{path} served")


@dataclass
class Session:
    run: JalsaRun
    nginx: NginxRtmp
    ready_at: float = 0.0
    stopped_at: float = 0.0
    exit_code: int = -1
    responses: dict[str, tuple[int, Any]] = field(default_factory=dict)
    resumed_at: float = 0.0
    added_for: float = 0.0
    seen_states: dict[str, str | None] = field(default_factory=dict)
    metrics_paused: str = ""
    icecast_listeners: list[float | None] = field(default_factory=list)
    hls_playlist: str = ""
    hls_viewers: float | None = None
    hls_after_remove: int = 0


@pytest.fixture(scope="module")
def session(nginx: NginxRtmp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    work = tmp_path_factory.mktemp("relay-control")
    event = work / "event.toml"
    rec = f"rtmp://127.0.0.1:{nginx.port}/rec"
    event.write_text(
        event_toml(
            "Live Control",
            event={"on_end": "slate"},
            # A keyframe every second: a resumed destination starts at the next one.
            program={
                "width": 640,
                "height": 360,
                "video_bitrate_kbps": 800,
                "keyframe_seconds": 1,
                "preset": "ultrafast",
            },
            speakers=[speaker("host", source="testsrc")],
            rundown=[slot("host", "10m")],
            destinations=[
                {"name": "main", "url": rec, "key": MAIN_KEY},
                {"name": "second", "url": rec, "key": SECOND_KEY},
            ],
        )
    )
    with (
        Icecast(work / "icecast", password=ICECAST_PASSWORD) as icecast,
        JalsaRun(event, work / "state") as run,
    ):
        s = Session(run, nginx)
        run.wait_ready()
        s.ready_at = time.monotonic()
        r = s.responses
        r["unauthorised"] = call(run, "GET", "/api/destinations", token=None)
        r["invalid"] = call(
            run, "POST", "/api/destinations", {"name": "Bad Name", "url": "ftp://x", "key": " k"}
        )
        # An HLS mirror added live: served at /hls/m2/ (and its viewers counted) until removed.
        r["hls"] = call(run, "POST", "/api/destinations", {"name": "m2", "url": "hls"})
        s.hls_playlist = wait_playlist(run, "/hls/m2/index.m3u8")
        s.hls_viewers = wait_metric(run, "jalsa_listeners", platform="hls")
        r["remove-hls"] = call(run, "DELETE", "/api/destinations/m2")
        s.hls_after_remove = run.http("/hls/m2/index.m3u8")[0]
        r["duplicate"] = call(
            run, "POST", "/api/destinations", {"name": "main", "url": "out/x.mkv"}
        )
        added = {"name": "added", "url": f"rtmp://127.0.0.1:{nginx.port}/rec", "key": ADDED_KEY}
        r["add"] = call(run, "POST", "/api/destinations", added)
        added_at = time.monotonic()
        wait_state(run, "added", "live")
        # An Icecast destination with a listener count: counted from when it is added.
        radio = {
            "name": "radio",
            "url": icecast.source_url("radio.aac"),
            "listeners": {"status_url": f"http://127.0.0.1:{icecast.port}/status-json.xsl"},
        }
        s.icecast_listeners.append(icecast_listeners(run))
        r["add-radio"] = call(run, "POST", "/api/destinations", radio)
        s.icecast_listeners.append(wait_metric(run, "jalsa_listeners", platform="icecast"))
        r["remove-radio"] = call(run, "DELETE", "/api/destinations/radio")
        s.icecast_listeners.append(icecast_listeners(run))
        r["pause"] = call(run, "POST", "/api/destinations/second/pause")
        wait_state(run, "second", "paused", timeout=5)
        run.media_flows(2.0)  # the program goes on; the paused destination stays paused
        s.metrics_paused = run.metrics_text()
        s.seen_states["second-while-paused"] = state_of(run, "second")
        r["resume"] = call(run, "POST", "/api/destinations/second/resume")
        wait_state(run, "second", "live", timeout=5)
        s.resumed_at = time.monotonic()
        run.media_flows(3.0)
        r["remove"] = call(run, "DELETE", "/api/destinations/added")
        s.added_for = time.monotonic() - added_at
        r["list"] = call(run, "GET", "/api/destinations")
        r["remove-again"] = call(run, "DELETE", "/api/destinations/added")
        r["pause-unknown"] = call(run, "POST", "/api/destinations/nope/pause")
        run.media_flows(2.0)
        s.stopped_at = time.monotonic()
        s.exit_code, _ = run.stop(signal.SIGTERM)
    nginx.wait_recorded(MAIN_KEY, SECOND_KEY, ADDED_KEY)
    yield s


def test_the_api_needs_the_operator_token(session: Session) -> None:
    assert session.responses["unauthorised"][0] == 401


def test_an_invalid_body_gets_the_event_files_messages(session: Session) -> None:
    status, body = session.responses["invalid"]
    assert status == 422
    problems = {p["key"]: p["message"] for p in body["detail"]}
    assert "not a valid name" in problems["name"]
    assert "cannot push to ftp://" in problems["url"]
    assert "spaces" in problems["key"]
    assert session.responses["duplicate"][0] == 409


def test_an_added_destination_goes_live_and_is_removed_cleanly(session: Session) -> None:
    status, body = session.responses["add"]
    assert status == 201
    assert body[0]["name"] == "added" and ADDED_KEY not in json.dumps(body)
    assert session.responses["remove"] == (200, {"removed": "added", "closed_cleanly": True})
    names = [d["name"] for d in session.responses["list"][1]]
    assert names == ["main", "second"]
    assert session.responses["remove-again"][0] == 404
    assert session.responses["pause-unknown"][0] == 404
    path = session.nginx.recording(ADDED_KEY)
    probe = ffprobe(path)
    assert probe.video_seconds >= session.added_for - 2.0
    assert decode_errors(path) == ""


def test_an_hls_mirror_added_live_is_served_until_removed(session: Session) -> None:
    assert session.responses["hls"][0] == 201
    assert session.hls_playlist.startswith("#EXTM3U") and ".ts" in session.hls_playlist
    assert session.hls_viewers == 1  # this test's player
    assert session.responses["remove-hls"][0] == 200
    assert session.hls_after_remove == 404


def test_an_added_destination_is_counted_for_listeners_until_removed(session: Session) -> None:
    assert session.responses["add-radio"][0] == 201
    assert session.responses["remove-radio"][0] == 200
    # Not counted before it was added, polled once added (nobody listens: 0), gone after.
    assert session.icecast_listeners == [None, 0, None]


def test_pause_holds_a_destination_and_resume_brings_it_back(session: Session) -> None:
    assert session.responses["pause"][0] == 200
    assert session.seen_states["second-while-paused"] == "paused"
    paused = 'jalsa_relay_state{destination="second",platform="custom",state="paused"} 1.0'
    assert paused in session.metrics_paused
    assert 'jalsa_relay_up{destination="second",platform="custom"} 0.0' in session.metrics_paused
    assert session.responses["resume"][0] == 200
    # nginx records each publish afresh: the file holds what came after the resume.
    probe = ffprobe(session.nginx.recording(SECOND_KEY))
    assert probe.video_seconds >= session.stopped_at - session.resumed_at - 1.5
    assert probe.keyframe_times[0] == probe.video_times[0]


def test_the_untouched_destination_never_noticed(session: Session) -> None:
    assert session.exit_code == 0, session.run.logs[-3000:]
    path = session.nginx.recording(MAIN_KEY)
    probe = ffprobe(path)
    assert probe.video_seconds >= session.stopped_at - session.ready_at - 1.5
    assert probe.largest_video_gap <= 0.2
    assert decode_errors(path) == ""


def test_keys_never_leak_through_the_control_api(session: Session) -> None:
    text = session.run.logs + json.dumps(session.responses) + session.metrics_paused
    for key in (MAIN_KEY, SECOND_KEY, ADDED_KEY, ICECAST_PASSWORD):
        assert key not in text
