"""The nginx-rtmp sink fixture records what is pushed to it, and stops cleanly."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from nginx_rtmp import NginxRtmp, _alive
from waiting import wait_for

pytestmark = [pytest.mark.media, pytest.mark.timeout(120)]


def push(url: str, seconds: float) -> None:
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
            "-f", "lavfi", "-i", "sine",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac",
            "-f", "flv", url,
        ],
        check=True,
        timeout=60,
    )  # fmt: skip


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration",
         "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def test_rec_app_records_what_was_pushed(tmp_path: Path) -> None:
    with NginxRtmp(tmp_path / "nginx") as nginx:
        pushing = threading.Thread(target=push, args=(nginx.url("rec", "test"), 3))
        pushing.start()
        recording = nginx.recording("test")
        wait_for(lambda: recording.exists() and recording.stat().st_size > 0, 10, "a recording")
        assert not nginx.recorded("test")  # open while its publisher is on
        pushing.join(60)
        # nginx closes a recording a moment after the publisher leaves.
        nginx.wait_recorded("test")
        info = probe(nginx.recording("test"))
        push(nginx.url("live", "other"), 0.5)
        nginx.wait_published("other")
        assert not nginx.recording("other").exists(), "the live app must not record"
        assert "[emerg]" not in nginx.errors()
    codecs = sorted(s["codec_name"] for s in info["streams"])
    assert codecs == ["aac", "h264"]
    assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=0.5)


def test_stop_ends_nginx_and_frees_the_port(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path)
    nginx.start()
    pid = nginx.pid
    assert pid is not None
    assert _alive(pid)
    assert nginx.url("rec", "key") == f"rtmp://127.0.0.1:{nginx.port}/rec/key"
    with pytest.raises(RuntimeError):
        nginx.start()
    nginx.stop()
    assert not _alive(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", nginx.port), timeout=2).close()
    nginx.stop()  # twice is fine


def test_a_taken_port_is_replaced(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        nginx = NginxRtmp(tmp_path)
        nginx.port = squatter.getsockname()[1]
        with nginx:
            assert nginx.port != squatter.getsockname()[1]
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=2):
                pass
