"""A speaker on a 2G-class uplink: the voice gets through, video steps aside by itself.

Chromium (the fake camera; a WAV tone as the microphone) runs in a network namespace
whose uplink is shaped with ``tc tbf`` (tests/speaker_netns.py); jalsa runs in the root
namespace and records the program. The judge is the recording: ffmpeg's silencedetect
for the program's audio (the tone never stops, so any silence is a loss), the colour of
frames for what was on screen (the fake camera is green; the speaker's card is dark).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from chromium import CHROMIUM_ARGS, LAPTOP, PHONE
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import dominant
from playwright.sync_api import Page, expect, sync_playwright
from silence import silent_seconds
from speaker_netns import SpeakerNetns

pytestmark = pytest.mark.media

SETTLE_SECONDS = 10  # the measure starts 10 s after Join
MEASURE_SECONDS = 30
BACK_WITHIN = 20  # the limit lifted: video back on air by then
PAUSED_NOTE = "Your video is paused to keep your voice clear"


@dataclass
class Speech:
    """One speaker's session on a shaped link; times are program seconds (recording time)."""

    run: JalsaRun
    net: SpeakerNetns
    page: Page
    recording: Path
    joined_at: float = 0.0  # program seconds when Join was pressed
    on_air_after: float = 99.0  # wall seconds from Join to jalsa_on_air == 1
    paused_samples: list[float] = field(default_factory=list)  # jalsa_speaker_video_paused

    def sample(self) -> float:
        value = self.run.metric("jalsa_speaker_video_paused", speaker="guest")
        self.paused_samples.append(-1 if value is None else value)
        return value or 0.0

    def flow(self, seconds: float) -> None:
        """Let the show run ``seconds`` of program, sampling the paused gauge meanwhile."""
        until = self.run.media_seconds() + seconds
        self.run.wait_for(
            lambda: self.sample() is not None and self.run.media_seconds() >= until,
            seconds + 30,
            f"{seconds:g} s more of program",
        )


@pytest.fixture
def speech(tmp_path: Path) -> Iterator[Speech]:
    tone = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=20",
         "-ar", "48000", "-ac", "1", str(tone)],
        check=True,
    )  # fmt: skip
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Weak Uplink",
            program=program(width=320, height=180, fps=15),
            speakers=[speaker("guest", "Guest Speaker", title="From the field")],
            rundown=[slot("guest", "10m")],
            destinations=[{"name": "rec", "platform": "custom", "url": "recordings/show.mkv"}],
        )
    )
    run = JalsaRun(event, tmp_path / "state")
    run.args = ("--http", f"0.0.0.0:{run.http_port}")  # reachable from the namespace
    with SpeakerNetns(tmp_path) as net, run, sync_playwright() as playwright:
        run.wait_ready()
        args = [
            *CHROMIUM_ARGS,
            *net.secure_origin_args(run.http_port),
            f"--use-file-for-fake-audio-capture={tone}",
        ]
        browser = playwright.chromium.launch(executable_path=str(net.wrapper), args=args)
        try:
            page = browser.new_page()
            yield Speech(run, net, page, tmp_path / "recordings" / "show.mkv")
        finally:
            # What the page's link governor read and decided, for a failure's report.
            print(page.evaluate("JSON.stringify(window.jalsaLinkReadings)"))
            browser.close()
            run.stop()


def _join(speech: Speech) -> None:
    run = speech.run
    speech.page.goto(run.links()["guest"].replace("127.0.0.1", speech.net.jalsa_address))
    speech.joined_at = run.media_seconds()
    pressed = time.monotonic()
    speech.page.get_by_role("button", name="Join").click()
    run.wait_for(lambda: run.metric("jalsa_on_air", speaker="guest") == 1, 30, "guest on air")
    speech.on_air_after = time.monotonic() - pressed


def _showing_camera(run: JalsaRun) -> bool:
    """/api/state: the guest's source shows their pictures (not the card)."""
    state = json.loads(run.http("/api/state", token=run.token())[1])
    (guest,) = [s for s in state["sources"] if s.get("speaker") == "guest"]
    return guest["connected"] and not guest["audio_only"] and not guest["video_paused"]


def _colour(path: Path, at: float) -> str:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{at:.2f}", "-i", str(path), "-frames:v", "1",
         "-vf", "scale=1:1:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return dominant((out[0], out[1], out[2]))


def test_80_kbits_camera_on_keeps_the_voice_then_video_comes_back(speech: Speech) -> None:
    run, page = speech.run, speech.page
    speech.net.limit(80)
    _join(speech)
    expect(page.get_by_text(PAUSED_NOTE)).to_be_visible(timeout=20_000)
    run.wait_for(lambda: speech.sample() == 1, 20, "jalsa_speaker_video_paused == 1")
    if folder := os.environ.get("JALSA_SCREENSHOTS"):  # docs/: the join page, video paused
        for name, size in (("join-paused-phone.png", PHONE), ("join-paused.png", LAPTOP)):
            page.set_viewport_size(size)  # type: ignore[arg-type]
            page.screenshot(path=str(Path(folder) / name), full_page=True)
    start = speech.joined_at + SETTLE_SECONDS
    speech.flow(max(0.0, start + MEASURE_SECONDS - run.media_seconds()))
    paused_phase = list(speech.paused_samples)
    card_at = start + MEASURE_SECONDS / 2

    speech.net.limit(None)
    lifted = time.monotonic()
    run.wait_for(lambda: speech.sample() == 0, BACK_WITHIN + 10, "video back on air")
    back_after = time.monotonic() - lifted
    expect(page.get_by_text(PAUSED_NOTE)).to_be_hidden(timeout=5_000)
    speech.paused_samples.clear()
    speech.flow(8)
    run.wait_for(lambda: _showing_camera(run), 10, "the camera's picture on air again")
    speech.flow(2)
    camera_at = run.media_seconds() - 1
    after_back = list(speech.paused_samples)
    run.stop()

    silent = silent_seconds(speech.recording, start, MEASURE_SECONDS)
    continuity = 1 - silent / MEASURE_SECONDS
    print(
        f"80 kbit/s: on air {speech.on_air_after:.1f} s after Join; continuity "
        f"{continuity:.3f} ({silent:.1f} s silent of {MEASURE_SECONDS}); video back "
        f"{back_after:.1f} s after the limit was lifted"
    )
    assert continuity >= 0.95, f"{silent:.1f} s of {MEASURE_SECONDS} silent"
    assert speech.on_air_after <= 8
    # Paused through the measure (no flapping), and the card on air meanwhile.
    measured = paused_phase[-max(1, len(paused_phase) // 2) :]
    assert set(measured) == {1}, paused_phase
    assert _colour(speech.recording, card_at) == "dark"
    assert back_after <= BACK_WITHIN
    assert set(after_back) == {0}, after_back
    assert _colour(speech.recording, camera_at) == "green"


def test_300_kbits_video_stays_on(speech: Speech) -> None:
    run = speech.run
    speech.net.limit(300)
    _join(speech)
    start = speech.joined_at + SETTLE_SECONDS
    speech.flow(max(0.0, start + MEASURE_SECONDS - run.media_seconds()))
    run.stop()
    silent = silent_seconds(speech.recording, start, MEASURE_SECONDS)
    print(f"300 kbit/s: on air {speech.on_air_after:.1f} s after Join; {silent:.1f} s silent")
    assert set(speech.paused_samples) <= {0, -1}, speech.paused_samples
    assert 1 - silent / MEASURE_SECONDS >= 0.95
    assert _colour(speech.recording, start + MEASURE_SECONDS / 2) == "green"
