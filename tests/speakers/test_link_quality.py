"""The join page's link quality line (LinkQuality in orchestrator/api/static/join-link.js,
run by node): it says how the link is now, not since the start, and says so when no
receiver report comes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

LINK = Path(__file__).parents[2] / "orchestrator" / "api" / "static" / "join-link.js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")

READ = """
const fs = require("fs");
globalThis.window = globalThis;
eval(fs.readFileSync(process.argv[1], "utf8"));
const q = new LinkQuality();
console.log(JSON.stringify(JSON.parse(process.argv[2]).map((r) => q.reading(r.now, r))));
"""


def _lines(readings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["node", "-e", READ, str(LINK), json.dumps(readings)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines: list[dict[str, Any]] = json.loads(out.stdout)
    return lines


def _reading(now: int, sent: int, lost: int, rtt: float | None = 0.05) -> dict[str, Any]:
    return {"now": now, "sent": sent, "lost": lost, "fresh": True, "rtt": rtt, "kbps": 30}


def test_a_link_that_recovers_reads_good_within_the_window() -> None:
    # 20 s of 20 % loss and a 1.1 s RTT, then a clean link: 50 packets a second.
    bad = [_reading(t, 40 * t, 10 * t, 1.1) for t in range(20)]
    good = [_reading(t, 800 + 50 * (t - 20), 200, 0.04) for t in range(20, 40)]
    lines = _lines(bad + good)
    assert lines[19]["grade"] == "poor" and "RTT 1100 ms" in lines[19]["text"]
    assert "loss 20.0%" in lines[19]["text"]
    assert all(x["grade"] == "good" for x in lines[26:]), [x["text"] for x in lines[20:]]
    assert lines[-1]["text"] == "Connection good: RTT 40 ms · loss 0.0% · 30 kbps out"


def test_no_reports_for_3_s_says_so_and_a_report_ends_it() -> None:
    quiet = [dict(_reading(t, 50 * t, 0), fresh=False) for t in range(5, 9)]
    lines = _lines([_reading(t, 50 * t, 0) for t in range(5)] + quiet + [_reading(9, 450, 0)])
    assert lines[6]["grade"] == "good"  # 2 s: a report may just be late
    assert lines[7]["grade"] == "unknown"
    assert lines[8]["text"] == "Connection: no reports from jalsa for 4 s · 30 kbps out"
    assert lines[9]["grade"] == "good"


def test_none_at_all_after_joining_is_unknown_too() -> None:
    lines = _lines([dict(_reading(t, 0, 0, None), fresh=False) for t in range(4)])
    assert [x["text"] for x in lines[:3]] == ["Connection: measuring…"] * 3
    assert lines[3]["text"] == "Connection: no reports from jalsa for 3 s · 30 kbps out"


def test_what_jalsa_says_it_receives_is_on_the_line() -> None:
    lines = _lines([dict(_reading(t, 50 * t, 0), received=24.6 if t else None) for t in range(2)])
    assert lines[0]["text"] == "Connection good: RTT 50 ms · loss 0.0% · 30 kbps out"
    assert (
        lines[1]["text"]
        == "Connection good: RTT 50 ms · loss 0.0% · 30 kbps out · jalsa gets 25 kbps"
    )
