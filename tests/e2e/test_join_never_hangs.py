"""The join page never leaves a speaker waiting in silence: whatever is in the way (an
insecure address, no camera/microphone API, a denied permission, no device, a network
that lets no call through, a refused WHIP offer), the page says so in plain words within
5 s of pressing Join, and the operator's console shows why that speaker is not there
("join failed: microphone permission denied") until they join. Headless Chromium, each
case with the launch flags that make it real, against one real jalsa run."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE
from event_toml import event_toml, slot, speaker
from http_status import status_of
from jalsa_run import JalsaRun
from playwright.sync_api import Locator, Page, Playwright, expect, sync_playwright
from speaker_netns import SpeakerNetns

pytestmark = pytest.mark.media

SAID_WITHIN_MS = 5_000  # the bound from pressing Join to the message
FAKE_UI, FAKE_DEVICE = "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"
BASE = [a for a in CHROMIUM_ARGS if a not in (FAKE_UI, FAKE_DEVICE)]
SPEAKERS = ("guest", "late", "field", "kiosk")  # who join from the browser


@pytest.fixture(scope="module")
def jalsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    work = tmp_path_factory.mktemp("never-hangs")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "Never Hangs",
            speakers=[speaker("host", source="testsrc"), *map(speaker, SPEAKERS)],
            rundown=[slot("host", "10m"), *(slot(s, "1m") for s in SPEAKERS)],
        )
    )
    run = JalsaRun(event, work / "state")
    run.args = ("--http", f"0.0.0.0:{run.http_port}")  # the speaker's namespace reaches it too
    with run:
        run.wait_ready()
        yield run


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@contextmanager
def _page(playwright: Playwright, *args: str, executable: str = CHROMIUM) -> Iterator[Page]:
    """A page of a Chromium launched with ``BASE`` + ``args``; closed after."""
    browser = playwright.chromium.launch(executable_path=executable, args=[*BASE, *args])
    try:
        yield browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
    finally:
        browser.close()


def _press_join(page: Page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="Join").click()


def _problems(jalsa: JalsaRun) -> dict[str, dict[str, object]]:
    """/api/state's failed joins, by speaker."""
    problems: dict[str, dict[str, object]] = json.loads(
        jalsa.http("/api/state", token=jalsa.token())[1]
    )["join_problems"]
    return problems


def _console_card(jalsa: JalsaRun, page: Page, speaker_id: str) -> Locator:
    """The speaker's card in the green room of an operator's console opened beside ``page``."""
    console = page.context.browser.new_page(viewport=LAPTOP)  # type: ignore[union-attr,arg-type]
    console.goto(f"http://127.0.0.1:{jalsa.http_port}/#token={jalsa.token()}")
    expect(console.locator("#link")).to_have_attribute("data-transport", "live", timeout=10_000)
    return console.locator(f'#speakers li[data-key="{speaker_id}"]')


