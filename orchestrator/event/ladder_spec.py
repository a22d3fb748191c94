"""The HLS mirror's adaptive ladder: ``[destinations.ladder]`` of an ``url = "hls"`` mirror.

A mirror with a ladder serves a master playlist (``index.m3u8``) over three renditions
of the one program: the program itself (``program.m3u8``), a low rendition
(``low.m3u8``, e.g. 360p at ~500 kbit/s) and an audio-only one (``audio.m3u8``, AAC at
≤ 64 kbit/s) for a phone on a throttled link. The extra renditions are encoded from the
program's pictures and samples on their own threads (:mod:`orchestrator.program.ladder`).

```toml
[destinations.ladder]
low_height = 360        # 0: no low rendition
low_video_kbps = 440
low_audio_kbps = 48
audio_kbps = 48         # 0: no audio-only rendition; at most 64
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from orchestrator.event.reader import Table

_KEYS: Final = ("low_height", "low_video_kbps", "low_audio_kbps", "audio_kbps")
MAX_AUDIO_KBPS: Final = 64


@dataclass(frozen=True, slots=True)
class LadderSpec:
    """The extra renditions of one HLS mirror (0 turns one off).

    Attributes:
        low_height: the low rendition's picture height (its width keeps the program's
            aspect); 0 for none.
        low_video_kbps, low_audio_kbps: the low rendition's video and AAC bitrates.
        audio_kbps: the audio-only rendition's AAC bitrate (≤ 64); 0 for none.
    """

    low_height: int = 360
    low_video_kbps: int = 440
    low_audio_kbps: int = 48
    audio_kbps: int = 48

    @property
    def renditions(self) -> tuple[str, ...]:
        """The extra renditions' names, as their playlists are named."""
        return (("low",) if self.low_height else ()) + (("audio",) if self.audio_kbps else ())


def read_ladder(table: Table, program_height: int | None) -> LadderSpec:
    """Read a ``[destinations.ladder]`` table, every problem naming its key.

    Args:
        table: the ladder table.
        program_height: the program's height (None when it is not known yet, e.g. a
            ``[program]`` with its own problems): the low rendition must be smaller.
    """
    table.check_keys(_KEYS)
    default = LadderSpec()
    low_height = table.integer("low_height", default.low_height)
    if low_height != 0 and (low_height < 144 or low_height % 2):
        table.problem(
            "low_height",
            f"{low_height} cannot be used: write an even height of 144 or more, "
            "like 360, or 0 for no low rendition",
        )
        low_height = default.low_height
    elif program_height is not None and low_height >= program_height:
        table.problem(
            "low_height",
            f"{low_height} is not below the program's height ({program_height}): the low "
            "rendition must be smaller, like 360, or 0 for none",
        )
        low_height = 0
    low_video = _kbps(table, "low_video_kbps", default.low_video_kbps, 100, 4000)
    low_audio = _kbps(table, "low_audio_kbps", default.low_audio_kbps, 16, MAX_AUDIO_KBPS * 2)
    audio = table.integer("audio_kbps", default.audio_kbps)
    if audio != 0 and not 16 <= audio <= MAX_AUDIO_KBPS:
        table.problem(
            "audio_kbps",
            f"{audio} cannot be used: the audio-only rendition is for throttled links, "
            f"write 16 to {MAX_AUDIO_KBPS} (like 48), or 0 for none",
        )
        audio = default.audio_kbps
    return LadderSpec(low_height, low_video, low_audio, audio)


def _kbps(table: Table, name: str, default: int, low: int, high: int) -> int:
    value = table.integer(name, default)
    if not low <= value <= high:
        table.problem(name, f"{value} cannot be used: write {low} to {high} (kbit/s)")
        return default
    return value
