"""The RTMP publisher's protocol, driven by a scripted server: no sockets at all."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relays.errors import ProtocolError, PublishRefused
from relays.rtmp import amf0
from relays.rtmp.chunks import (
    ACKNOWLEDGEMENT,
    AUDIO,
    COMMAND_AMF0,
    DATA_AMF0,
    SET_CHUNK_SIZE,
    USER_CONTROL,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkReader,
    ChunkWriter,
    Message,
)
from relays.rtmp.flv import FlvTag
from relays.rtmp.session import HANDSHAKE_SIZE, RtmpPublishSession, rtmp_target

KEY = "secret-stream-key"
SET_PEER_BANDWIDTH = 6  # RTMP 1.0, section 5.4.5: servers send it, the publisher ignores it


class Server:
    """The server's side of the chunk streams, enough to script a conversation."""

    def __init__(self) -> None:
        self.s1 = bytes(range(256)) * 6
        self.reader = ChunkReader()
        self.writer = ChunkWriter()
        self.handshake_seen = b""

    def hello(self) -> bytes:
        return b"\x03" + self.s1 + bytes(HANDSHAKE_SIZE)

    def read(self, data: bytes) -> list[Message]:
        if len(self.handshake_seen) < HANDSHAKE_SIZE:  # C2 first
            need = HANDSHAKE_SIZE - len(self.handshake_seen)
            self.handshake_seen += data[:need]
            data = data[need:]
        return self.reader.feed(data)

    def command(self, name: str, tx: float, *args: amf0.Value, stream: int = 0) -> bytes:
        payload = amf0.encode(name, tx, *args)
        return self.writer.encode(3, Message(COMMAND_AMF0, stream, 0, payload))

    def control(self, type_id: int, payload: bytes) -> bytes:
        return self.writer.encode(2, Message(type_id, 0, 0, payload))


def commands(messages: list[Message]) -> list[list[amf0.Value]]:
    return [amf0.decode_all(m.payload) for m in messages if m.type_id == COMMAND_AMF0]


def session(url: str = "rtmp://ingest.example:1936/live2?backup=1") -> RtmpPublishSession:
    return RtmpPublishSession(rtmp_target(url, KEY), random_bytes=bytes, clock=lambda: 1.0)


def go_live(client: RtmpPublishSession, server: Server) -> list[Message]:
    client.initiate()
    c0c1 = client.data_to_send()
    assert len(c0c1) == 1 + HANDSHAKE_SIZE and c0c1[0] == 3
    client.receive_data(server.hello())
    seen = server.read(client.data_to_send())
    client.receive_data(
        server.control(WINDOW_ACK_SIZE, struct.pack(">I", 2_500_000))
        + server.control(SET_PEER_BANDWIDTH, struct.pack(">IB", 2_500_000, 2))
        + server.control(SET_CHUNK_SIZE, struct.pack(">I", 4096))
        + server.command("_result", 1.0, None, {"code": "NetConnection.Connect.Success"})
    )  # fmt: skip
    seen += server.read(client.data_to_send())
    client.receive_data(server.command("_result", 4.0, None, 1.0))
    seen += server.read(client.data_to_send())
    assert not client.live
    status = {"level": "status", "code": "NetStream.Publish.Start", "description": "go"}
    client.receive_data(server.command("onStatus", 0.0, None, status, stream=1))
    assert client.live
    return seen


def test_the_conversation_of_a_publisher() -> None:
    client, server = session(), Server()
    seen = go_live(client, server)
    assert server.handshake_seen == server.s1  # C2 echoes S1
    assert seen[0].type_id == SET_CHUNK_SIZE and seen[0].payload == struct.pack(">I", 4096)
    names = [c[0] for c in commands(seen)]
    assert names == ["connect", "releaseStream", "FCPublish", "createStream", "publish"]
    connect = commands(seen)[0][2]
    assert connect == {
        "app": "live2?backup=1",
        "type": "nonprivate",
        "flashVer": "FMLE/3.0 (compatible; jalsa)",
        "tcUrl": "rtmp://ingest.example:1936/live2?backup=1",
    }
    publish = next(m for m in seen if m.type_id == COMMAND_AMF0 and b"publish" in m.payload[:12])
    assert publish.stream_id == 1
    assert amf0.decode_all(publish.payload)[3:] == [KEY, "live"]


def test_flv_tags_go_out_as_metadata_audio_and_video_messages() -> None:
    client, server = session(), Server()
    go_live(client, server)
    meta = amf0.encode("onMetaData", amf0.EcmaArray(width=320.0))
    for tag in (FlvTag(18, 0, meta), FlvTag(9, 0, b"\x17\x01video"), FlvTag(8, 23, b"\xafaudio")):
        client.send_tag(tag)
    messages = server.read(client.data_to_send())
    assert [(m.type_id, m.stream_id, m.timestamp) for m in messages] == [
        (DATA_AMF0, 1, 0),
        (VIDEO, 1, 0),
        (AUDIO, 1, 23),
    ]
    assert amf0.decode_all(messages[0].payload) == [
        "@setDataFrame",
        "onMetaData",
        amf0.EcmaArray(width=320.0),
    ]
    assert server.reader.chunk_size == 4096  # set by the client before connect
    client.finish()
    assert [c[0] for c in commands(server.read(client.data_to_send()))] == [
        "FCUnpublish",
        "deleteStream",
    ]


