"""A recorded message uploaded over HTTP (resumed after a 'drop') covers the slot of a
speaker who never connects: jalsa_on_air shows them, the recording shows their clip."""

from __future__ import annotations

import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import centre_colour, dominant, ffprobe

pytestmark = pytest.mark.media

HOST_SECONDS, GUEST_SECONDS = 8, 5


def _request(
    url: str, method: str, data: bytes | None = None, **headers: str
) -> tuple[int, Message, str]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_an_uploaded_message_covers_the_slot(clips: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Upload Test",
            program=program(video_bitrate_kbps=300),
            speakers=[speaker("host", source="testsrc"), speaker("guest")],
            rundown=[slot("host", f"{HOST_SECONDS}s"), slot("guest", f"{GUEST_SECONDS}s")],
            destinations=[{"name": "recording", "platform": "custom", "url": "out.mkv"}],
        )
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()
        (link,) = run.links().values()
        base = f"http://127.0.0.1:{run.http_port}"
        # Refusals first: too large, and a file that is not media.
        status, _, text = _request(link + "/message", "POST", b"", **{"Upload-Length": str(10**10)})
        assert status == 413 and "larger than" in text
        status, headers, _ = _request(link + "/message", "POST", b"", **{"Upload-Length": "5"})
        junk = base + headers["Location"]
        status, _, text = _request(
            junk,
            "PATCH",
            b"hello",
            **{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert status == 422 and "not accepted" in text

        data = (clips / "red.mp4").read_bytes()
        status, headers, _ = _request(
            link + "/message",
            "POST",
            b"",
            **{"Upload-Length": str(len(data)), "Upload-Name": "red.mp4"},
        )
        assert status == 201
        location = base + headers["Location"]
        chunk = {"Content-Type": "application/offset+octet-stream"}
        half = len(data) // 2
        status, headers, _ = _request(
            location, "PATCH", data[:half], **chunk, **{"Upload-Offset": "0"}
        )
        assert (status, headers["Upload-Offset"]) == (204, str(half))
        # The connection "dropped" after the first chunk landed; the client retries it.
        status, headers, _ = _request(
            location, "PATCH", data[:half], **chunk, **{"Upload-Offset": "0"}
        )
        assert (status, headers["Upload-Offset"]) == (409, str(half))
        status, headers, _ = _request(location, "HEAD")
        assert (status, headers["Upload-Offset"]) == (200, str(half))
        status, headers, _ = _request(
            location, "PATCH", data[half:], **chunk, **{"Upload-Offset": str(half)}
        )
        assert (status, headers.get("Upload-Result")) == (204, "accepted")

        run.wait_for(
            lambda: run.metric("jalsa_on_air", speaker="guest") == 1,
            HOST_SECONDS + 5,
            "the uploaded message on air",
        )
        assert run.metric("jalsa_speaker_connected", speaker="guest") == 0
        assert run.wait(GUEST_SECONDS + 20) == 0
        assert (link.rsplit("/", 1)[1]) not in run.logs
    recording = tmp_path / "out.mkv"
    start = ffprobe(recording).video_times[0]
    assert dominant(centre_colour(recording, start + HOST_SECONDS + GUEST_SECONDS / 2)) == "red"
