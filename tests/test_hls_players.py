"""The simulated players' judge of "in time" (tests/hls_players.py)."""

from __future__ import annotations

import pytest
from hls_players import _durations, stalled_seconds


def test_a_player_stalls_only_when_a_segment_comes_after_it_is_due() -> None:
    assert stalled_seconds([], 2.0) == 0
    # Segments of 2 s, each 2 s after the one before: never waits.
    assert stalled_seconds([(10.0, 2.0), (12.0, 2.0), (14.5, 2.0)], 2.0) == 0
    # Playing from 12 s (a 2 s buffer), the third is due at 16 and comes at 19.
    assert stalled_seconds([(10.0, 2.0), (12.0, 2.0), (19.0, 2.0)], 2.0) == pytest.approx(3.0)
    # After a stall, playback resumes from that segment's arrival.
    late = [(10.0, 2.0), (17.0, 2.0), (19.0, 2.0), (22.0, 2.0)]
    assert stalled_seconds(late, 2.0) == pytest.approx(3.0 + 1.0)


def test_durations_come_from_extinf() -> None:
    playlist = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\nprogram-7-1.ts\n"
        "#EXTINF:1.960,\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T20:00:00Z\nprogram-7-2.ts\n"
    )
    assert _durations(playlist) == {"program-7-1.ts": 2.0, "program-7-2.ts": 1.96}
    with pytest.raises(ValueError, match="no #EXTINF"):
        _durations("#EXTM3U\nprogram-7-3.ts\n")
