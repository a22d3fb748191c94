from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.program.audio import SAMPLE_RATE, AudioBuffer


def ramp(start: int, count: int) -> np.ndarray:
    values = np.arange(start, start + count, dtype=np.float32) / 1e6
    return np.vstack((values, -values))


def test_reads_what_was_written_in_order() -> None:
    buffer = AudioBuffer()
    buffer.write(ramp(0, 1000))
    buffer.write(ramp(1000, 1000))
    out = buffer.read(1500)
    assert np.array_equal(out, ramp(0, 1500))
    assert np.array_equal(buffer.read(500), ramp(1500, 500))


def test_a_short_read_is_padded_with_silence() -> None:
    buffer = AudioBuffer()
    buffer.write(ramp(0, 100))
    out = buffer.read(300)
    assert np.array_equal(out[:, :100], ramp(0, 100))
    assert not out[:, 100:].any()
    assert buffer.buffered_seconds == 0


def test_the_oldest_samples_go_when_the_writer_runs_ahead() -> None:
    buffer = AudioBuffer(max_seconds=0.1)
    limit = SAMPLE_RATE // 10
    buffer.write(ramp(0, limit * 3))
    assert buffer.buffered_seconds == 0.1
    assert np.array_equal(buffer.read(limit), ramp(limit * 2, limit))  # the newest stayed
    assert buffer.buffered_seconds == 0


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3000)), max_size=40))
def test_never_more_than_the_bound_and_reads_always_full_length(
    ops: list[tuple[bool, int]],
) -> None:
    buffer = AudioBuffer(max_seconds=0.05)
    written = 0
    for is_write, count in ops:
        if is_write:
            buffer.write(ramp(written, count))
            written += count
        else:
            assert buffer.read(count).shape == (2, count)
        assert buffer.buffered_seconds <= 0.05 + 1e-9
