"""A recorded message uploaded over HTTP (resumed after a 'drop') goes on air only once an
operator approves it: the speaker's slot before the approval shows the slate, the one
after it their message (the recording shows which). With ``approve_messages = "auto"``
an upload is approved at once, stays approved across a restart, and a delete takes it
off the next slot. The operator's API: 401 before any body is read, 404, 413, the
preview with its type and ranges."""

from __future__ import annotations

import json
import shutil
import signal
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import centre_colour, dominant, ffprobe

pytestmark = pytest.mark.media

CHUNK = {"Content-Type": "application/offset+octet-stream"}


def _request(
    url: str, method: str, data: bytes | None = None, **headers: str
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _upload(link: str, base: str, data: bytes) -> Message:
    """The whole file in one chunk; the answer's headers."""
    status, headers, _ = _request(
        link + "/message", "POST", b"", **{"Upload-Length": str(len(data)), "Upload-Name": "m.mp4"}
    )
    assert status == 201
    status, headers, _ = _request(
        base + headers["Location"], "PATCH", data, **CHUNK, **{"Upload-Offset": "0"}
    )
    assert (status, headers.get("Upload-Result")) == (204, "accepted")
    return headers


class Operator:
    def __init__(self, run: JalsaRun) -> None:
        self.base = f"http://127.0.0.1:{run.http_port}"
        self.auth = {"Authorization": f"Bearer {run.token()}"}
        self.run = run

    def call(self, method: str, path: str, data: bytes | None = None) -> tuple[int, Any]:
        status, _, body = _request(self.base + path, method, data, **self.auth)
        return status, json.loads(body) if body else None

    def messages(self) -> list[dict[str, Any]]:
        status, body = self.call("GET", "/api/messages")
        assert status == 200, body
        return list(body["messages"])

    def on_air(self) -> tuple[str | None, str]:
        """The speaker of the item on air, and what shows (speaker, fallback or slate)."""
        state = self.call("GET", "/api/state")[1]
        current = state["current"]
        return (current["speaker"] if current else None), state["on_air_kind"]


def test_a_message_goes_on_air_only_once_approved(clips: Path, tmp_path: Path) -> None:
    host, guest = 8, 4
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Upload Test",
            program=program(video_bitrate_kbps=300),
            speakers=[speaker("host", source="testsrc"), speaker("guest")],
            rundown=[
                slot("host", f"{host}s"),
                slot("guest", f"{guest}s"),
                slot("host", f"{host}s"),
                slot("guest", f"{guest}s"),
            ],
            destinations=[{"name": "recording", "platform": "custom", "url": "out.mkv"}],
        )
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()
        (link,) = run.links().values()
        base = f"http://127.0.0.1:{run.http_port}"
        # Refusals first: too large, and a file that is not media.
        status, _, text = _request(link + "/message", "POST", b"", **{"Upload-Length": str(10**10)})
        assert status == 413 and b"larger than" in text
        status, headers, _ = _request(link + "/message", "POST", b"", **{"Upload-Length": "5"})
        junk = base + headers["Location"]
        status, _, text = _request(junk, "PATCH", b"hello", **CHUNK, **{"Upload-Offset": "0"})
        assert status == 422 and b"not accepted" in text

        data = (clips / "red.mp4").read_bytes()
        status, headers, _ = _request(
            link + "/message",
            "POST",
            b"",
            **{"Upload-Length": str(len(data)), "Upload-Name": "red.mp4"},
        )
        assert status == 201
        location = base + headers["Location"]
        half = len(data) // 2
        status, headers, _ = _request(
            location, "PATCH", data[:half], **CHUNK, **{"Upload-Offset": "0"}
        )
        assert (status, headers["Upload-Offset"]) == (204, str(half))
        # The connection "dropped" after the first chunk landed; the client retries it.
        status, headers, _ = _request(
            location, "PATCH", data[:half], **CHUNK, **{"Upload-Offset": "0"}
        )
        assert (status, headers["Upload-Offset"]) == (409, str(half))
        status, headers, _ = _request(location, "HEAD")
        assert (status, headers["Upload-Offset"]) == (200, str(half))
        status, headers, _ = _request(
            location, "PATCH", data[half:], **CHUNK, **{"Upload-Offset": str(half)}
        )
        assert (status, headers.get("Upload-Result")) == (204, "accepted")
        assert headers["Message-Status"] == "pending"
        status, _, mine = _request(link + "/message", "GET")
        assert status == 200 and json.loads(mine)["pending"] is not None

        operator = Operator(run)
        (message,) = operator.messages()
        assert (message["speaker"], message["status"], message["size"]) == (
            "guest",
            "pending",
            len(data),
        )
        assert message["duration"] == pytest.approx(8, abs=0.3) and message["uploaded_at"] > 0
        path = f"/api/messages/{message['id']}"
        # Operators only, checked before any body is read; unknown ids are 404.
        for method, url, body in [
            ("GET", "/api/messages", None),
            ("GET", path + "/media", None),
            ("POST", path + "/approve", b"x" * 100_000),
            ("DELETE", path, None),
        ]:
            assert _request(base + url, method, body)[0] == 401, url
        for method, url in [("GET", "/media"), ("POST", "/approve"), ("DELETE", "")]:
            assert operator.call(method, "/api/messages/AAAAAAAAAAAAAAAA" + url)[0] == 404
        assert operator.call("POST", path + "/approve", b"{" * 70_000)[0] == 413
        # The preview: the file itself, its type, and ranges for the player.
        status, headers, media = _request(base + path + "/media", "GET", **operator.auth)
        assert (status, headers["Content-Type"], media) == (200, "video/mp4", data)
        ranged = {**operator.auth, "Range": "bytes=0-99"}
        status, headers, media = _request(base + path + "/media", "GET", **ranged)
        assert (status, media) == (206, data[:100])

        # The guest's first slot: the pending message is not used.
        # (the state names the item a tick before the picture follows: wait for both)
        run.wait_for(lambda: operator.on_air() == ("guest", "slate"), host + 10, "the guest's slot")
        status, body = operator.call("POST", path + "/approve")
        assert status == 200 and body["message"]["status"] == "approved", body
        assert operator.messages()[0]["status"] == "approved"
        # Their next slot plays it.
        run.wait_for(
            lambda: operator.on_air() == ("guest", "fallback"),
            guest + host + 10,
            "the approved message on air",
        )
        assert run.metric("jalsa_on_air", speaker="guest") == 1
        assert run.metric("jalsa_speaker_connected", speaker="guest") == 0
        assert run.wait(guest + 20) == 0
        assert (link.rsplit("/", 1)[1]) not in run.logs
    recording = tmp_path / "out.mkv"
    start = ffprobe(recording).video_times[0]
    assert dominant(centre_colour(recording, start + host + guest / 2)) != "red"
    assert dominant(centre_colour(recording, start + 2 * host + guest * 1.5)) == "red"


