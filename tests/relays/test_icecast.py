"""The Icecast source protocol: the request, and every kind of answer. No sockets."""

from __future__ import annotations

import base64

import pytest

from relays.errors import ProtocolError, PublishRefused
from relays.icecast import IcecastSourceSession, icecast_target

PASSWORD = "s3cret-source-pw"


def session() -> IcecastSourceSession:
    target = icecast_target(f"icecast://source:{PASSWORD}@radio.example:8001/live.aac")
    return IcecastSourceSession(target, name="Jalsa audio")


def test_the_request_is_a_put_with_basic_auth_and_the_stream_type() -> None:
    s = session()
    s.initiate()
    head = s.data_to_send().decode()
    assert head.startswith("PUT /live.aac HTTP/1.1\r\n")
    assert head.endswith("\r\n\r\n")
    lines = head.split("\r\n")
    auth = base64.b64encode(f"source:{PASSWORD}".encode()).decode()
    for line in (
        "Host: radio.example:8001",
        f"Authorization: Basic {auth}",
        "Content-Type: audio/aac",
        "Ice-Name: Jalsa audio",
        "Expect: 100-continue",
    ):
        assert line in lines
    assert PASSWORD not in repr(s.target)


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\n"]
)
def test_continue_or_ok_means_live(answer: bytes) -> None:
    s = session()
    s.initiate()
    with pytest.raises(RuntimeError):
        s.send_media(b"too early")
    for i in range(len(answer)):  # byte by byte: any split works
        s.receive_data(answer[i : i + 1])
    assert s.live
    s.data_to_send()
    s.send_media(b"\xff\xf1adts")
    assert s.data_to_send() == b"\xff\xf1adts"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            b"HTTP/1.0 401 Authentication Required\r\n\r\nYou need to authenticate\r\n",
            "401.*password",
        ),
        (
            b"HTTP/1.0 403 Forbidden\r\nConnection: Close\r\n\r\nMountpoint in use",
            r"403 Forbidden \(Mountpoint in use\)",
        ),
    ],
)
def test_refusals_say_why(answer: bytes, expected: str) -> None:
    s = session()
    s.initiate()
    with pytest.raises(PublishRefused, match=expected) as caught:
        s.receive_data(answer)
    assert PASSWORD not in str(caught.value)


def test_a_server_that_is_not_http_is_named() -> None:
    s = session()
    s.initiate()
    with pytest.raises(ProtocolError, match="HTTP"):
        s.receive_data(b"\x03\x00\x00\x00")


@pytest.mark.parametrize(
    "url", ["http://h/m", "icecast://h:8000/m", "icecast://source:pw@h:8000/", "icecast://:pw@/m"]
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        icecast_target(url)
