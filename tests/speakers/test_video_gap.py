"""Finding the holes that hold aiortc's video jitter buffer (pure part)."""

from __future__ import annotations

from orchestrator.ingest.video_gap import stalled_packets


def _held(capacity: int, *present: int) -> list[object | None]:
    packets: list[object | None] = [None] * capacity
    for slot in present:
        packets[slot] = "p"
    return packets


def test_everything_up_to_the_last_hole_before_the_newest_packet_is_given_up() -> None:
    assert stalled_packets(_held(8, 5, 6), 3, 8) == 2  # 3, 4 missing: resume at 5
    assert stalled_packets(_held(8, 3, 5, 6), 3, 8) == 2  # 3 held, 4 missing: resume at 5
    assert stalled_packets(_held(8, 3, 5, 7), 3, 8) == 4  # the last hole (6) counts
    assert stalled_packets(_held(8, 1, 2), 7, 8) == 2  # wraps round: 7, 0 missing


def test_no_hole_nothing_to_skip() -> None:
    assert stalled_packets(_held(8, 3, 4, 5), 3, 8) == 0
    assert stalled_packets(_held(8), 2, 8) == 0