def test_pings_get_pongs_and_received_bytes_are_acknowledged() -> None:
    client, server = session(), Server()
    go_live(client, server)
    client.receive_data(server.control(USER_CONTROL, struct.pack(">HI", 6, 12345)))
    client.receive_data(server.control(WINDOW_ACK_SIZE, struct.pack(">I", 1000)))
    client.receive_data(server.command("onBWDone", 0.0, None))
    client.receive_data(server.writer.encode(3, Message(DATA_AMF0, 0, 0, bytes(1200))))
    replies = server.read(client.data_to_send())
    assert (replies[0].type_id, replies[0].payload) == (USER_CONTROL, struct.pack(">HI", 7, 12345))
    assert [m.type_id for m in replies[1:]] == [ACKNOWLEDGEMENT]


def test_a_server_that_is_not_rtmp_is_named_as_such() -> None:
    client = session()
    client.initiate()
    with pytest.raises(ProtocolError, match="did not answer as RTMP"):
        client.receive_data(b"HTTP/1.1 400 Bad Request\r\n")


def test_a_rejected_connect_carries_the_servers_reason() -> None:
    client, server = session(), Server()
    client.initiate()
    client.data_to_send()
    client.receive_data(server.hello())
    server.read(client.data_to_send())
    info = {"level": "error", "code": "NetConnection.Connect.Rejected", "description": "no app"}
    with pytest.raises(PublishRefused, match=r"rejected connect: .*Rejected \(no app\)"):
        client.receive_data(server.command("_error", 1.0, None, info))


def test_a_bad_stream_name_fails_with_the_description_and_no_key() -> None:
    client, server = session(), Server()
    client.initiate()
    client.receive_data(server.hello())
    client.receive_data(server.command("_result", 1.0, None, {}))
    client.receive_data(server.command("_result", 4.0, None, 1.0))
    status = {
        "level": "error",
        "code": "NetStream.Publish.BadName",
        "description": "Already publishing",
    }
    with pytest.raises(PublishRefused) as caught:
        client.receive_data(server.command("onStatus", 0.0, None, status, stream=1))
    assert "NetStream.Publish.BadName (Already publishing)" in str(caught.value)
    assert KEY not in str(caught.value)


@settings(max_examples=50)
@given(cuts=st.lists(st.integers(1, 400), max_size=20))
def test_the_server_bytes_may_arrive_in_any_pieces(cuts: list[int]) -> None:
    client, server = session(), Server()
    client.initiate()
    status = {"level": "status", "code": "NetStream.Publish.Start"}
    script = (
        server.hello()
        + server.command("_result", 1.0, None, {})
        + server.command("_result", 4.0, None, 1.0)
        + server.command("onStatus", 0.0, None, status, stream=1)
    )
    pos = 0
    for cut in [*cuts, len(script)]:
        client.receive_data(script[pos : pos + cut])
        pos += cut
    assert client.live


@pytest.mark.parametrize(
    ("url", "key", "expected"),
    [
        ("rtmp://a.rtmp.youtube.com/live2", KEY, ("a.rtmp.youtube.com", 1935, False, "live2", KEY)),
        ("rtmps://fb.example:443/rtmp/", KEY, ("fb.example", 443, True, "rtmp", KEY)),
        ("rtmps://host/app/inst", KEY, ("host", 443, True, "app/inst", KEY)),
        ("rtmp://h:1936/live/stream", None, ("h", 1936, False, "live", "stream")),
    ],
)
def test_urls_split_into_app_and_stream(
    url: str, key: str | None, expected: tuple[str, int, bool, str, str]
) -> None:
    t = rtmp_target(url, key)
    assert (t.host, t.port, t.tls, t.app, t.stream) == expected
    assert KEY not in repr(t)


@pytest.mark.parametrize("url", ["http://h/app", "rtmp:///app", "rtmp://h/", "rtmp://h/app"])
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        rtmp_target(url, None)


def test_audio_goes_ahead_of_a_large_video_frame_once_the_stream_has_started() -> None:
    client, server = session(), Server()
    go_live(client, server)
    server.read(client.data_to_send())
    seq = FlvTag(9, 0, b"\x17\x00config")
    first = FlvTag(9, 0, b"\x17\x01" + bytes(3000))
    early_audio = FlvTag(8, 10, b"\xaf\x01early")
    for tag in (seq, first, early_audio):
        client.send_tag(tag)
    # Until the first frame has gone out, audio keeps its place behind it.
    assert client.lane_of("audio") == "video"
    order = [(m.type_id, m.timestamp) for m in server.read(client.data_to_send())]
    assert order == [(VIDEO, 0), (VIDEO, 0), (AUDIO, 10)]
    assert client.lane_of("audio") == "urgent"
    big = FlvTag(9, 33, b"\x27\x01" + bytes(20_000))  # five 4096-byte chunks
    client.send_tag(big)
    wire = client.data_to_send(5000)  # two chunks of the big frame...
    client.send_tag(FlvTag(8, 21, b"\xaf\x01late"))
    wire += client.data_to_send()  # ...then the audio, between its chunks
    client.finish()
    wire += client.data_to_send()
    messages = server.read(wire)
    assert [(m.type_id, m.timestamp) for m in messages[:2]] == [(AUDIO, 21), (VIDEO, 33)]
    assert messages[1].payload == big.data  # reassembled whole around the audio chunk
    # The goodbye comes after every byte of media.
    assert [c[0] for c in commands(messages)] == ["FCUnpublish", "deleteStream"]