def test_auto_approval_a_restart_and_a_delete(clips: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    rundown = [slot("host", "6s"), slot("guest", "3s"), slot("host", "5s"), slot("guest", "3s")]
    event.write_text(
        event_toml(
            "Auto Approval",
            event={"approve_messages": "auto"},
            program=program(video_bitrate_kbps=300),
            speakers=[speaker("host", source="testsrc"), speaker("guest")],
            rundown=rundown,
            destinations=[{"name": "recording", "platform": "custom", "url": "out.mkv"}],
        )
    )
    state = tmp_path / "state"
    with JalsaRun(event, state) as first:
        first.wait_ready()
        (link,) = first.links().values()
        base = f"http://127.0.0.1:{first.http_port}"
        headers = _upload(link, base, (clips / "red.mp4").read_bytes())
        assert headers["Message-Status"] == "approved"
        (message,) = Operator(first).messages()
        assert message["status"] == "approved"
        assert first.stop(signal.SIGTERM)[0] == 0

    # The messages of the stopped jalsa in a new state dir: this run starts the rundown
    # over (with the same state dir it would resume from the journal, mid-rundown).
    again = tmp_path / "state-again"
    shutil.copytree(state / "messages", again / "messages")
    with JalsaRun(event, again) as second:
        second.wait_ready()
        operator = Operator(second)
        assert operator.messages() == [message]  # kept, still approved
        second.wait_for(
            lambda: operator.on_air() == ("guest", "fallback"), 20, "the message from before"
        )
        status, body = operator.call("DELETE", f"/api/messages/{message['id']}")
        assert status == 200 and body["was_fallback"] is True, body
        assert operator.messages() == []
        assert not any((again / "messages").glob(message["id"] + ".*"))
        second.wait_for(lambda: operator.on_air()[0] == "host", 10, "the host again")
        second.wait_for(
            lambda: operator.on_air() == ("guest", "slate"), 10, "the guest's next slot"
        )
        assert second.wait(20) == 0
    recording = tmp_path / "out-1.mkv"
    start = ffprobe(recording).video_times[0]
    assert dominant(centre_colour(recording, start + 6 + 1.5)) == "red"
    assert dominant(centre_colour(recording, start + 6 + 3 + 5 + 1.5)) != "red"