def _report(link: str, problem: str) -> int:
    """What the join page at ``link`` tells jalsa when it gives up; the response's status."""
    request = urllib.request.Request(
        f"{link}/problem", data=json.dumps({"problem": problem}).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    return status_of(request)


def _says(page: Page, *words: str) -> str:
    problem = page.get_by_role("alert")
    for word in words:
        expect(problem).to_contain_text(word, timeout=SAID_WITHIN_MS)
    return problem.inner_text()


def test_an_insecure_address_says_open_the_https_link(
    jalsa: JalsaRun, playwright: Playwright
) -> None:
    # A name that is not loopback: Chromium treats the page as insecure (no mediaDevices).
    port = jalsa.http_port
    rules = f"--host-resolver-rules=MAP voice-insecure.test 127.0.0.1:{port}"
    with _page(playwright, FAKE_UI, FAKE_DEVICE, rules) as page:
        link = jalsa.links()["guest"].replace(f"127.0.0.1:{port}", f"voice-insecure.test:{port}")
        _press_join(page, link)
        assert page.evaluate("window.isSecureContext") is False
        _says(page, "https://", "camera and microphone")
        expect(page.get_by_role("status")).to_have_text("Cannot join from this address")
        jalsa.wait_for(lambda: _problems(jalsa).get("guest", {}).get("problem") == "insecure",
                       5, "the failed join in /api/state")  # fmt: skip


def test_a_denied_microphone_says_allow_it_and_the_console_shows_it_until_they_join(
    jalsa: JalsaRun, playwright: Playwright
) -> None:
    link = jalsa.links()["guest"]
    with _page(playwright, FAKE_DEVICE) as page:  # no fake UI: Playwright denies the prompt
        page.goto(link)
        # Their other tab gave up a moment ago: jalsa takes one report a second, so the
        # page's own comes too soon (429) and must be told again, not lost.
        jalsa.wait_for(lambda: _report(link, "no_device") == 204, 5, "the other tab's report")
        page.get_by_role("button", name="Join").click()
        _says(page, "microphone is blocked", "Allow it")
        expect(page.get_by_role("status")).to_have_text("Cannot use your microphone")
        expect(page.get_by_role("button", name="Join")).to_be_visible()
        # The operator's green room says why the guest is not there.
        guest = _console_card(jalsa, page, "guest")
        expect(guest.locator(".pill").first).to_have_text("join failed", timeout=5_000)
        expect(guest).to_contain_text("Join failed: microphone permission denied")
        if folder := os.environ.get("JALSA_SCREENSHOTS"):
            guest.screenshot(path=str(Path(folder) / "console-join-failed.png"))
    assert _problems(jalsa)["guest"]["text"] == "microphone permission denied"
    # They allow it and join: the failure is gone from the console and /api/state.
    with _page(playwright, FAKE_UI, FAKE_DEVICE) as page:
        _press_join(page, link)
        guest = _console_card(jalsa, page, "guest")
        expect(guest.locator(".pill").first).to_have_text("joined", timeout=20_000)
        expect(guest).not_to_contain_text("Join failed")
        assert "guest" not in _problems(jalsa)


def test_no_microphone_says_plug_one_in(jalsa: JalsaRun, playwright: Playwright) -> None:
    with _page(playwright, FAKE_UI) as page:  # no fake devices: this machine has none
        _press_join(page, jalsa.links()["guest"])
        _says(page, "No microphone was found", "call the operator")
        jalsa.wait_for(lambda: _problems(jalsa).get("guest", {}).get("problem") == "no_device",
                       5, "the failed join in /api/state")  # fmt: skip


def test_a_network_that_lets_no_call_through_says_so(
    jalsa: JalsaRun, playwright: Playwright, tmp_path: Path
) -> None:
    with SpeakerNetns(tmp_path) as net:
        net.block_udp()  # the page loads (TCP); no ICE check gets out
        origin = net.secure_origin_args(jalsa.http_port)
        with _page(playwright, FAKE_UI, FAKE_DEVICE, *origin, executable=str(net.wrapper)) as page:
            _press_join(page, jalsa.links()["guest"].replace("127.0.0.1", net.jalsa_address))
            _says(page, "network is not letting the call through", "Audio only")
            assert jalsa.metric("jalsa_speaker_connected", speaker="guest") == 0
            jalsa.wait_for(
                lambda: _problems(jalsa).get("guest", {}).get("problem") == "ice_failed",
                5,
                "the failed join in /api/state",
            )


def test_a_refused_offer_says_what_to_do(jalsa: JalsaRun, playwright: Playwright) -> None:
    with _page(playwright, FAKE_UI, FAKE_DEVICE) as page:
        page.goto(jalsa.links()["late"])
        # The operator revokes the link while the page is open: the WHIP offer is refused.
        request = urllib.request.Request(
            f"http://127.0.0.1:{jalsa.http_port}/api/speakers/late/revoke",
            method="POST",
            headers={"Authorization": f"Bearer {jalsa.token()}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["speaker"] == "late"
        page.get_by_role("button", name="Join").click()
        _says(page, "replaced by a newer one", "ask them for a new one")
        expect(page.get_by_role("status")).to_have_text("Cannot join with this link")


def test_a_browser_without_the_media_api_says_use_another(
    jalsa: JalsaRun, playwright: Playwright
) -> None:
    """A secure page in a browser that has no navigator.mediaDevices (an in-app browser,
    a kiosk): the page says to open the link in another browser."""
    with _page(playwright, FAKE_UI, FAKE_DEVICE) as page:
        page.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'mediaDevices', {get: () => undefined})"
        )
        _press_join(page, jalsa.links()["kiosk"])
        assert page.evaluate("window.isSecureContext") is True
        _says(page, "gives the page no camera or microphone", "Chrome, Firefox or Safari")
        jalsa.wait_for(lambda: _problems(jalsa).get("kiosk", {}).get("problem") == "no_api",
                       5, "the failed join in /api/state")  # fmt: skip


def test_an_offer_jalsa_cannot_answer_says_call_the_operator(
    jalsa: JalsaRun, playwright: Playwright
) -> None:
    """jalsa answers the WHIP offer 400 (here: the page's offer cut short on its way): no
    retry can help, so the page stops trying, quotes jalsa and says to call the operator."""
    with _page(playwright, FAKE_UI, FAKE_DEVICE) as page:
        page.route(
            "**/whip/**",
            lambda route: (
                route.continue_(post_data="v=0\r\n")
                if route.request.method == "POST"
                else route.continue_()
            ),
        )
        _press_join(page, jalsa.links()["field"])
        said = _says(page, "jalsa refused the call: ", "Call the operator")
        expect(page.get_by_role("status")).to_have_text("Cannot join")
        jalsa.wait_for(lambda: _problems(jalsa).get("field", {}).get("problem") == "refused",
                       5, "the failed join in /api/state")  # fmt: skip
    assert "HTTP" not in said  # jalsa's own words, not a bare status
    print(said)


JOIN_PAGE_BUDGET = 150_000  # bytes before Join can be pressed (the target)


def test_the_page_is_small_before_join_can_be_pressed(
    jalsa: JalsaRun, playwright: Playwright
) -> None:
    with _page(playwright, FAKE_UI, FAKE_DEVICE) as page:
        page.goto(jalsa.links()["guest"])
        expect(page.get_by_role("button", name="Join")).to_be_enabled()
        # Everything fetched so far, as the browser counts it (headers included).
        sizes = page.evaluate(
            """() => performance.getEntriesByType("navigation")
                 .concat(performance.getEntriesByType("resource"))
                 .map((e) => [e.name.split("/").pop().split("?")[0], e.transferSize])"""
        )
        total = sum(size for _, size in sizes)
        print(f"join page before Join: {total} bytes over the wire: {sizes}")
        assert {name for name, _ in sizes} >= {"join.css", "join.js", "join-link.js"}
        assert 0 < total < JOIN_PAGE_BUDGET
