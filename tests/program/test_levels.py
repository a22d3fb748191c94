"""Level maths: dBFS, and the rolling one-second peak and RMS of a LevelMeter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.program.audio import SAMPLE_RATE
from orchestrator.program.levels import FLOOR_DBFS, LevelMeter, dbfs, peak_and_power


def sine(amplitude: float, count: int, hz: float = 440.0, start: int = 0) -> np.ndarray:
    n = np.arange(start, start + count)
    tone = (amplitude * np.sin(2 * math.pi * hz * n / SAMPLE_RATE)).astype(np.float32)
    return np.vstack((tone, tone))


@pytest.mark.parametrize(
    ("amplitude", "expected"),
    [(1.0, 0.0), (0.5, -6.0), (0.1, -20.0), (0.125, -18.1), (1e-5, -100.0), (2.0, 6.0)],
)
def test_dbfs(amplitude: float, expected: float) -> None:
    assert dbfs(amplitude) == expected


@pytest.mark.parametrize("amplitude", [0.0, -1.0, math.nan, 1e-300])
def test_silence_and_nonsense_read_the_floor_never_minus_infinity(amplitude: float) -> None:
    assert dbfs(amplitude) == FLOOR_DBFS == -100.0


@given(st.floats(min_value=1e-12, max_value=10.0))
def test_dbfs_is_monotonic_and_bounded(amplitude: float) -> None:
    level = dbfs(amplitude)
    assert FLOOR_DBFS <= level <= 20.0
    assert dbfs(amplitude * 1.1) >= level


def test_peak_and_power_of_floats_and_ints() -> None:
    block = np.array([[0.5, -0.75], [0.25, 0.0]], dtype=np.float32)
    peak, power = peak_and_power(block)
    assert peak == 0.75
    assert power == pytest.approx(0.25 + 0.5625 + 0.0625)
    ints = np.array([[-32768, 100, 32767]], dtype=np.int16)  # packed s16, no overflow
    peak, power = peak_and_power(ints)
    assert peak == 32768
    assert power == pytest.approx(32768.0**2 + 100.0**2 + 32767.0**2)
    assert peak_and_power(np.zeros((2, 0), dtype=np.float32)) == (0.0, 0.0)


def test_a_sine_reads_its_peak_and_rms() -> None:
    meter = LevelMeter()
    for block in range(30):  # 1 s in 20 ms blocks
        meter.add(sine(0.5, 960, start=block * 960))
    assert meter.levels.peak_dbfs == pytest.approx(-6.0, abs=0.1)
    assert meter.levels.rms_dbfs == pytest.approx(-9.0, abs=0.1)  # peak - 3 dB


def test_the_window_is_the_last_second() -> None:
    meter = LevelMeter()
    meter.add(sine(0.9, 960))
    assert meter.levels.peak_dbfs == pytest.approx(-0.9, abs=0.1)
    quiet = 0
    while meter.levels.peak_dbfs > -30:
        meter.add(sine(0.01, 960))
        quiet += 960
        assert quiet <= SAMPLE_RATE, "the loud block outlived its second"
    assert quiet >= SAMPLE_RATE - 960  # ... but not before its second was up
    assert meter.levels.peak_dbfs == pytest.approx(-40.0, abs=0.1)
    assert meter.levels.rms_dbfs == pytest.approx(-43.0, abs=0.2)


def test_silence_reads_the_floor_and_reset_forgets() -> None:
    meter = LevelMeter()
    meter.add(np.zeros((2, 1600), dtype=np.float32))
    assert (meter.levels.peak_dbfs, meter.levels.rms_dbfs) == (-100.0, -100.0)
    meter.add(sine(0.5, 1600))
    assert meter.levels.peak_dbfs > -7
    meter.reset()
    assert meter.levels.peak_dbfs == -100.0


def test_int16_blocks_of_another_rate() -> None:
    """A browser's packed s16 frames, metered without resampling: full scale 32768, and
    the block's duration given in seconds."""
    meter = LevelMeter()
    tone = (16384 * np.sin(2 * math.pi * 440 * np.arange(441) / 44100)).astype(np.int16)
    packed = np.repeat(tone, 2).reshape(1, -1)  # L R L R ...
    for _ in range(100):  # 1 s of 10 ms frames at 44.1 kHz
        meter.add(packed, seconds=441 / 44100, full_scale=32768.0)
    assert meter.levels.peak_dbfs == pytest.approx(-6.0, abs=0.1)
    assert meter.levels.rms_dbfs == pytest.approx(-9.0, abs=0.1)
