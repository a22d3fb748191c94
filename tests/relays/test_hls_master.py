"""The ladder's master playlist (pure): order, attributes, codec strings from the SPS."""

from __future__ import annotations

import av

from relays.hls_master import Variant, avc_codec, master_playlist


def test_best_rendition_first_with_what_a_player_needs() -> None:
    text = master_playlist(
        [
            Variant("audio.m3u8", 48, "mp4a.40.2"),
            Variant("program.m3u8", 3128, "avc1.640020,mp4a.40.2", 1280, 720, 30),
            Variant("low.m3u8", 488, "avc1.64001e,mp4a.40.2", 640, 360, 30),
        ]
    )
    lines = text.splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert [line for line in lines if not line.startswith("#")] == [
        "program.m3u8",
        "low.m3u8",
        "audio.m3u8",
    ]
    assert (
        lines[-2] == '#EXT-X-STREAM-INF:BANDWIDTH=55200,AVERAGE-BANDWIDTH=48000,CODECS="mp4a.40.2"'
    )
    assert "RESOLUTION=640x360,FRAME-RATE=30.000" in lines[5]


def test_the_codec_string_comes_from_the_encoders_sps() -> None:
    container = av.open("null:", "w", format="null")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
    stream.codec_context.flags |= av.codec.context.Flags.global_header
    stream.options = {"preset": "veryfast"}  # ultrafast would be Constrained Baseline
    container.start_encoding()
    codec = avc_codec(stream.codec_context.extradata)
    container.close()
    assert codec.startswith("avc1.64")  # High profile
    assert avc_codec(bytes([1, 0x4D, 0x40, 0x1F, 0xFF])) == "avc1.4d401f"  # an avcC record
    assert avc_codec(None) == "avc1.64001f"
