"""The audio mix: mute and gain per speaker with click-free ramps, clipping, and the
settings file that carries them over a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.program.audio import SAMPLE_RATE
from orchestrator.program.mix import (
    RAMP_SAMPLES,
    AudioMix,
    AudioSetting,
    GainRamp,
    read_settings,
    write_settings,
)

HZ = 440.0


def sine(amplitude: float, count: int, start: int = 0) -> np.ndarray:
    n = np.arange(start, start + count)
    tone = (amplitude * np.sin(2 * math.pi * HZ * n / SAMPLE_RATE)).astype(np.float32)
    return np.vstack((tone, tone))


class Tone:
    """A continuous sine, played a block at a time through a mix."""

    def __init__(self, mix: AudioMix, amplitude: float = 0.5) -> None:
        self.mix = mix
        self.amplitude = amplitude
        self.at = 0

    def play(self, speaker: str, blocks: int, size: int = 800) -> np.ndarray:
        """``blocks`` blocks of ``size`` samples through the mix, as one array."""
        out = []
        for _ in range(blocks):
            out.append(self.mix.process(speaker, sine(self.amplitude, size, start=self.at)))
            self.at += size
        return np.concatenate(out, axis=1)


# A 0.5 sine's own largest step between two samples (A·2πf/48k), and the most a 15 ms
# mute ramp may add to it.
SINE_STEP = 0.5 * 2 * math.pi * HZ / SAMPLE_RATE
SMOOTH = SINE_STEP + 0.5 / RAMP_SAMPLES + 1e-4


def largest_step(samples: np.ndarray) -> float:
    return float(np.abs(np.diff(samples, axis=1)).max())


def test_the_ramp_is_15_ms() -> None:
    assert RAMP_SAMPLES == 720


def test_a_muted_speaker_is_silent_after_the_ramp_without_a_click() -> None:
    mix = AudioMix()
    tone = Tone(mix)
    before = tone.play("host", 5)
    assert np.abs(before).max() == pytest.approx(0.5, abs=1e-3)
    mix.set("host", muted=True)
    after = tone.play("host", 5, size=500)  # the ramp spans two blocks
    assert not after[:, RAMP_SAMPLES:].any()  # exact silence once the ramp is done
    assert np.abs(after[:, RAMP_SAMPLES // 2 - 20 : RAMP_SAMPLES // 2]).max() > 0.1  # a fade
    # No step larger than the sine's own plus a ramp's share of its amplitude.
    assert largest_step(np.concatenate((before, after), axis=1)) <= SMOOTH
    mix.set("host", muted=False)
    back = tone.play("host", 5)
    assert np.abs(back[:, RAMP_SAMPLES:]).max() == pytest.approx(0.5, abs=1e-3)
    assert largest_step(np.concatenate((after, back), axis=1)) <= SMOOTH


def test_without_the_ramp_the_same_mute_would_click() -> None:
    """The bound above is tight enough to catch a click: a mute in one sample steps by
    the sine's value at that moment."""
    mix = AudioMix(ramp=1)
    tone = Tone(mix)
    tone.at = 27  # near the sine's crest (a quarter period of 440 Hz is 27 samples)
    before = tone.play("host", 1, size=1)
    mix.set("host", muted=True)
    after = tone.play("host", 1)
    assert largest_step(np.concatenate((before, after), axis=1)) > 0.4 > SMOOTH


def test_dc_ramp_is_a_straight_line_of_equal_steps() -> None:
    ramp = GainRamp(ramp=100)
    dc = np.full((2, 40), 0.8, dtype=np.float32)
    out = np.concatenate([ramp.apply(dc, 0.0) for _ in range(4)], axis=1)  # across blocks
    assert out[0, 0] == pytest.approx(0.792)  # the first sample already moves
    assert np.allclose(np.diff(out[0, :100]), -0.008, atol=1e-6)
    assert out[0, 99] == pytest.approx(0.0, abs=1e-6)
    assert not out[:, 100:].any()


def test_plus_6_db_doubles_the_amplitude() -> None:
    mix = AudioMix()
    tone = Tone(mix, amplitude=0.25)
    mix.set("host", gain_db=6.0)
    out = tone.play("host", 10)
    assert np.abs(out[:, RAMP_SAMPLES:]).max() == pytest.approx(0.5, rel=0.01)
    mix.set("host", gain_db=-20.0)
    out = tone.play("host", 10)
    assert np.abs(out[:, RAMP_SAMPLES:]).max() == pytest.approx(0.025, rel=0.01)


