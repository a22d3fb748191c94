"""Audio levels in dBFS: a rolling peak and RMS over the last second, block by block.

One thread feeds a :class:`LevelMeter` (the program thread with the mixed program, a
speaker's worker with their input); any thread reads :attr:`LevelMeter.levels`, one
immutable :class:`Levels` replaced whole after each block, so readers never lock and
always see a peak and an RMS of the same moment.

dBFS here: 0 dBFS is a sample of magnitude 1.0 (full scale of the float program audio).
The peak is the largest sample magnitude in the window; the RMS is the root mean square
of every sample of every channel in it (a full-scale sine reads -3 dBFS RMS, 0 dBFS
peak). Silence, and anything below ``FLOOR_DBFS``, reads ``FLOOR_DBFS`` (never -inf).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from orchestrator.program.audio import SAMPLE_RATE

FLOOR_DBFS: Final = -100.0
WINDOW_SECONDS: Final = 1.0


def dbfs(amplitude: float) -> float:
    """``amplitude`` (1.0 = full scale) in dBFS, at least ``FLOOR_DBFS``; 0.1 dB steps."""
    if not amplitude > 0.0:  # also NaN
        return FLOOR_DBFS
    return max(FLOOR_DBFS, round(20.0 * math.log10(amplitude), 1))


def peak_and_power(samples: npt.NDArray[np.generic]) -> tuple[float, float]:
    """The largest magnitude and the sum of squares of ``samples`` (any shape, float or
    int: ints in their own units)."""
    if samples.size == 0:
        return 0.0, 0.0
    peak = max(float(samples.max()), -float(samples.min()))
    if samples.dtype.kind == "f":
        flat = samples.reshape(-1)
        power = float(np.dot(flat, flat))
    else:
        power = float(np.square(samples, dtype=np.float64).sum())
    return peak, power


@dataclass(frozen=True, slots=True)
class Levels:
    peak_dbfs: float = FLOOR_DBFS
    rms_dbfs: float = FLOOR_DBFS


SILENT: Final = Levels()


class LevelMeter:
    """The peak and RMS of the last ``window`` seconds of audio, fed a block at a time.

    Cost per block: one pass for the peak, one dot product for the power, and a walk
    over the window's blocks (about 50 of 20 ms); no lock. One writer thread; any reader.
    """

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self._window = window
        self._blocks: deque[tuple[float, float, float, int]] = deque()  # s, peak, power, n
        self._seconds = 0.0
        self.levels: Levels = SILENT

    def add(
        self,
        samples: npt.NDArray[np.generic],
        *,
        seconds: float | None = None,
        full_scale: float = 1.0,
    ) -> Levels:
        """Take one block: ``samples`` in any layout (planar ``(channels, n)`` at the
        program's rate unless ``seconds`` says how long it lasts), ``full_scale`` the
        value of 0 dBFS (32768 for int16)."""
        if seconds is None:
            seconds = samples.shape[-1] / SAMPLE_RATE if samples.ndim else 0.0
        peak, power = peak_and_power(samples)
        blocks = self._blocks
        blocks.append((seconds, peak / full_scale, power / (full_scale * full_scale), samples.size))
        self._seconds += seconds
        # Keep just enough blocks to cover the window.
        while len(blocks) > 1 and self._seconds - blocks[0][0] >= self._window:
            self._seconds -= blocks.popleft()[0]
        top = max(b[1] for b in blocks)
        count = sum(b[3] for b in blocks)
        mean_square = sum(b[2] for b in blocks) / count if count else 0.0
        levels = Levels(dbfs(top), dbfs(math.sqrt(mean_square)))
        self.levels = levels
        return levels

    def reset(self) -> None:
        """Forget the window (a new speaker, a new session): reads silence until fed."""
        self._blocks.clear()
        self._seconds = 0.0
        self.levels = SILENT
