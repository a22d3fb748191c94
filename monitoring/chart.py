"""The report's chart: listeners per platform over time, as a standalone SVG.

Pure: series in, SVG text out. Times are Unix seconds, shown as UTC clock times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final
from xml.sax.saxutils import escape

PALETTE: Final = (
    "#c4302b",  # youtube red
    "#1877f2",  # facebook blue
    "#111111",
    "#9146ff",  # twitch purple
    "#25d366",
    "#f59e0b",
    "#0ea5e9",
    "#6b7280",
)
KNOWN: Final = {"youtube": 0, "facebook": 1, "x": 2, "twitch": 3, "hls": 5, "icecast": 6}


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def listeners_svg(
    series: Mapping[str, Sequence[tuple[float, int]]],
    *,
    title: str = "Listeners per platform",
    width: int = 900,
    height: int = 380,
) -> str:
    """An SVG line chart of ``series`` (platform -> [(time, listeners)])."""
    left, right, top, bottom = 64, 150, 40, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for values in series.values() for p in values]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    if not points:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#666">'
            "no listener samples</text></svg>"
        )
        return "\n".join(out)
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    if t1 <= t0:
        t1 = t0 + 60
    peak = max(max(n for _, n in points), 1)
    y_step = nice_step(peak)
    y_max = math.ceil(peak / y_step) * y_step

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(n: float) -> float:
        return top + plot_h - n / y_max * plot_h

    # axes and grid
    value = 0.0
    while value <= y_max + 1e-9:
        yy = y(value)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#e5e7eb"/>'
        )
        out.append(f'<text x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
        value += y_step
    t_step = _time_step(t1 - t0)
    tick = math.ceil(t0 / t_step) * t_step
    while tick <= t1:
        xx = x(tick)
        label = datetime.fromtimestamp(tick, UTC).strftime("%H:%M" if t_step >= 60 else "%H:%M:%S")
        out.append(
            f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + plot_h}" stroke="#f3f4f6"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{label}</text>'
        )
        tick += t_step
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#374151"/>'
    )
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#374151"/>')
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle" fill="#374151">'
        "time (UTC)</text>"
    )
    # one line per platform, and the legend
    for index, (platform, values) in enumerate(sorted(series.items())):
        colour = PALETTE[KNOWN.get(platform, index) % len(PALETTE)]
        ordered = sorted(values)
        path = " ".join(f"{x(t):.1f},{y(n):.1f}" for t, n in ordered)
        if len(ordered) == 1:
            t, n = ordered[0]
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(n):.1f}" r="3" fill="{colour}"/>')
        else:
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                f"<title>{escape(platform)}</title></polyline>"
            )
        ly = top + 10 + index * 20
        lx = left + plot_w + 16
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 18}" y="{ly + 1}">{escape(platform)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _time_step(span: float) -> float:
    for step in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600):
        if span / step <= 8:
            return float(step)
    return 43200.0