def test_gain_beyond_full_scale_is_clipped() -> None:
    mix = AudioMix()
    mix.set("host", gain_db=20.0)
    out = Tone(mix).play("host", 10)
    assert out.max() == 1.0 and out.min() == -1.0
    assert np.abs(out).max() <= 1.0
    # A source that overshoots at unity is clipped too (and its array left alone).
    loud = np.full((2, 100), 1.5, dtype=np.float32)
    assert mix.process("guest", loud).max() == 1.0
    assert loud.max() == 1.5


def test_a_cut_ramps_from_one_speakers_gain_to_the_next() -> None:
    mix = AudioMix()
    mix.set("loud", gain_db=12.0)
    mix.set("quiet", muted=True)
    dc = np.full((2, 2000), 0.1, dtype=np.float32)
    assert mix.process("loud", dc)[0, -1] == pytest.approx(0.1 * 10 ** (12 / 20), rel=1e-4)
    cut = mix.process("quiet", dc)[0]
    assert np.abs(np.diff(cut)).max() <= 0.4 / RAMP_SAMPLES + 1e-6
    assert not cut[RAMP_SAMPLES:].any()
    back = mix.process("slate", dc)[0]  # the slate: unity
    assert back[-1] == pytest.approx(0.1)


@given(
    targets=st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, 10.0]), min_size=1, max_size=8),
    sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=8),
)
def test_the_gain_is_continuous_whatever_the_changes(
    targets: list[float], sizes: list[int]
) -> None:
    """Any target changes at any block sizes: a DC of 0.1 never steps by more than its
    share of the widest ramp (0 to +20 dB over 720 samples)."""
    ramp = GainRamp()
    dc = 0.1
    previous = dc
    for target, size in zip(targets, sizes * len(targets), strict=False):
        out = ramp.apply(np.full((2, size), dc, dtype=np.float32), target)[0]
        joined = np.concatenate(([previous], out))
        assert np.abs(np.diff(joined)).max() <= dc * 10.0 / RAMP_SAMPLES + 1e-6
        previous = float(out[-1])
    assert ramp.gain == pytest.approx(previous / dc, rel=1e-4)


def test_settings_change_what_is_given_and_defaults_are_not_kept() -> None:
    mix = AudioMix()
    assert mix.set("host", gain_db=-3.5) == AudioSetting(False, -3.5)
    assert mix.set("host", muted=True) == AudioSetting(True, -3.5)
    assert mix.settings() == {"host": AudioSetting(True, -3.5)}
    mix.set("host", muted=False, gain_db=0)
    assert mix.settings() == {}


@pytest.mark.parametrize("gain", [20.01, -21.0, math.inf, math.nan])
def test_a_gain_out_of_range_changes_nothing(gain: float) -> None:
    mix = AudioMix()
    mix.set("host", gain_db=3.0)
    with pytest.raises(ValueError, match="gain_db must be between -20 and 20 dB"):
        mix.set("host", muted=True, gain_db=gain)
    assert mix.settings() == {"host": AudioSetting(False, 3.0)}


def test_the_settings_file_round_trips_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audio.json"
    settings = {"host": AudioSetting(True, 0.0), "guest": AudioSetting(False, -6.5)}
    write_settings(path, settings)
    assert read_settings(path, {"host": 1, "guest": 2}) == settings
    write_settings(path, {"host": AudioSetting(False, 2.0)})
    assert read_settings(path, {"host": 1, "guest": 2}) == {"host": AudioSetting(False, 2.0)}
    assert sorted(p.name for p in path.parent.iterdir()) == ["audio.json"]  # no temp left
    assert json.loads(path.read_text())["speakers"] == {"host": {"muted": False, "gain_db": 2.0}}


def test_the_settings_file_is_read_leniently(tmp_path: Path) -> None:
    path = tmp_path / "audio.json"
    assert read_settings(path, {"host": 1}) == {}  # none yet
    path.write_text('{"format": 1, "speakers": {"host": {"muted": tr')  # torn
    assert read_settings(path, {"host": 1}) == {}
    path.write_text(
        json.dumps(
            {
                "speakers": {
                    "host": {"muted": True},
                    "gone": {"muted": True},  # not in the event any more
                    "loud": {"gain_db": 99},  # out of range
                    "odd": {"muted": "yes"},
                    "guest": {"gain_db": -4},
                }
            }
        )
    )
    speakers = {"host": 1, "loud": 2, "odd": 3, "guest": 4}
    assert read_settings(path, speakers) == {
        "host": AudioSetting(True, 0.0),
        "guest": AudioSetting(False, -4.0),
    }
