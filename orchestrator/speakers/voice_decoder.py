"""A speaker's voice past a lost packet: libopus's in-band FEC, else its concealment.

jalsa's WHIP answer asks the browser for in-band FEC (``useinbandfec=1``, opus_answer.py):
each Opus packet may carry a low-rate copy (LBRR) of the one before it. aiortc's decoder
(libopus through PyAV) cannot use that copy, nor libopus's packet-loss concealment, so a
lost packet is a hole in the voice. :class:`ConcealingOpusDecoder` calls libopus itself
(ctypes, the library PyAV ships or the system's) and, when the RTP timestamps show that
packets are missing before the one in hand, first fills the gap: libopus's concealment
for all but the last missing packet, then that last one rebuilt from the copy the packet
in hand carries (libopus conceals it, too, when there is no copy). The voice keeps its
length and, from the copy, the lost packet's words; filled frames are marked
(``frame.opaque`` is ``"fec"`` or ``"plc"``) so that jalsa counts them per speaker and
buffers them only while it has room (orchestrator/ingest/webrtc.py: they come a few
packets after their moment, when the jitter buffer gave up on the hole).

A gap longer than :data:`MAX_GAP_SAMPLES` is not concealed (a stream that paused, not
loss), and a packet from further back than that is a stream that restarted: either is
decoded as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fractions
import functools
import glob
import logging
import os
from typing import Final

import av
import numpy as np
from aiortc import codecs, rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

log = logging.getLogger(__name__)

SAMPLE_RATE: Final = 48000
CHANNELS: Final = 2  # decoded as stereo, like aiortc's decoder (a mono voice on both)
STEP: Final = 120  # libopus decodes multiples of 2.5 ms
MAX_PACKET_SAMPLES: Final = 5760  # 120 ms, the longest Opus packet
MAX_GAP_SAMPLES: Final = 17280  # 0.36 s (six 60 ms packets): longer is a pause, not loss
TIME_BASE: Final = fractions.Fraction(1, SAMPLE_RATE)
_TIMESTAMP_WRAP: Final = 1 << 32


def timestamp_gap(expected: int, timestamp: int) -> int:
    """Samples missing between the ``expected`` RTP timestamp and ``timestamp`` (pure):
    negative for a packet from before the expected one, 32-bit wrap handled."""
    gap = (timestamp - expected) % _TIMESTAMP_WRAP
    return gap - _TIMESTAMP_WRAP if gap >= _TIMESTAMP_WRAP // 2 else gap


def concealment(gap: int, previous_samples: int, max_gap: int = MAX_GAP_SAMPLES) -> list[int]:
    """The concealed frames (sample counts, pure) to decode before a packet that follows
    a ``gap`` of missing samples; the last one is rebuilt from the packet's FEC copy, the
    others by concealment, each no longer than ``previous_samples`` (the lost packets were
    like the one before them). Empty when there is nothing to fill or the gap is a pause."""
    if gap <= 0 or gap > max_gap or previous_samples <= 0:
        return []
    gap -= gap % STEP
    size = max(STEP, min(previous_samples, MAX_PACKET_SAMPLES) // STEP * STEP)
    frames = [size] * (gap // size)
    if rest := gap % size:
        frames.insert(0, rest)
    return frames


@functools.cache
def _load_libopus() -> ctypes.CDLL:
    """PyAV's own libopus (the one aiortc's decoder already uses), else the system's."""
    bundled = os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs", "libopus*.so*")
    candidates = [*sorted(glob.glob(bundled)), ctypes.util.find_library("opus") or ""]
    for path in filter(None, candidates):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        if hasattr(lib, "opus_packet_has_lbrr"):  # libopus >= 1.5
            lib.opus_packet_has_lbrr.restype = ctypes.c_int
            lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, ctypes.c_int32]
        return lib
    raise OSError("libopus not found (neither PyAV's nor the system's)")


class ConcealingOpusDecoder(Decoder):
    """aiortc's :class:`~aiortc.codecs.base.Decoder` for Opus that fills lost packets."""

    def __init__(self) -> None:
        self._lib = _load_libopus()
        error = ctypes.c_int(0)
        self._state = self._lib.opus_decoder_create(SAMPLE_RATE, CHANNELS, ctypes.byref(error))
        if error.value != 0 or not self._state:
            raise OSError(f"opus_decoder_create failed ({error.value})")
        self._pcm = np.zeros(MAX_PACKET_SAMPLES * CHANNELS, dtype=np.int16)
        self._expected: int | None = None  # the RTP timestamp the next packet should have
        self._previous = 0  # samples in the last packet decoded

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._lib.opus_decoder_destroy(state)

    def decode(self, encoded_frame: JitterFrame) -> list[av.frame.Frame]:
        data, timestamp = encoded_frame.data, encoded_frame.timestamp
        frames: list[av.frame.Frame] = []
        if self._expected is not None:
            gap = timestamp_gap(self._expected, timestamp)
            if -MAX_GAP_SAMPLES <= gap < 0:
                return []  # a late packet: its time was already played (or filled)
            fill = concealment(gap, self._previous)
            pts = timestamp - sum(fill)
            for index, size in enumerate(fill):
                fec = index == len(fill) - 1 and self._has_copy(data)
                frame = self._decode(data if fec else None, size, fec=fec)
                if frame is not None:
                    frame.pts, frame.opaque = pts, "fec" if fec else "plc"
                    frames.append(frame)
                pts += size
        self._expected = timestamp
        frame = self._decode(data, MAX_PACKET_SAMPLES, fec=False)
        if frame is None:
            return frames  # a corrupt packet: the next one's gap conceals it
        frame.pts = timestamp
        frames.append(frame)
        self._previous = frame.samples
        self._expected = (timestamp + frame.samples) % _TIMESTAMP_WRAP
        return frames

    def _has_copy(self, data: bytes) -> bool:
        """Whether ``data`` carries a FEC copy of the packet before it (True when libopus
        cannot tell: decoding asks for the copy and conceals without one)."""
        has_lbrr = getattr(self._lib, "opus_packet_has_lbrr", None)
        return has_lbrr is None or has_lbrr(data, len(data)) == 1

    def _decode(self, data: bytes | None, samples: int, *, fec: bool) -> av.AudioFrame | None:
        pcm = self._pcm
        count = self._lib.opus_decode(
            self._state,
            data,
            len(data) if data is not None else 0,
            pcm.ctypes.data,
            samples,
            int(fec),
        )
        if count <= 0:
            return None
        # from_ndarray copies the samples out of the reused buffer
        frame = av.AudioFrame.from_ndarray(
            pcm[: count * CHANNELS].reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = TIME_BASE
        return frame


_aiortc_get_decoder = codecs.get_decoder


def _get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    if codec.mimeType.lower() == "audio/opus":
        try:
            return ConcealingOpusDecoder()
        except OSError as exc:
            log.warning("speakers' audio: aiortc's Opus decoder, without FEC (%s)", exc)
    return _aiortc_get_decoder(codec)


def use_concealing_decoder() -> None:
    """Have aiortc's receivers decode Opus with :class:`ConcealingOpusDecoder` (idempotent;
    every other codec keeps aiortc's decoder)."""
    rtcrtpreceiver.get_decoder = _get_decoder  # type: ignore[attr-defined]  # what it calls
