"""Samples for the report: changes seen each second, periodic samples, bounded files."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from monitoring.listeners import DestinationListeners, ListenersSnapshot
from monitoring.outage import Outage
from monitoring.outage_watch import OutageEvent
from monitoring.samples import SampleLog, Sampler, read_records


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def show(on_air: str, kind: str, yt: str) -> Any:
    destinations = [
        SimpleNamespace(name="yt", platform="youtube", kind="rtmp", state=yt),
        SimpleNamespace(name="mirror", platform="custom", kind="hls", state="live"),
    ]
    return SimpleNamespace(
        event="Test",
        speakers=("host", "guest"),
        on_air=on_air,
        on_air_kind=kind,
        destinations=destinations,
    )


def listeners(n: int) -> ListenersSnapshot:
    return ListenersSnapshot((DestinationListeners("yt", "youtube", n, 0.0, 0.0, 1, (), None),))


def test_changes_and_samples(tmp_path: Path) -> None:
    clock = Clock()
    state = {"show": show("slate", "slate", "connecting"), "n": 0}
    sampler = Sampler(
        SampleLog(tmp_path, clock=clock),
        lambda: state["show"],
        lambda: listeners(state["n"]),
        every=10,
        clock=clock,
    )
    first = sampler.tick()
    assert [r["type"] for r in first] == ["start", "on_air", "destination", "destination", "sample"]
    assert first[0]["destinations"][0] == {"name": "yt", "platform": "youtube", "kind": "rtmp"}
    clock.now += 1
    assert sampler.tick() == []  # nothing changed, no sample due
    clock.now += 1
    state["show"] = show("host", "speaker", "live")
    state["n"] = 42
    outage = Outage("uplink", "control", frozenset({"jalsa"}), frozenset({"Lahore"}), 990.0)
    sampler.outage(OutageEvent("started", outage, clock.now))
    records = sampler.tick()
    assert [r["type"] for r in records] == ["on_air", "destination", "outage"]
    assert records[2]["since"] == 990.0 and records[2]["cities"] == ["Lahore"]
    clock.now += 9
    (sample,) = sampler.tick()
    assert sample["listeners"] == {"youtube": 42}
    assert sample["destinations"] == {"yt": "live", "mirror": "live"}
    assert sample["on_air"] == "host"


async def test_writes_go_to_rotating_files(tmp_path: Path) -> None:
    clock = Clock()
    log = SampleLog(tmp_path / "samples", max_bytes=2_000, max_files=3, clock=clock)
    for i in range(200):
        log.write([{"t": float(i), "type": "sample", "listeners": {"youtube": i}}])
    files = sorted((tmp_path / "samples").glob("*.jsonl"))
    assert len(files) == 3
    assert all(f.stat().st_size <= 2_000 for f in files)
    records = list(read_records(tmp_path / "samples"))
    assert records[-1]["t"] == 199.0
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "samples-20260101T000000Z-0001.jsonl").write_text(
        json.dumps({"t": 1, "type": "start"}) + "\n" + '{"t": 2, "type": "sam'
    )
    assert [r["t"] for r in read_records(tmp_path)] == [1]


async def test_close_writes_a_stop_record(tmp_path: Path) -> None:
    clock = Clock()
    sampler = Sampler(
        SampleLog(tmp_path, clock=clock),
        lambda: show("host", "speaker", "live"),
        lambda: listeners(3),
        clock=clock,
    )
    await sampler.close()
    assert [r["type"] for r in read_records(tmp_path)] == ["stop"]
    sampler.tick()
    await sampler.close()
    assert [r["type"] for r in read_records(tmp_path)][-1] == "stop"
