"""The listener page ``/watch/<mirror>`` in Chromium, on a real jalsa run with a ladder:
it plays (the video element advances), shows who is speaking and who is next, starts on
audio only on a throttled link (Chromium's own network emulation at 150 kbit/s), and its
heartbeats count as listeners in ``jalsa_listeners{platform="hls"}``."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import LAPTOP, PHONE
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.media

VENDOR = Path(__file__).resolve().parents[2] / "orchestrator" / "api" / "static" / "vendor"


@pytest.fixture(scope="module")
def jalsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    tmp_path = tmp_path_factory.mktemp("watch")
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Watch Jalsa",
            event={"on_end": "slate"},
            program=program(width=640, height=360, fps=15, video_bitrate_kbps=500),
            speakers=[
                speaker("host", "Stage Secretary", title="Host", source="testsrc"),
                speaker("amina", "Amina Qureshi", title="Youth Wing", source="testsrc"),
            ],
            rundown=[slot("host", "10m"), slot("amina", "10m")],
            destinations=[
                {
                    "name": "mirror",
                    "platform": "custom",
                    "url": "hls",
                    "ladder": {"low_height": 180, "low_video_kbps": 200},
                }
            ],
        )
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()
        audio = run.state_dir / "hls" / "mirror" / "audio.m3u8"  # on disk: not a viewer
        run.wait_for(
            lambda: audio.exists() and audio.read_text().count(".ts") >= 2,
            40,
            "two segments of every rendition",
        )
        yield run


def advancing(page: Page, seconds: float = 2.0) -> None:
    """Until the video element's clock has moved ``seconds`` on from now."""
    start = page.evaluate("document.getElementById('player').currentTime")
    page.wait_for_function(  # a function, not an expression: the page's CSP forbids eval
        "(until) => document.getElementById('player').currentTime > until",
        arg=start + seconds,
        timeout=40_000,
    )


def throttle(page: Page) -> None:
    """Chromium's own network emulation: the page's link at 150 kbit/s down, 150 ms."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 150,
            "downloadThroughput": 150_000 / 8,  # bytes/s
            "uploadThroughput": 50_000 / 8,
        },
    )


def hls_listeners(jalsa: JalsaRun) -> float | None:
    return jalsa.metric("jalsa_listeners", platform="hls")


def test_the_page_plays_the_ladder_and_shows_the_stage(jalsa: JalsaRun, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{jalsa.http_port}/watch/mirror")
    expect(page.locator("#on-air")).to_have_text("Stage Secretary", timeout=15_000)
    expect(page.locator("#on-air-title")).to_have_text("Host")
    expect(page.locator("#next")).to_have_text("Amina Qureshi")
    expect(page.locator("#next-when")).to_have_text(re.compile(r"in \d+:\d\d"))
    page.get_by_role("button", name="Play").click()
    advancing(page)
    expect(page.get_by_role("status")).to_have_text("Live")
    expect(page.locator("#quality")).to_have_text(re.compile(r"Video \d+×\d+"))
    assert page.evaluate("document.getElementById('player').videoWidth") > 0
    if directory := os.environ.get("JALSA_SCREENSHOTS"):
        page.screenshot(path=f"{directory}/watch-phone.png")
        page.set_viewport_size(LAPTOP)  # type: ignore[arg-type]
        page.screenshot(path=f"{directory}/watch.png")
    # Its heartbeat counts it (the page's own playlist requests do not: they are its).
    jalsa.wait_for(lambda: (hls_listeners(jalsa) or 0) >= 1, 30, "the page counted")
    assert hls_listeners(jalsa) == 1
    # The listener chooses audio only, and back.
    page.get_by_role("button", name="Audio only").click()
    expect(page.locator("#quality")).to_have_text(re.compile(r"^Audio only"))
    advancing(page)
    page.get_by_role("button", name="Video").click()
    expect(page.locator("#quality")).to_have_text(re.compile(r"^Video"))
    advancing(page)
    context.close()


def test_a_throttled_phone_starts_on_audio_only(jalsa: JalsaRun, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    throttle(page)
    page.goto(f"http://127.0.0.1:{jalsa.http_port}/watch/mirror")
    page.get_by_role("button", name="Play").click()
    expect(page.locator("#quality")).to_have_text(
        re.compile(r"^Audio only \(\d+ kbit/s\): your connection carries about \d+ kbit/s"),
        timeout=30_000,
    )
    advancing(page, 3.0)
    assert page.evaluate("document.getElementById('player').videoWidth") == 0
    context.close()


def test_video_steps_down_to_audio_only_when_the_link_is_throttled(
    jalsa: JalsaRun, browser: Browser
) -> None:
    context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{jalsa.http_port}/watch/mirror")
    page.get_by_role("button", name="Play").click()
    advancing(page)
    expect(page.locator("#quality")).to_have_text(re.compile(r"^Video"))
    throttle(page)  # mid-stream
    expect(page.locator("#quality")).to_have_text(re.compile(r"^Audio only"), timeout=90_000)
    advancing(page, 3.0)
    context.close()


def test_heartbeats_are_bounded_and_checked(jalsa: JalsaRun) -> None:
    port = jalsa.http_port
    import urllib.request

    def beat(session: str, address: str = "203.0.113.7") -> int:
        # As the nginx in front forwards it (a proxy on this machine is trusted for it).
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/watch/mirror/beat?s={session}",
            method="POST",
            headers={"X-Forwarded-For": address},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            error.close()  # its socket, else closed by the GC in another test
            return error.code

    assert beat("short") == 400
    assert beat("x" * 20 + "<script>") == 400
    answers = [beat(f"bulk-session-{i:08d}") for i in range(40)]
    assert answers.count(204) == 32 and answers.count(429) == 8  # 32 per address
    assert beat("bulk-session-00000000") == 204  # one already counted keeps beating
    assert beat("bulk-session-99999999", "198.51.100.9") == 204  # another address
    jalsa.wait_for(lambda: (hls_listeners(jalsa) or 0) >= 32, 30, "32 heartbeat sessions")
    assert jalsa.http("/watch/nothere")[0] == 404
    assert jalsa.http("/watch-assets/../app.py")[0] == 404


def test_hls_js_is_the_pinned_vendored_file(jalsa: JalsaRun) -> None:
    served = jalsa.http("/watch-assets/hls.light.min.js")[1]
    pinned = re.search(r"`([0-9a-f]{64})`", (VENDOR / "README.md").read_text())
    assert pinned is not None
    assert hashlib.sha256(served).hexdigest() == pinned.group(1)
    assert b"cdn" not in jalsa.http("/watch/mirror")[1].lower()
