"""How much of a recording's audio is silent: ffmpeg's silencedetect as the judge.

jalsa fills a gap in a speaker's audio with digital silence, so a threshold well below any
real signal (-50 dBFS) and a short minimum (0.1 s) count every gap and nothing else."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def silent_seconds(path: Path, start: float, seconds: float, shortest: float = 0.1) -> float:
    """Seconds of silence in ``path``'s audio from ``start`` for ``seconds``, counting
    silences of at least ``shortest`` seconds."""
    out = subprocess.run(
        ["ffmpeg", "-nostats", "-ss", f"{start:.2f}", "-t", f"{seconds:.2f}", "-i", str(path),
         "-vn", "-af", f"silencedetect=noise=-50dB:d={shortest}", "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    ).stderr  # fmt: skip
    total = sum(float(s) for s in re.findall(r"silence_duration: ([0-9.]+)", out))
    opened = re.findall(r"silence_start: ([0-9.]+)", out)
    if len(opened) > len(re.findall(r"silence_end", out)):
        total += seconds - float(opened[-1])  # a silence still running at the end
    return total
