"""Audio sample buffers: program audio is 48 kHz stereo float32 planar, (2, n) arrays."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
CHANNELS = 2

Samples = npt.NDArray[np.float32]


def silence(count: int) -> Samples:
    return np.zeros((CHANNELS, count), dtype=np.float32)


class AudioBuffer:
    """A bounded, thread-safe FIFO of program-format audio.

    One decoder thread writes, the program thread reads. When the writer runs ahead
    (a source delivering faster than real time, or the program stalled) the oldest
    samples are dropped, so the delay between a speaker and the program stays under
    ``max_seconds`` and memory stays bounded. A read past what is buffered is padded
    with silence: the program never waits for a source.
    """

    def __init__(self, max_seconds: float = 0.5) -> None:
        self._max = int(max_seconds * SAMPLE_RATE)
        self._chunks: deque[Samples] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def write(self, samples: Samples) -> None:
        if samples.shape[1] == 0:
            return
        with self._lock:
            self._chunks.append(samples)
            self._size += samples.shape[1]
            while self._size > self._max:
                excess = self._size - self._max
                head = self._chunks[0]
                if head.shape[1] <= excess:
                    self._chunks.popleft()
                    self._size -= head.shape[1]
                else:
                    self._chunks[0] = head[:, excess:]
                    self._size -= excess

    def read(self, count: int) -> Samples:
        out = silence(count)
        filled = 0
        with self._lock:
            while filled < count and self._chunks:
                head = self._chunks[0]
                take = min(count - filled, head.shape[1])
                out[:, filled : filled + take] = head[:, :take]
                filled += take
                if take == head.shape[1]:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[:, take:]
                self._size -= take
        return out

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._size = 0

    @property
    def buffered_seconds(self) -> float:
        return self._size / SAMPLE_RATE
