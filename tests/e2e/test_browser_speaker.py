"""Speakers in a real browser: headless Chromium with its fake camera and microphone joins
over real WebRTC, by the link ``jalsa links`` printed.

One jalsa run for the module (a host on a test pattern, a live speaker with video, a live
speaker on audio only with a photo; recorded to a file). The fixture plays the scenario
once — join, go on air, close the tab, rejoin, a second tab on the same link, an
audio-only speaker's slot — and notes what it saw; the tests then judge the notes, the
metrics scraped on the way and the recording (ffprobe: gaps; colours mid-segment).

Chromium's fake camera is a green test pattern (with a moving pacman): mid-frame it reads
"green", where the reconnecting slate reads "dark" and the audio-only speaker's photo
(solid blue here) reads "blue".
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import dominant, ffprobe
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.media

HOST_SECONDS, GUEST_SECONDS, RADIO_SECONDS = 6, 30, 10


@dataclass
class Seen:
    """What the scenario observed; media times are program seconds (= recording time)."""

    run: JalsaRun
    links: dict[str, str]
    forged: tuple[int, str] = (0, "")
    guest_live_text: str = ""
    guest_on_air: float | None = None
    guest_connected: float | None = None
    mid_guest: float = 0.0
    covered_after: float = 99.0  # seconds from closing the tab to the slate
    disconnected_after: float = 99.0
    connected_after_close: float | None = None
    mid_slate: float = 0.0
    rejoined_after: float = 99.0
    mid_rejoin: float = 0.0
    replaced_text: str = ""
    connected_after_second_tab: float | None = None
    on_air_after_second_tab: float | None = None
    radio_on_air: float | None = None
    radio_audio_only: bool = False
    mid_radio: float = 0.0
    alive_throughout: bool = True
    exit_code: int | None = None
    recording: Path = field(default_factory=Path)
    debug: list[str] = field(default_factory=list)
    upload_text: str = ""


def _wait(check: Callable[[], bool], timeout: float, what: str, run: JalsaRun) -> float:
    """``run.wait_for(check, …)``; how long it took."""
    started = time.monotonic()
    run.wait_for(check, timeout, what)
    return time.monotonic() - started


def _join(page: Page, link: str, *, audio_only: bool = False) -> None:
    page.goto(link)
    if audio_only:
        page.get_by_label("Audio only").check()
    page.get_by_role("button", name="Join").click()


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[Seen]:
    work = tmp_path_factory.mktemp("browser")
    Image.new("RGB", (320, 180), (30, 60, 220)).save(work / "radio.png")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "Browser Jalsa",
            event={"on_end": "stop"},
            program=program(width=640, height=360, video_bitrate_kbps=500),
            speakers=[
                speaker("host", source="testsrc"),
                speaker("guest", "Guest Speaker", title="From the field"),
                speaker("radio", "Radio Speaker", photo="radio.png"),
            ],
            rundown=[
                slot("host", f"{HOST_SECONDS}s"),
                slot("guest", f"{GUEST_SECONDS}s"),
                slot("radio", f"{RADIO_SECONDS}s"),
            ],
            destinations=[
                {"name": "recording", "platform": "custom", "url": "recordings/show.mkv"}
            ],
        )
    )
    with JalsaRun(event, work / "state") as run:
        run.wait_ready()
        links = run.links()
        seen = Seen(run, links, recording=work / "recordings" / "show.mkv")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 390, "height": 844})
            try:
                _scenario(seen, context, run, clips / "green.mp4")
            finally:
                context.close()
                browser.close()
        seen.exit_code = run.wait(timeout=HOST_SECONDS + GUEST_SECONDS + RADIO_SECONDS + 30)
        yield seen


def _scenario(seen: Seen, context: Any, run: JalsaRun, message: Path) -> None:
    metric = run.metric
    forged = seen.links["guest"][:-4] + "AAAA"
    page = context.new_page()
    response = page.goto(forged)
    seen.forged = (response.status if response else 0, page.inner_text("body"))
    page.close()

    radio = context.new_page()
    _join(radio, seen.links["radio"], audio_only=True)
    first = context.new_page()
    _join(first, seen.links["guest"])
    # The audio-only speaker also uploads a recorded message from the page.
    radio.locator("details.upload summary").click()
    radio.set_input_files("#message-file", str(message))
    radio.get_by_role("button", name="Upload message").click()
    expect(radio.locator("#message-status")).to_contain_text("Uploaded", timeout=20_000)
    seen.upload_text = radio.inner_text("#message-status")
    _wait(lambda: metric("jalsa_on_air", speaker="guest") == 1, 30, "guest on air", run)
    expect(first.locator("#status")).to_have_text("LIVE", timeout=10_000)
    seen.guest_live_text = first.inner_text("#status")
    seen.guest_on_air = metric("jalsa_on_air", speaker="guest")
    seen.guest_connected = metric("jalsa_speaker_connected", speaker="guest")
    run.media_flows(2)
    seen.debug.append(run.http("/api/state", token=run.token())[1].decode())
    seen.mid_guest = run.media_seconds() - 0.5

    # Close the tab mid-speech.
    first.close()
    closed = time.monotonic()
    _wait(lambda: metric("jalsa_on_air", speaker="slate") == 1, 10, "the slate covers", run)
    seen.covered_after = time.monotonic() - closed
    _wait(lambda: metric("jalsa_speaker_connected", speaker="guest") == 0, 10, "reads gone", run)
    seen.disconnected_after = time.monotonic() - closed
    seen.connected_after_close = metric("jalsa_speaker_connected", speaker="guest")
    run.media_flows(1.0)
    seen.mid_slate = run.media_seconds() - 0.5

    # Rejoin with the same link.
    second = context.new_page()
    reopened = time.monotonic()
    _join(second, seen.links["guest"])
    _wait(lambda: metric("jalsa_on_air", speaker="guest") == 1, 20, "back on air", run)
    seen.rejoined_after = time.monotonic() - reopened
    run.media_flows(2)
    seen.mid_rejoin = run.media_seconds() - 0.5

    # A second tab on the same link takes over; the first stops, and does not fight back.
    third = context.new_page()
    _join(third, seen.links["guest"])
    expect(second.locator("#status")).to_contain_text("another tab", timeout=15_000)
    seen.replaced_text = second.inner_text("#status")
    # A window with nothing to wait for: the replaced tab would have re-joined by now if
    # it were going to.
    run.media_flows(3)
    seen.connected_after_second_tab = metric("jalsa_speaker_connected", speaker="guest")
    seen.on_air_after_second_tab = metric("jalsa_on_air", speaker="guest")

    # The audio-only speaker's slot.
    _wait(lambda: metric("jalsa_on_air", speaker="radio") == 1, GUEST_SECONDS + 10, "radio", run)
    run.media_flows(2)
    seen.radio_on_air = metric("jalsa_on_air", speaker="radio")
    _, state = run.http("/api/state", token=run.token())
    seen.radio_audio_only = b'"audio_only": true' in state or b'"audio_only":true' in state
    seen.mid_radio = run.media_seconds() - 0.5
    seen.alive_throughout = run.process is not None and run.process.poll() is None


def _colour(path: Path, at: float) -> str:
    """The dominant colour of the whole frame at ``at`` s (area-averaged to one pixel)."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            f"{at:.2f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            "scale=1:1:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return dominant((out[0], out[1], out[2]))


def test_a_forged_link_gets_a_page_that_says_what_to_do(seen: Seen) -> None:
    status, text = seen.forged
    assert status == 401
    assert "This link does not work" in text and "ask them to send it again" in text


def test_the_speaker_goes_on_air_in_their_slot(seen: Seen) -> None:
    assert seen.guest_live_text == "LIVE"
    assert (seen.guest_on_air, seen.guest_connected) == (1, 1)
    assert _colour(seen.recording, seen.mid_guest) == "green", seen.debug[-1][-900:]


def test_closing_the_tab_is_covered_at_once_without_a_gap(seen: Seen) -> None:
    assert seen.covered_after <= 2.5  # close detected + ≤ 1 s hold + a scrape
    assert seen.disconnected_after <= 2.5
    assert seen.connected_after_close == 0
    assert _colour(seen.recording, seen.mid_slate) == "dark"
    probe = ffprobe(seen.recording)
    assert probe.largest_video_gap <= 0.2
    total = HOST_SECONDS + GUEST_SECONDS + RADIO_SECONDS
    assert probe.video_seconds == pytest.approx(total, abs=3)


def test_rejoining_puts_them_back_on_air(seen: Seen) -> None:
    assert seen.rejoined_after <= 10
    assert _colour(seen.recording, seen.mid_rejoin) == "green"


def test_a_second_tab_replaces_the_first(seen: Seen) -> None:
    assert "another tab" in seen.replaced_text
    assert (seen.connected_after_second_tab, seen.on_air_after_second_tab) == (1, 1)


def test_an_audio_only_speaker_is_shown_as_their_photo(seen: Seen) -> None:
    assert seen.radio_on_air == 1 and seen.radio_audio_only
    assert _colour(seen.recording, seen.mid_radio) == "blue"


def test_a_recorded_message_uploads_from_the_page(seen: Seen) -> None:
    # It waits for an operator's approval (the event does not approve uploads itself).
    assert seen.upload_text == "Uploaded. Your message is waiting for the operator's approval."
    (meta,) = (seen.run.state_dir / "messages").glob("*.json")
    assert json.loads(meta.read_text())["speaker"] == "radio"
    assert meta.with_suffix(".mp4").is_file()


def test_jalsa_stayed_up_and_ended_cleanly(seen: Seen) -> None:
    assert seen.alive_throughout
    assert seen.exit_code == 0, seen.run.logs[-3000:]
    for token in (link.rsplit("/", 1)[1] for link in seen.links.values()):
        assert token not in seen.run.logs
