"""A plain SVG line chart for the scaling curves (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 360, 70, 20, 40, 50


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float | None]]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = math.floor(low / step) * step
    return [first + k * step for k in range(int((high - first) / step) + 2)]


def line_chart(
    path: Path,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    title: str,
    log_x: bool = False,
) -> None:
    """Write ``series`` as lines with markers; y from 0, x linear or log2."""
    present = [(x, y) for s in series for x, y in s.points if y is not None]
    if not present:
        return

    def fx(x: float) -> float:
        return math.log2(x) if log_x and x > 0 else x

    xs = [fx(x) for x, _ in present]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_ticks = _ticks(0.0, max(y for _, y in present) * 1.1)
    y1 = y_ticks[-1] or 1.0

    def px(x: float) -> float:
        return LEFT + (fx(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(y: float) -> float:
        return H - BOTTOM - y / y1 * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for t in y_ticks:
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for x in sorted({x for x, _ in present}):
        out.append(f'<text x="{px(x):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 10}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(
        f'<text x="16" y="{H / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {H / 2})">{escape(y_label)}</text>'
    )
    for k, s in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        pts = [(px(x), py(y)) for x, y in s.points if y is not None]
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>' for a, b in pts]
        out.append(
            f'<text x="{LEFT + 10}" y="{TOP + 14 + 16 * k}" fill="{colour}">{escape(s.name)}</text>'
        )
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
