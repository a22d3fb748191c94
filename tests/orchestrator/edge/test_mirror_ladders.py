"""The edge's ladders from a real contribution: jalsa's program encoder writes FLV, the
edge's demuxer reads it, :class:`MirrorLadders` decodes it and encodes the renditions."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from media import ffprobe
from waiting import wait_for

from orchestrator.edge.intake import demux
from orchestrator.edge.mirror_ladders import DECODE_BACKLOG, MirrorLadders
from orchestrator.edge.slate_loop import studio_format
from orchestrator.event import DestinationSpec, ProgramSpec
from orchestrator.event.ladder_spec import LadderSpec
from orchestrator.program.encoder import ProgramEncoder
from orchestrator.program.ladder import RenditionSnapshot
from relays.packet import EncodedPacket

pytestmark = pytest.mark.media
FPS, FRAMES = 15, 75  # 5 s: keyframes at 0, 2 and 4 s
MIRROR = DestinationSpec(
    "mirror", "custom", "hls", "hls", ladder=LadderSpec(low_height=144, audio_kbps=32)
)


def contribution_flv(path: Path) -> Path:
    """5 s of jalsa's program (320x180, 15 fps) as the FLV a studio sends."""
    encoder = ProgramEncoder(ProgramSpec(width=320, height=180, fps=FPS, preset="ultrafast"))
    packets: list[EncodedPacket] = []
    for index in range(FRAMES):
        picture = av.VideoFrame.from_ndarray(
            np.full((180, 320, 3), index * 3 % 255, dtype=np.uint8), format="rgb24"
        ).reformat(format="yuv420p")
        packets += encoder.encode_video(picture, index, index % (2 * FPS) == 0)
        packets += encoder.encode_audio(np.zeros((2, 48_000 // FPS), dtype=np.float32))
    packets += encoder.flush()
    with av.open(str(path), "w", format="flv") as out:
        video = out.add_stream_from_template(encoder.video_stream)
        audio = out.add_stream_from_template(encoder.audio_stream)
        for p in sorted(packets, key=lambda p: p.seconds):
            packet = av.Packet(p.data)
            packet.pts, packet.dts, packet.time_base = p.pts, p.dts, p.time_base
            packet.is_keyframe = p.keyframe
            packet.stream = video if p.kind == "video" else audio
            out.mux(packet)
    encoder.close()
    return path


def demuxed(path: Path) -> tuple[av.container.InputContainer, list[EncodedPacket]]:
    got: list[EncodedPacket] = []
    containers: list[av.container.InputContainer] = []

    def publish(container: av.container.InputContainer, packets: list[EncodedPacket]) -> None:
        containers[:] = [container]
        got.extend(packets)

    demux(io.BytesIO(path.read_bytes()), publish)  # type: ignore[arg-type]  # reads like the pipe
    return containers[0], got


def _low(ladders: MirrorLadders) -> RenditionSnapshot:
    return ladders.snapshots()["mirror"][0]


def test_the_ladder_is_made_from_the_contribution(tmp_path: Path) -> None:
    container, packets = demuxed(contribution_flv(tmp_path / "contribution.flv"))
    video, audio = container.streams.video[0], container.streams.audio[0]
    ladders = MirrorLadders([MIRROR], video, audio, studio_format(video, audio), tmp_path)
    assert ladders.active
    ladders.start()
    # All at once, as a studio draining its queue sends them: the burst waits in the
    # decode queue, and no rendition drops a picture.
    ladders.feed(packets)
    ladders.close(10.0)
    renditions = {r.name: r for r in ladders.snapshots()["mirror"]}
    assert renditions["low"].frames == FRAMES and renditions["low"].dropped_frames == 0
    assert renditions["low"].error is None
    assert renditions["audio"].sent_bytes > 0 and renditions["audio"].error is None
    folder = tmp_path / "hls" / "mirror"
    assert "RESOLUTION=256x144" in (folder / "index.m3u8").read_text()
    low = ffprobe(folder / "low.m3u8")
    assert (low.width, low.height) == (256, 144)
    # Forced where the contribution has its keyframes, and nowhere else (MPEG-TS starts
    # its clock at 1.4 s).
    first = min(low.video_times)
    assert [round((t - first) * FPS) for t in low.keyframe_times] == [0, 30, 60]
    assert "#EXT-X-ENDLIST" in (folder / "audio.m3u8").read_text()


def test_feeding_never_blocks_and_a_dropped_picture_waits_for_a_keyframe(
    tmp_path: Path,
) -> None:
    container, packets = demuxed(contribution_flv(tmp_path / "contribution.flv"))
    video, audio = container.streams.video[0], container.streams.audio[0]
    ladders = MirrorLadders([MIRROR], video, audio, studio_format(video, audio), tmp_path)
    pictures = [p for p in packets if p.kind == "video"]
    # Not started: nothing is taken off the queue, so it fills and then drops.
    for _ in range(DECODE_BACKLOG // len(pictures) + 2):
        ladders.feed(pictures)
    assert ladders.dropped > 0
    queued: list[EncodedPacket] = []
    while not ladders._queue.empty():
        queued.append(ladders._queue.get_nowait())  # type: ignore[arg-type]
    ladders.feed(pictures[1:])  # after the drop, no picture but from a keyframe on
    assert ladders._queue.get_nowait() is pictures[2 * FPS]
    assert queued[0] is pictures[0] and len(queued) == DECODE_BACKLOG


def test_no_ladder_for_a_mirror_without_one(tmp_path: Path) -> None:
    container, _ = demuxed(contribution_flv(tmp_path / "contribution.flv"))
    video, audio = container.streams.video[0], container.streams.audio[0]
    plain = DestinationSpec("mirror", "custom", "hls", "hls")
    ladders = MirrorLadders([plain], video, audio, studio_format(video, audio), tmp_path)
    assert not ladders.active and ladders.snapshots() == {}
    ladders.start()
    ladders.close(1.0)  # nothing started, nothing to stop


def test_a_removed_mirror_stops_its_ladder_and_the_others_go_on(tmp_path: Path) -> None:
    container, packets = demuxed(contribution_flv(tmp_path / "contribution.flv"))
    video, audio = container.streams.video[0], container.streams.audio[0]
    other = DestinationSpec("other", "custom", "hls", "hls", ladder=LadderSpec(low_height=0))
    specs = [MIRROR, other]
    ladders = MirrorLadders(specs, video, audio, studio_format(video, audio), tmp_path)
    ladders.start()
    half = len(packets) // 2
    ladders.feed(packets[:half])
    wait_for(lambda: _low(ladders).frames > 10, 10, "the low rendition encoding")
    ladders.remove("mirror", 5.0)
    assert list(ladders.snapshots()) == ["other"]
    assert "#EXT-X-ENDLIST" in (tmp_path / "hls" / "mirror" / "low.m3u8").read_text()
    ladders.feed(packets[half:])
    wait_for(lambda: ladders.snapshots()["other"][0].sent_bytes > 0, 10, "the other mirror")
    ladders.remove("other", 5.0)  # the last one: the decode thread still stops on close
    ladders.close(5.0)
    assert not ladders._thread.is_alive()
