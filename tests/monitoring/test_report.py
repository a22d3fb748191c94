"""``jalsa report`` on synthetic samples: peaks, outages, uptime, time on air, the chart."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jalsa_run import jalsa

from monitoring.chart import listeners_svg, nice_step
from monitoring.report import NoSamples, build_report, report_command, to_markdown, write_report
from monitoring.samples import SampleLog

T0 = 1_797_500_000.0  # 2026-12-17 ~ 10:13 UTC


def start(t: float) -> dict[str, Any]:
    return {
        "t": t,
        "type": "start",
        "event": "Digital Jalsa",
        "destinations": [
            {"name": "yt", "platform": "youtube", "kind": "rtmp"},
            {"name": "fb", "platform": "facebook", "kind": "rtmp"},
        ],
        "speakers": ["host", "guest"],
    }


def sample(t: float, yt: int, fb: int) -> dict[str, Any]:
    return {"t": t, "type": "sample", "listeners": {"youtube": yt, "facebook": fb}}


def event_records() -> list[dict[str, Any]]:
    """Run 1: 0..600 s, killed (no stop); run 2: 1000..1300 s, stopped cleanly."""
    r: list[dict[str, Any]] = [
        start(T0),
        {"t": T0, "type": "on_air", "speaker": "slate", "kind": "slate"},
        {"t": T0, "type": "destination", "name": "yt", "state": "connecting"},
        {"t": T0, "type": "destination", "name": "fb", "state": "connecting"},
        {"t": T0 + 10, "type": "destination", "name": "yt", "state": "live"},
        {"t": T0 + 10, "type": "destination", "name": "fb", "state": "live"},
        {"t": T0 + 20, "type": "on_air", "speaker": "host", "kind": "speaker"},
        {"t": T0 + 320, "type": "on_air", "speaker": "guest", "kind": "fallback"},
        {"t": T0 + 400, "type": "destination", "name": "fb", "state": "retrying"},
        {"t": T0 + 460, "type": "destination", "name": "fb", "state": "live"},
        {
            "t": T0 + 520,
            "type": "outage",
            "event": "started",
            "scope": "platform",
            "platform": "youtube",
            "cities": ["Karachi", "Lahore"],
            "vantages": ["k", "l"],
            "since": T0 + 460,
        },
        {
            "t": T0 + 590,
            "type": "outage",
            "event": "cleared",
            "scope": "platform",
            "platform": "youtube",
            "cities": ["Karachi", "Lahore"],
            "vantages": ["k", "l"],
            "since": T0 + 460,
        },
        {
            "t": T0 + 595,
            "type": "outage",
            "event": "started",
            "scope": "uplink",
            "platform": "control",
            "cities": ["Lahore"],
            "vantages": ["jalsa"],
            "since": T0 + 580,
        },
    ]
    r += [
        sample(T0 + t, yt, fb)
        for t, yt, fb in [
            (0, 0, 0),
            (100, 800, 100),
            (200, 1500, 90),
            (300, 1500, 300),
            (600, 900, 250),
        ]
    ]
    r += [
        start(T0 + 1000),
        {"t": T0 + 1000, "type": "on_air", "speaker": "guest", "kind": "speaker"},
        {"t": T0 + 1000, "type": "destination", "name": "yt", "state": "live"},
        {"t": T0 + 1000, "type": "destination", "name": "fb", "state": "live"},
        sample(T0 + 1100, 1200, 700),
        {"t": T0 + 1300, "type": "stop"},
    ]
    return r


def test_figures_of_an_event() -> None:
    report = build_report(event_records())
    assert (report.event, report.runs, report.seconds) == ("Digital Jalsa", 2, 900.0)
    assert [(p.platform, p.peak, p.at) for p in report.peaks] == [
        ("youtube", 1500, T0 + 200),
        ("facebook", 700, T0 + 1100),
    ]
    assert report.total_of_peaks == 2200
    windows = [(w.scope, w.platform, w.start, w.end, w.open) for w in report.outages]
    assert windows == [
        ("platform", "youtube", T0 + 460, T0 + 590, False),
        ("uplink", "control", T0 + 580, T0 + 600, True),  # open when the run was killed
    ]
    uptime = {u.destination: (u.live_seconds, u.observed_seconds) for u in report.uptime}
    assert uptime == {"yt": (590 + 300, 900), "fb": (590 - 60 + 300, 900)}
    on_air = {s.speaker: (s.live_seconds, s.recorded_seconds) for s in report.on_air}
    assert on_air == {"host": (300, 0), "guest": (300, 280)}
    assert report.slate_seconds == 20


def test_markdown_and_json_and_svg(tmp_path: Path) -> None:
    log = SampleLog(tmp_path / "state" / "samples")
    log.write(event_records())
    report = write_report(tmp_path / "state", tmp_path / "out")
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| youtube | 1,500 |" in markdown
    assert "**Total of peaks: 2,200**" in markdown
    assert "youtube unreachable from Karachi, Lahore" in markdown
    assert "(still open when jalsa stopped)" in markdown
    assert "| yt | youtube | 98.9% |" in markdown
    assert "![Listeners per platform over time](listeners.svg)" in markdown
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["total_of_peaks"] == 2200
    assert data["peaks"][0]["at_utc"].endswith("UTC")
    assert data["uptime"][1]["ratio"] == round(890 / 900, 4)
    svg = ET.parse(tmp_path / "out" / "listeners.svg").getroot()
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2
    assert report.total_of_peaks == 2200


def test_cli_report(tmp_path: Path) -> None:
    SampleLog(tmp_path / "samples").write(event_records())
    done = jalsa("report", "--state", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Total of peaks: 2,200" in done.stdout
    assert (tmp_path / "report" / "listeners.svg").exists()


def test_cli_report_without_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(state=tmp_path / "nothing", out=None)
    assert report_command(args) == 2
    assert "no samples" in capsys.readouterr().err


def test_no_samples() -> None:
    with pytest.raises(NoSamples):
        build_report([])
    assert "No outage was flagged." in to_markdown(build_report([start(T0)]))


def test_empty_and_flat_charts_are_valid_svg() -> None:
    for series in ({}, {"hls": [(T0, 0)]}, {"youtube": [(T0, 5), (T0 + 5, 5)]}):
        ET.fromstring(listeners_svg(series))
    assert [nice_step(s) for s in (1, 7, 45, 1500, 0)] == [0.2, 2.0, 10.0, 500.0, 1.0]


records = st.lists(
    st.one_of(
        st.builds(
            lambda t, s, k: {"t": t, "type": "on_air", "speaker": s, "kind": k},
            st.floats(0, 1000),
            st.sampled_from(["a", "b", "slate"]),
            st.sampled_from(["speaker", "fallback", "slate"]),
        ),
        st.builds(
            lambda t, n, s: {"t": t, "type": "destination", "name": n, "state": s},
            st.floats(0, 1000),
            st.sampled_from(["yt", "fb"]),
            st.sampled_from(["live", "retrying"]),
        ),
        st.builds(lambda t: start(t), st.floats(0, 1000)),
        st.builds(lambda t, n: sample(t, n, n // 2), st.floats(0, 1000), st.integers(0, 10**6)),
    ),
    min_size=1,
    max_size=40,
)


@given(records)
def test_totals_never_exceed_the_time_jalsa_ran(data: list[dict[str, Any]]) -> None:
    report = build_report(data)
    on_air = sum(s.live_seconds + s.recorded_seconds for s in report.on_air)
    assert on_air + report.slate_seconds <= report.seconds + 1e-6
    for u in report.uptime:
        assert 0 <= u.ratio <= 1 + 1e-9
    assert report.total_of_peaks == sum(p.peak for p in report.peaks)
    for p in report.peaks:
        assert p.peak == max(n for _, n in report.series[p.platform])
