"""A lost voice packet costs its own 60 ms, not a wait for 16 more (aiortc's audio buffer)."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.speakers.voice_buffer import VoiceJitterBuffer, holes_to_skip


def _packet(seq: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=seq % 65536, timestamp=seq * 2880)
    packet._data = bytes([seq % 256])  # type: ignore[attr-defined]  # what the buffer joins
    return packet


def _play(buffer: JitterBuffer, sequence: list[int]) -> list[tuple[int, int]]:
    """(arrival index, seq) of each frame the buffer hands out."""
    out = []
    for index, seq in enumerate(sequence):
        _, frame = buffer.add(_packet(seq))
        if frame is not None:
            out.append((index, frame.timestamp // 2880))
    return out


def test_holes_to_skip() -> None:
    assert holes_to_skip([], 4) == 0
    assert holes_to_skip([True, False, True], 4) == 0  # the origin is there
    assert holes_to_skip([False, True, True, True], 4) == 0  # not patient enough yet
    assert holes_to_skip([False, False, True, True, False, True, True], 4) == 2
    assert holes_to_skip([False] * 16, 4) == 0


def test_a_lost_packet_is_given_up_on_after_the_prefetch_not_after_16() -> None:
    sequence = [s for s in range(100, 160) if s != 120]  # packet 120 lost for good
    aiortc_out = _play(JitterBuffer(16, prefetch=4), sequence)
    voice_out = _play(VoiceJitterBuffer(16), sequence)
    # jalsa's hands out every packet but the lost one, in order.
    assert [s for _, s in voice_out] == [s for s in range(100, 156) if s != 120]
    # aiortc's throws away the four before the hole too (its smart_remove makes room).
    assert [s for _, s in aiortc_out][:20] == [*range(100, 116), *range(121, 125)]
    # aiortc holds 121 until 16 packets past the hole have come; jalsa's after the prefetch.
    arrival_121 = sequence.index(121)
    voice_121 = next(i for i, s in voice_out if s == 121)
    aiortc_121 = next(i for i, s in aiortc_out if s == 121)
    assert voice_121 - arrival_121 <= 4
    assert aiortc_121 - arrival_121 >= 14
    # And jalsa's stays as late as before the loss: no lasting delay.
    late = [i - sequence.index(s) for i, s in voice_out]
    assert max(late[30:]) == max(late[:15])
    assert VoiceJitterBuffer(16).skipped == 0


@given(st.sets(st.integers(min_value=1, max_value=199), max_size=60))
def test_every_packet_that_came_is_played_once_in_order(lost: set[int]) -> None:
    sequence = [s for s in range(65500, 65500 + 200) if s - 65500 not in lost]  # wraps
    buffer = VoiceJitterBuffer(16)
    played = [s for _, s in _play(buffer, sequence)]
    assert played == sorted(played)
    assert len(set(played)) == len(played)
    assert set(played) <= set(sequence)
    assert len(played) >= len(sequence) - 16  # the newest few may still wait
