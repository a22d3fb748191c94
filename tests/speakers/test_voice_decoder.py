"""A lost voice packet is rebuilt from the next one's FEC copy (or concealed), never a hole.

Real Opus: packets from libopus's encoder as a browser on a lossy link sends them (60 ms,
voip, in-band FEC, 24 kbit/s mono), decoded by jalsa's decoder and by aiortc's.
"""

from __future__ import annotations

import fractions
import itertools

import av
import numpy as np
import pytest
from aiortc import rtcrtpreceiver
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.speakers.voice_decoder import (
    MAX_GAP_SAMPLES,
    STEP,
    ConcealingOpusDecoder,
    concealment,
    timestamp_gap,
    use_concealing_decoder,
)

RATE = 48000
PACKET = 2880  # 60 ms


def _voice(seconds: float) -> np.ndarray:
    """A voiced sound: a gliding 140 Hz buzz with harmonics, its loudness at syllable rate."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.7 * t)) / RATE
    buzz = sum(np.sin(k * phase) / k for k in range(1, 8))
    shaped = buzz * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    return (shaped / np.abs(shaped).max() * 0.5 * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.bit_rate, encoder.sample_rate = 24000, RATE
    encoder.layout, encoder.format = "mono", "s16"
    encoder.time_base = fractions.Fraction(1, RATE)
    encoder.options = {
        "application": "voip",
        "fec": "1",
        "packet_loss": "20",
        "frame_duration": "60",
    }
    pcm, out = _voice(3.0), []
    for start in range(0, len(pcm) - 959, 960):
        frame = av.AudioFrame.from_ndarray(
            pcm[None, start : start + 960], format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = RATE, start
        out += [bytes(packet) for packet in encoder.encode(frame)]
    assert len(out) == 50
    return out


def _decode(
    decoder: object, packets: list[bytes], lost: set[int], start: int = 1000
) -> list[av.AudioFrame]:
    frames = []
    for index, data in enumerate(packets):
        if index not in lost:
            timestamp = (start + index * PACKET) % (1 << 32)
            frames += decoder.decode(JitterFrame(data, timestamp))  # type: ignore[attr-defined]
    return frames


def _pcm(frames: list[av.AudioFrame]) -> np.ndarray:
    return np.concatenate([frame.to_ndarray().reshape(-1, 2)[:, 0] for frame in frames]).astype(
        float
    )


def test_without_loss_it_decodes_exactly_as_aiortc(packets: list[bytes]) -> None:
    ours, theirs = (
        _decode(ConcealingOpusDecoder(), packets, set()),
        _decode(OpusDecoder(), packets, set()),
    )
    assert np.array_equal(_pcm(ours), _pcm(theirs))
    assert [frame.pts for frame in ours] == [1000 + i * PACKET for i in range(50)]
    assert all(frame.opaque is None for frame in ours)
    assert all(frame.sample_rate == RATE and frame.layout.name == "stereo" for frame in ours)


def test_lost_packets_are_filled_so_the_voice_keeps_its_length(packets: list[bytes]) -> None:
    lost = {10, 20, 21, 30, 31, 32}
    decoder = ConcealingOpusDecoder()
    frames = _decode(decoder, packets, lost)
    assert sum(frame.samples for frame in frames) == 50 * PACKET  # as long as sent
    pts = [frame.pts for frame in frames]
    assert pts == sorted(pts) and all(
        a.pts + a.samples == b.pts for a, b in itertools.pairwise(frames)
    )  # no hole, no overlap
    filled = [frame for frame in frames if frame.opaque is not None]
    assert [(frame.pts - 1000) // PACKET for frame in filled] == sorted(lost)
    assert sum(frame.samples for frame in filled) == len(lost) * PACKET
    # The packet after each lost one carries its copy: the last of each run is FEC.
    assert {(f.pts - 1000) // PACKET for f in filled if f.opaque == "fec"} == {10, 21, 32}


def test_the_fec_copy_is_closer_to_what_was_said_than_concealment(packets: list[bytes]) -> None:
    reference = _pcm(_decode(ConcealingOpusDecoder(), packets, set()))

    def filled(lost: set[int], index: int) -> av.AudioFrame:
        frames = _decode(ConcealingOpusDecoder(), packets, lost)
        (frame,) = [f for f in frames if f.opaque is not None and f.pts == 1000 + index * PACKET]
        return frame

    def error(index: int, frame: av.AudioFrame) -> float:
        """How far a filled frame is from what was said (spectrum; silence: 1.0)."""
        said = np.abs(np.fft.rfft(reference[index * PACKET : (index + 1) * PACKET]))
        heard = np.abs(np.fft.rfft(_pcm([frame])))
        return float(np.linalg.norm(said - heard) / np.linalg.norm(said))

    loud = [
        i for i in range(2, 48) if np.abs(reference[i * PACKET : (i + 1) * PACKET]).max() > 4000
    ]
    rebuilt = 0
    for index in loud:
        fec = filled({index}, index)
        # The same packet concealed: the one after it lost too (its copy gone with it).
        plc = filled({index, index + 1}, index)
        assert plc.opaque == "plc" and error(index, plc) < 1.0  # something, not silence
        if fec.opaque == "fec":  # the packet after it carried a copy
            rebuilt += 1
            assert error(index, fec) < min(0.3, error(index, plc)), index
    assert rebuilt >= 0.8 * len(loud) >= 0.8 * 30


def test_timestamps_wrap_and_a_pause_is_not_concealed(packets: list[bytes]) -> None:
    decoder = ConcealingOpusDecoder()
    frames = _decode(decoder, packets[:10], {5}, start=(1 << 32) - 4 * PACKET)
    assert sum(frame.samples for frame in frames) == 10 * PACKET
    paused = ConcealingOpusDecoder()
    paused.decode(JitterFrame(packets[0], 0))
    after = paused.decode(JitterFrame(packets[1], PACKET + MAX_GAP_SAMPLES + STEP))
    assert [frame.opaque for frame in after] == [None]
    late = PACKET + MAX_GAP_SAMPLES
    assert paused.decode(JitterFrame(packets[2], late)) == []  # its time was already played
    back = (1 << 32) - 10**6  # a stream that restarted further back: decoded anew
    restarted = paused.decode(JitterFrame(packets[3], back))
    assert [(frame.opaque, frame.samples) for frame in restarted] == [(None, PACKET)]
    assert len(paused.decode(JitterFrame(packets[4], back + PACKET))) == 1


def test_a_corrupt_packet_is_concealed_by_the_next_one(packets: list[bytes]) -> None:
    decoder = ConcealingOpusDecoder()
    stream = list(packets[:6])
    stream[3] = b"\xff\xff\xff"  # not Opus
    frames = _decode(decoder, stream, set())
    assert sum(frame.samples for frame in frames) == 6 * PACKET


@given(st.integers(-(10**6), 10**6), st.integers(0, 2**32 - 1))
def test_timestamp_gap(gap: int, expected: int) -> None:
    assert timestamp_gap(expected, (expected + gap) % (1 << 32)) == gap


@given(st.integers(-PACKET, 2 * MAX_GAP_SAMPLES), st.sampled_from([480, 960, 1920, 2880, 5760]))
def test_concealment_fills_the_gap_in_packet_sized_frames(gap: int, previous: int) -> None:
    frames = concealment(gap, previous)
    if gap <= 0 or gap > MAX_GAP_SAMPLES:
        assert frames == []
        return
    assert sum(frames) == gap - gap % STEP
    assert all(0 < size <= previous and size % STEP == 0 for size in frames)
    assert frames[1:] == [previous] * (len(frames) - 1)  # only the first is a remainder


def test_aiortc_receivers_decode_opus_with_it() -> None:
    use_concealing_decoder()
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2)
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000)
    assert isinstance(rtcrtpreceiver.get_decoder(opus), ConcealingOpusDecoder)
    assert not isinstance(rtcrtpreceiver.get_decoder(vp8), ConcealingOpusDecoder)
