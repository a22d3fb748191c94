"""Speakers on thin uplinks: join-to-on-air time and program audio continuity by rate.

For each uplink rate (40, 80, 160, 320 kbit/s and unlimited by default) a fresh jalsa run
records the program while headless Chromium (the fake camera; a WAV tone as the
microphone) joins from a network namespace whose uplink is shaped with ``tc tbf``
(tests/speaker_netns.py: burst 2 MTUs, a 400 ms queue), camera on. Measured:

- join to on air: from the click on Join to ``jalsa_on_air{speaker="guest"} == 1``;
- continuity: 1 - silence / window, silencedetect (-50 dB, 0.1 s) on the recording over
  ``--seconds`` from 10 s after Join (the tone never stops: any silence is lost audio);
- video: the share of the window's scrapes with ``jalsa_speaker_video_paused == 1``.

Needs root (namespaces). Prints a Markdown table; ``--json`` writes bench/results/.
Usage: python3 bench/speaker_uplink.py [--rates 40,80,160,320,0] [--seconds 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import benchlib
from chromium import CHROMIUM_ARGS
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from playwright.sync_api import sync_playwright
from silence import silent_seconds
from speaker_netns import SpeakerNetns

SETTLE = 10.0


def one_rate(work: Path, kbit: int | None, seconds: float) -> dict[str, object]:
    tone = work / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=20",
         "-ar", "48000", "-ac", "1", str(tone)],
        check=True,
    )  # fmt: skip
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "Uplink Bench",
            program=program(width=320, height=180, fps=15),
            speakers=[speaker("guest", "Guest Speaker")],
            rundown=[slot("guest", "10m")],
            destinations=[{"name": "rec", "platform": "custom", "url": "recordings/show.mkv"}],
        )
    )
    run = JalsaRun(event, work / "state")
    run.args = ("--http", f"0.0.0.0:{run.http_port}")
    paused: list[float] = []
    with SpeakerNetns(work) as net, run, sync_playwright() as playwright:
        run.wait_ready()
        net.limit(kbit)
        args = [*CHROMIUM_ARGS, *net.secure_origin_args(run.http_port)]
        args.append(f"--use-file-for-fake-audio-capture={tone}")
        browser = playwright.chromium.launch(executable_path=str(net.wrapper), args=args)
        try:
            page = browser.new_page()
            page.goto(run.links()["guest"].replace("127.0.0.1", net.jalsa_address))
            joined_at = run.media_seconds()
            pressed = time.monotonic()
            page.get_by_role("button", name="Join").click()
            on_air: float | None = None
            try:
                run.wait_for(lambda: run.metric("jalsa_on_air", speaker="guest") == 1, 40, "air")
                on_air = time.monotonic() - pressed
            except AssertionError:
                pass
            start = joined_at + SETTLE
            end = start + seconds
            while (now := run.media_seconds()) < end:
                if now >= start:
                    paused.append(run.metric("jalsa_speaker_video_paused", speaker="guest") or 0)
                time.sleep(0.5)
        finally:
            browser.close()
            run.stop()
    silent = silent_seconds(work / "recordings" / "show.mkv", start, seconds)
    return {
        "uplink_kbit": kbit,
        "join_to_on_air_s": None if on_air is None else round(on_air, 1),
        "continuity": round(1 - silent / seconds, 3),
        "silent_s": round(silent, 1),
        "video_paused_share": round(sum(paused) / len(paused), 2) if paused else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="40,80,160,320,0", help="kbit/s; 0 = unlimited")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for rate in (int(r) for r in args.rates.split(",")):
        kbit = rate or None
        with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp:
            benchlib.log(f"uplink {kbit or 'unlimited'} kbit/s")
            rows.append(one_rate(Path(tmp), kbit, args.seconds))
    print("| uplink | join to on air | audio continuity | video paused |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        rate = f"{row['uplink_kbit']} kbit/s" if row["uplink_kbit"] else "unlimited"
        air = row["join_to_on_air_s"]
        share = row["video_paused_share"]
        print(
            f"| {rate} | {'not on air' if air is None else f'{air} s'} | "
            f"{float(row['continuity']) * 100:.1f} % ({row['silent_s']} s silent of "
            f"{args.seconds:g}) | {'-' if share is None else f'{float(share) * 100:.0f} %'} |"
        )
    if args.json:
        benchlib.write_json("speaker_uplink", {"rows": rows, "machine": benchlib.machine()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
