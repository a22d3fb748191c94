"""The edge's blips in its own samples: ``jalsa report`` shows each as an outage
window with scope uplink (the real SampleLog files, the real report builder)."""

from __future__ import annotations

from pathlib import Path

from monitoring.report import build_report, to_markdown
from monitoring.samples import read_records
from orchestrator.edge.uplink_outages import UplinkOutages


def test_a_blip_is_an_uplink_outage_window_in_the_report(tmp_path: Path) -> None:
    outages = UplinkOutages("karachi-vm", [("yt", "youtube")], tmp_path / "samples")
    outages.opened()
    assert not outages.snapshot().slate_on
    outages.began(since=1_000.0)
    assert outages.snapshot().slate_on and outages.snapshot().blips == 1
    outages.ended()
    outages.ended()  # the studio's next packets: nothing more to clear
    outages.close()
    snapshot = outages.snapshot()
    assert not snapshot.slate_on and snapshot.blips == 1 and snapshot.slate_seconds >= 0
    report = build_report(read_records(tmp_path / "samples"))
    assert report.event == "karachi-vm" and report.runs == 1
    [window] = report.outages
    assert (window.scope, window.platform, window.vantages) == (
        "uplink",
        "contribution",
        ("karachi-vm",),
    )
    assert window.start == 1_000.0 and not window.open
    assert "uplink down at vantage karachi-vm" in to_markdown(report, chart=None)


def test_a_slate_still_on_when_the_edge_stops_is_an_open_window(tmp_path: Path) -> None:
    outages = UplinkOutages("karachi-vm", [], tmp_path / "samples")
    outages.opened()
    outages.began(since=2_000.0)
    outages.close()
    [window] = build_report(read_records(tmp_path / "samples")).outages
    assert window.open and window.scope == "uplink"


def test_without_a_samples_dir_nothing_is_written(tmp_path: Path) -> None:
    outages = UplinkOutages("karachi-vm", [], None)
    outages.opened()
    outages.began(since=1.0)
    outages.close()
    assert outages.snapshot().blips == 1 and list(tmp_path.iterdir()) == []
