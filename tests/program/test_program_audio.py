"""The program thread's audio: levels in the snapshot, and mute and gain in what is
encoded (the AAC packets decoded again)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import av
import numpy as np
import pytest
from waiting import wait_for

from orchestrator.event import ProgramSpec
from orchestrator.ingest.test_pattern import TestPattern
from orchestrator.program.graphics import black
from orchestrator.program.program import Feed, Program, ProgramSnapshot
from relays.packet import EncodedPacket

SPEC = ProgramSpec(width=320, height=180, fps=25, keyframe_seconds=2, preset="ultrafast")
# The test pattern's tone: 0.2 during a 100 ms pip each second, 0.07 between.
TONE_PEAK_DBFS = -14.0


class Collect:
    def __init__(self) -> None:
        self.audio: list[EncodedPacket] = []
        self.lock = threading.Lock()

    def __call__(self, packets: list[EncodedPacket]) -> None:
        with self.lock:
            self.audio.extend(p for p in packets if p.kind == "audio")

    def seconds(self) -> float:
        with self.lock:
            return len(self.audio) * 1024 / 48000


def decoded(program: Program, packets: list[EncodedPacket]) -> np.ndarray:
    """The left channel of the encoded audio, decoded, from the first packet on."""
    codec = av.CodecContext.create("aac", "r")
    codec.extradata = program.encoder.audio_stream.codec_context.extradata
    out = []
    for p in packets:
        for frame in codec.decode(av.Packet(p.data)):
            out.append(frame.to_ndarray()[0])
    return np.concatenate(out)


def snapshot_where(
    program: Program, what: str, check: Callable[[ProgramSnapshot], bool]
) -> ProgramSnapshot:
    """The first snapshot that passes ``check``."""
    return wait_for(
        lambda: check(s := program.snapshot()) and s,
        10,
        what,
        detail=lambda: repr(program.snapshot()),
    )


@pytest.fixture
def on_air() -> Iterator[tuple[Program, Collect]]:
    sink = Collect()
    program = Program(SPEC, sink)
    program.cut(Feed("host", source=TestPattern("Host", width=320, height=180)))
    program.start()
    yield program, sink
    program.stop()


def test_levels_mute_and_gain(on_air: tuple[Program, Collect]) -> None:
    program, sink = on_air
    # A full second of the tone: the program and the input read its peak.
    s = snapshot_where(
        program, "a second of tone", lambda s: s.seconds > 1.2 and s.audio_peak_dbfs > -20
    )
    assert s.audio_peak_dbfs == pytest.approx(TONE_PEAK_DBFS, abs=0.2)
    assert -25 < s.audio_rms_dbfs < s.audio_peak_dbfs
    assert (s.input_speaker, s.input_peak_dbfs) == ("host", pytest.approx(TONE_PEAK_DBFS, abs=0.2))
    assert s.audio_settings == {}

    muted_at = sink.seconds()
    program.set_audio("host", muted=True)
    s = snapshot_where(program, "the program silent", lambda s: s.audio_peak_dbfs == -100.0)
    # The input still reads the speaker: mute is in the mix, after the input meter.
    assert s.input_peak_dbfs == pytest.approx(TONE_PEAK_DBFS, abs=0.2)
    assert s.audio_settings == {"host": program.audio_settings()["host"]}
    assert s.audio_settings["host"].muted

    program.set_audio("host", muted=False, gain_db=6.0)
    unmuted_at = sink.seconds()
    s = snapshot_where(
        program, "the tone back, 6 dB louder", lambda s: s.audio_peak_dbfs > TONE_PEAK_DBFS + 3
    )
    # Until a full second of the louder tone has passed the window holds some silence.
    snapshot_where(
        program,
        "a full second at +6 dB",
        lambda s: sink.seconds() > unmuted_at + 1.2 and s.audio_rms_dbfs > -25,
    )
    assert program.snapshot().audio_peak_dbfs == pytest.approx(TONE_PEAK_DBFS + 6, abs=0.3)

    # What was encoded: loud, then silence from shortly after the mute, then louder.
    with sink.lock:
        packets = list(sink.audio)
    left = decoded(program, packets)
    rate = 48000
    loud = left[int(0.3 * rate) : int(muted_at * rate)]
    assert np.abs(loud).max() == pytest.approx(0.2, abs=0.02)
    # The mute took effect within a block (a frame), plus the encoder's delay.
    silent = left[int((muted_at + 0.2) * rate) : int((unmuted_at - 0.05) * rate)]
    assert silent.size > rate // 4
    assert np.abs(silent).max() < 1e-3
    louder = left[int((unmuted_at + 0.3) * rate) :]
    assert np.abs(louder).max() == pytest.approx(0.4, abs=0.04)


def test_a_cut_to_the_slate_measures_the_slate(on_air: tuple[Program, Collect]) -> None:
    program, _ = on_air
    snapshot_where(program, "the host metered", lambda s: s.input_speaker == "host")
    program.cut(Feed("slate", still=black(320, 180)))
    s = snapshot_where(program, "the slate metered", lambda s: s.input_speaker == "slate")
    assert s.input_peak_dbfs == -100.0  # a fresh window: the host's level is not carried


def test_a_stopped_program_reads_silence() -> None:
    program = Program(SPEC, Collect())
    program.cut(Feed("host", source=TestPattern("Host", width=320, height=180)))
    program.start()
    snapshot_where(program, "the tone", lambda s: s.audio_peak_dbfs > -20)
    program.stop()
    s = program.snapshot()
    assert (s.up, s.audio_peak_dbfs, s.input_speaker) == (False, -100.0, "slate")
