"""The program's audio mix: mute and gain per speaker, without clicks.

The operator sets a speaker's :class:`AudioSetting` from the event loop
(:meth:`AudioMix.set`); the program thread applies the on-air speaker's setting to every
block it encodes (:meth:`AudioMix.process`). The settings are an immutable mapping that
a writer replaces whole (writers take a lock among themselves), so the program thread
reads them with one attribute load and never waits.

The gain never jumps: whenever the target changes (a new setting, or a cut to a speaker
with another setting) it moves there in a straight line over ``RAMP_SECONDS``, sample by
sample and across blocks, so a mute is a 15 ms fade, not a click. After the gain the
mix is clipped to full scale (a +20 dB gain on a loud speaker would otherwise wrap in
the encoder). The slate has unity gain: it is silence anyway.

Settings survive a crash: the API writes them to ``<state dir>/audio.json`` with
:func:`write_settings` (temp file, fsync, rename) and ``jalsa run`` loads them at start
with :func:`read_settings`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from orchestrator.event.durable import replace_atomically
from orchestrator.program.audio import SAMPLE_RATE, Samples

log = logging.getLogger(__name__)

MIN_GAIN_DB: Final = -20.0
MAX_GAIN_DB: Final = 20.0
RAMP_SECONDS: Final = 0.015
RAMP_SAMPLES: Final = round(RAMP_SECONDS * SAMPLE_RATE)
SETTINGS_FILE: Final = "audio.json"
_FORMAT: Final = 1


@dataclass(frozen=True, slots=True)
class AudioSetting:
    """One speaker's place in the mix."""

    muted: bool = False
    gain_db: float = 0.0

    @property
    def factor(self) -> float:
        """The linear gain the mix applies (0 when muted)."""
        return 0.0 if self.muted else 10.0 ** (self.gain_db / 20.0)


UNITY: Final = AudioSetting()


def check_gain(gain_db: float) -> float:
    """``gain_db`` if it is a finite number of dB in range.

    Raises:
        ValueError: with a message for the operator.
    """
    if not math.isfinite(gain_db) or not MIN_GAIN_DB <= gain_db <= MAX_GAIN_DB:
        raise ValueError(
            f"gain_db must be between {MIN_GAIN_DB:g} and {MAX_GAIN_DB:g} dB, got {gain_db!r}"
        )
    return float(gain_db)


class GainRamp:
    """A gain that follows its target in straight lines of ``ramp`` samples.

    :meth:`apply` scales one block (``(channels, n)``) and returns a new array; the
    ramp's position carries over to the next block. A target change mid-ramp starts a
    new ramp from where the gain is, so the gain is continuous whatever happens.
    """

    def __init__(self, ramp: int = RAMP_SAMPLES, gain: float = 1.0) -> None:
        self._ramp = max(1, ramp)
        self.gain = gain  # the gain of the last sample scaled
        self._target = gain
        self._step = 0.0
        self._left = 0  # samples until the target is reached

    def apply(self, samples: Samples, target: float) -> Samples:
        if target != self._target:
            self._target = target
            self._left = self._ramp
            self._step = (target - self.gain) / self._ramp
        count = samples.shape[1]
        if self._left == 0:
            return samples if target == 1.0 else samples * np.float32(target)
        k = min(self._left, count)
        ramp = self.gain + self._step * np.arange(1, k + 1, dtype=np.float64)
        out = np.empty_like(samples)
        out[:, :k] = samples[:, :k] * ramp.astype(np.float32)
        out[:, k:] = samples[:, k:] * np.float32(target)
        self._left -= k
        self.gain = target if self._left == 0 else float(ramp[-1])
        return out


class AudioMix:
    """Mute and gain per speaker. ``set``/``replace`` from any thread (the loop);
    ``process`` on the program thread only."""

    def __init__(self, ramp: int = RAMP_SAMPLES) -> None:
        self._settings: Mapping[str, AudioSetting] = MappingProxyType({})
        self._writers = threading.Lock()
        self._gain = GainRamp(ramp)

    def settings(self) -> dict[str, AudioSetting]:
        """Every speaker set to something other than the default (unmuted, 0 dB)."""
        return dict(self._settings)

    def set(
        self, speaker: str, *, muted: bool | None = None, gain_db: float | None = None
    ) -> AudioSetting:
        """Change what is given, keep the rest; the new setting.

        Raises:
            ValueError: ``gain_db`` is out of range (nothing changes).
        """
        if gain_db is not None:
            gain_db = check_gain(gain_db)
        with self._writers:
            old = self._settings.get(speaker, UNITY)
            new = AudioSetting(
                old.muted if muted is None else bool(muted),
                old.gain_db if gain_db is None else gain_db,
            )
            settings = dict(self._settings)
            if new == UNITY:
                settings.pop(speaker, None)
            else:
                settings[speaker] = new
            self._settings = MappingProxyType(settings)
        return new

    def replace(self, settings: Mapping[str, AudioSetting]) -> None:
        """Every speaker's setting at once (loading them at start)."""
        for setting in settings.values():
            check_gain(setting.gain_db)
        with self._writers:
            self._settings = MappingProxyType(
                {speaker: s for speaker, s in settings.items() if s != UNITY}
            )

    def process(self, speaker: str, samples: Samples) -> Samples:
        """``samples`` of the on-air ``speaker`` (or "slate"), mixed: gain, ramp, clip."""
        out = self._gain.apply(samples, self._settings.get(speaker, UNITY).factor)
        # Clipped to full scale: a gain (or a source) beyond it would distort worse in AAC.
        return np.clip(out, -1.0, 1.0, out=None if out is samples else out)


# -- <state dir>/audio.json ---------------------------------------------------------------


def write_settings(path: Path, settings: Mapping[str, AudioSetting]) -> None:
    """Replace ``path`` atomically with ``settings``: a crash leaves the old file or the
    new one, never half of one. Blocking: call it off the event loop."""
    body = {
        "format": _FORMAT,
        "speakers": {
            speaker: {"muted": s.muted, "gain_db": s.gain_db}
            for speaker, s in sorted(settings.items())
        },
    }
    data = (json.dumps(body, indent=1) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, data)


def read_settings(path: Path, speakers: Mapping[str, object]) -> dict[str, AudioSetting]:
    """The settings saved in ``path`` for the event's ``speakers``; {} if there are none.

    A speaker the event no longer has, or an entry that is not valid, is left out with a
    warning; an unreadable file is ignored with one (the show must start regardless).
    """
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the saved audio settings in %s: %s", path, exc)
        return {}
    entries = raw.get("speakers") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        log.warning("ignoring the saved audio settings in %s: no 'speakers' table", path)
        return {}
    settings: dict[str, AudioSetting] = {}
    for speaker, entry in entries.items():
        if speaker not in speakers:
            log.warning("%s: speaker %r is not in the event: setting dropped", path, speaker)
            continue
        setting = _setting(entry)
        if setting is None:
            log.warning("%s: speakers.%s is not a valid audio setting: ignored", path, speaker)
            continue
        settings[speaker] = setting
    return settings


def _setting(entry: Any) -> AudioSetting | None:
    if not isinstance(entry, dict):
        return None
    muted, gain = entry.get("muted", False), entry.get("gain_db", 0.0)
    if not isinstance(muted, bool) or isinstance(gain, bool) or not isinstance(gain, int | float):
        return None
    try:
        return AudioSetting(muted, check_gain(float(gain)))
    except ValueError:
        return None
