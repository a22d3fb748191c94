"""``[program]``: the one encode every destination shares (size, rate, bitrates, preset)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from orchestrator.event.reader import Table, did_you_mean, one_of, quote

X264_PRESETS: Final = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# Inclusive limits of every integer field of ProgramSpec.
LIMITS: Final = {
    "width": (160, 3840),
    "height": (120, 2160),
    "fps": (1, 60),
    "video_bitrate_kbps": (100, 20000),
    "audio_bitrate_kbps": (32, 320),
    "keyframe_seconds": (1, 10),
}
# x264 with 4:2:0 chroma needs even dimensions.
_EVEN: Final = ("width", "height")


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """How the program is encoded, once, for every destination.

    Raises:
        ValueError: a field is out of range (see :func:`program_problems`).
    """

    width: int = 1280
    height: int = 720
    fps: int = 30
    video_bitrate_kbps: int = 3000
    audio_bitrate_kbps: int = 128
    # Distance between keyframes: platforms want 2 s, and relays drop whole GOPs.
    keyframe_seconds: int = 2
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        problems = program_problems({f.name: getattr(self, f.name) for f in fields(self)})
        if problems:
            raise ValueError("; ".join(f"{name}: {message}" for name, message in problems))


def program_problems(values: Mapping[str, object]) -> list[tuple[str, str]]:
    """Every ``(field, message)`` wrong with these ``[program]`` values; empty when valid."""
    problems = []
    for name, (low, high) in LIMITS.items():
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append((name, f"expected an integer, got {quote(value)}"))
        elif not low <= value <= high:
            problems.append((name, f"{value} is out of range: use a value from {low} to {high}"))
        elif name in _EVEN and value % 2:
            problems.append((name, f"{value} is odd: use an even number, like {value + 1}"))
    preset = values["preset"]
    if not isinstance(preset, str) or preset not in X264_PRESETS:
        hint = did_you_mean(preset, X264_PRESETS) if isinstance(preset, str) else ""
        problems.append(
            (
                "preset",
                f"{quote(preset)} is not an x264 preset: {hint}use one of {one_of(X264_PRESETS)}",
            )
        )
    return problems


def parse_program(table: Table) -> ProgramSpec:
    """Read ``[program]``; every field is optional. Problems go to the table's collector.

    Returns the defaults when any field is wrong (the event is rejected anyway).
    """
    table.check_keys([f.name for f in fields(ProgramSpec)])
    defaults = ProgramSpec()
    ints = {name: table.integer(name, getattr(defaults, name)) for name in LIMITS}
    text = table.string("preset")
    preset = defaults.preset if text is None else str(text)
    problems = program_problems({**ints, "preset": preset})
    for name, message in problems:
        table.problem(name, message)
    if problems:
        return defaults
    return ProgramSpec(
        width=ints["width"],
        height=ints["height"],
        fps=ints["fps"],
        video_bitrate_kbps=ints["video_bitrate_kbps"],
        audio_bitrate_kbps=ints["audio_bitrate_kbps"],
        keyframe_seconds=ints["keyframe_seconds"],
        preset=preset,
    )
