"""Human durations for the event file: ``"90s"``, ``"5m"``, ``"1h30m"``, ``"500ms"``.

A duration is one or more ``<number><unit>`` parts with units ``h``, ``m``, ``s`` and
``ms``, largest first, each unit at most once. Whitespace between and around parts is
ignored. A bare number is rejected on purpose: ``duration = "90"`` could mean seconds or
minutes, and guessing wrong shortens a speaker's slot.
"""

from __future__ import annotations

import math
import re
from typing import Final

EXAMPLES: Final = '"90s", "5m", "1h30m", "2m30s", "1.5s", "500ms"'

_UNIT_SECONDS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Units in the only order they may appear, largest first.
_UNIT_ORDER: Final = ("h", "m", "s", "ms")
# "ms" comes before "m" and "s" in the alternation so that "500ms" is not read as 500m + s.
_PART: Final = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|h|m|s)", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Parse a duration such as ``"1h30m"`` into seconds.

    Args:
        text: one or more ``<number><unit>`` parts, units ``h``, ``m``, ``s``, ``ms``,
            largest unit first; whitespace is allowed anywhere between the parts.

    Returns:
        The duration in seconds (never negative, always finite).

    Raises:
        ValueError: ``text`` is not a duration; the message quotes it and shows valid ones.
    """
    position = 0
    total = 0.0
    last_rank = -1
    stripped = text.rstrip()
    while position < len(stripped):
        match = _PART.match(stripped, position)
        if match is None:
            raise ValueError(_bad(text, _hint_for(text, stripped[position:].strip())))
        unit = match.group(2).lower()
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(_bad(text, "write the units largest first, each once (h, m, s, ms)"))
        last_rank = rank
        total += float(match.group(1)) * _UNIT_SECONDS[unit]
        position = match.end()
    if last_rank < 0:
        raise ValueError(_bad(text, "it is empty"))
    return total


def format_duration(seconds: float) -> str:
    """Format ``seconds`` the way :func:`parse_duration` reads it: ``"1h30m"``, ``"45s"``.

    The value is rounded to the millisecond; sub-second values use ``ms``
    (``"500ms"``) and fractional seconds otherwise keep up to three decimals
    (``"2m1.5s"``). ``parse_duration(format_duration(x))`` equals ``x`` rounded to the
    millisecond for every finite ``x >= 0``.
    """
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if millis:
        whole, frac = divmod(millis, 1000)
        parts.append(f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "s" if frac else f"{whole}s")
    return "".join(parts)


def _bad(text: str, why: str) -> str:
    return f"{text!r} is not a duration ({why}): write it like {EXAMPLES}"


def _hint_for(text: str, rest: str) -> str:
    """Why ``text`` failed, given the ``rest`` that could not be read."""
    for word in re.findall(r"[A-Za-z]+", text):
        if word.lower() not in _UNIT_SECONDS:
            return f"unknown unit {word!r}: use h, m, s or ms"
    if re.fullmatch(r"\d+(?:\.\d+)?", rest):
        return "a number needs a unit"
    if rest.startswith("-"):
        return "it cannot be negative"
    return f"cannot read {rest!r}"
