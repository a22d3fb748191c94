"""The operator's desk in a real browser: headless Chromium drives the console of a real
``jalsa run`` (test-pattern speakers, a browser speaker, a recording and the HLS mirror),
and the API says whether each click did what it says.

One jalsa run for the module; the tests run in order on the same show (each one reads
where the rundown stands before it acts), and the last one ends the event.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium import LAPTOP, PHONE
from event_toml import event_toml, slot, speaker
from http_status import status_of
from jalsa_run import JalsaRun
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

pytestmark = [pytest.mark.media, pytest.mark.timeout(240)]

EVENT = "Console Rally"
NAMES = {"host": "Stage Secretary", "blue": "Blue Speaker", "green": "Green Speaker"}
SECONDS = 10_000  # Playwright's timeouts are milliseconds: "within 10 s"


@pytest.fixture(scope="module")
def jalsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    work = tmp_path_factory.mktemp("console")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            EVENT,
            event={"on_end": "slate"},
            speakers=[
                speaker("host", NAMES["host"], title="Host", source="testsrc"),
                speaker("blue", NAMES["blue"], source="testsrc"),
                speaker("green", NAMES["green"], source="testsrc"),
                speaker("guest", "Guest From The Field"),  # joins from the browser
            ],
            rundown=[slot(s, "10m") for s in ("host", "blue", "green") * 3],
            destinations=[
                {"name": "recording", "platform": "custom", "url": "recordings/show.mkv"},
                {"name": "mirror", "platform": "custom", "url": "hls"},
            ],
        )
    )
    with JalsaRun(event, work / "state") as run:
        run.wait_ready()
        yield run


def open_console(jalsa: JalsaRun, browser: Browser, viewport: dict[str, int] = LAPTOP) -> Page:
    page = browser.new_context(viewport=viewport).new_page()  # type: ignore[arg-type]
    page.goto(f"http://127.0.0.1:{jalsa.http_port}/#token={jalsa.token()}")
    expect(page.locator("#link")).to_have_attribute("data-transport", "live", timeout=SECONDS)
    return page


@pytest.fixture
def console(jalsa: JalsaRun, browser: Browser) -> Iterator[Page]:
    page = open_console(jalsa, browser)
    yield page
    page.context.close()


def call(jalsa: JalsaRun, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{jalsa.http_port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {jalsa.token()}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def rundown(jalsa: JalsaRun) -> dict[str, Any]:
    status, body = call(jalsa, "GET", "/api/rundown")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def on_air(jalsa: JalsaRun) -> dict[str, Any]:
    return next(i for i in rundown(jalsa)["items"] if i["state"] == "on")


def item(jalsa: JalsaRun, item_id: str) -> dict[str, Any]:
    return next(i for i in rundown(jalsa)["items"] if i["id"] == item_id)


def upcoming(jalsa: JalsaRun) -> list[dict[str, Any]]:
    return [i for i in rundown(jalsa)["items"] if i["state"] in ("next", "upcoming")]


def wait_rundown(jalsa: JalsaRun, check: Any, what: str, timeout: float = 5) -> dict[str, Any]:
    return jalsa.wait_for(lambda: (r := rundown(jalsa)) and check(r) and r, timeout, what)


def name_of(speaker_id: str) -> str:
    return NAMES.get(speaker_id, speaker_id)


def confirm(page: Page, button: str) -> None:
    """Answer the console's "are you sure?" dialog with ``button``."""
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=button, exact=True).click()
    expect(dialog).to_be_hidden()


# -- opening the console ----------------------------------------------------------------------
def test_the_console_opens_from_the_token_link(jalsa: JalsaRun, browser: Browser) -> None:
    page = browser.new_context(viewport=LAPTOP).new_page()  # type: ignore[arg-type]
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        page.goto(f"http://127.0.0.1:{jalsa.http_port}/#token={jalsa.token()}")
        expect(page.get_by_role("heading", name=EVENT)).to_be_visible(timeout=SECONDS)
        expect(page.locator("#link")).to_have_attribute("data-transport", "live")
        assert "token" not in page.url  # taken from the link, then out of the address bar
        assert sockets and all(jalsa.token() not in url for url in sockets)
        expect(page.locator("#shortcuts")).to_contain_text("N Next")
        for name in ("Next", "Hold", "Resume", "+1 min", "+5 min", "End event"):
            expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
        expect(page.locator("#onair")).to_have_text(name_of(on_air(jalsa)["speaker"]))
    finally:
        page.context.close()


def test_a_wrong_token_asks_for_the_token(jalsa: JalsaRun, browser: Browser) -> None:
    page = browser.new_context(viewport=LAPTOP).new_page()  # type: ignore[arg-type]
    try:
        page.goto(f"http://127.0.0.1:{jalsa.http_port}/#token=not-the-operator-token")
        expect(page.get_by_label("Operator token")).to_be_visible(timeout=SECONDS)
        page.get_by_label("Operator token").fill(jalsa.token())
        page.get_by_role("button", name="Open console").click()
        expect(page.locator("#link")).to_have_attribute("data-transport", "live", timeout=SECONDS)
    finally:
        page.context.close()


# -- phone and laptop (first: the pictures show the show as planned) -------------------------
def upload_message(jalsa: JalsaRun, clip: Path) -> None:
    """The guest uploads a recorded message by their link, as the join page does."""
    data = clip.read_bytes()
    request = urllib.request.Request(
        jalsa.links()["guest"] + "/message",
        method="POST",
        headers={"Upload-Length": str(len(data))},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        location = response.headers["Location"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{jalsa.http_port}{location}",
        data=data,
        method="PATCH",
        headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204


@pytest.fixture(scope="module")
def message(jalsa: JalsaRun, clips: Path) -> None:
    upload_message(jalsa, clips / "green.mp4")


@pytest.mark.parametrize(
    ("viewport", "picture"), [(PHONE, "console-phone.png"), (LAPTOP, "console.png")]
)
@pytest.mark.usefixtures("guest_joined", "message")
def test_phone_and_laptop_layouts(
    jalsa: JalsaRun, browser: Browser, tmp_path: Path, viewport: dict[str, int], picture: str
) -> None:
    """Everything fits the width (no sideways scrolling) and every button is big enough
    to hit; the screenshots go to $JALSA_SCREENSHOTS (docs/, to refresh the README's)."""
    page = open_console(jalsa, browser, viewport)
    try:
        expect(page.locator("#peak-value")).to_contain_text("dBFS", timeout=3000)
        expect(page.locator("#preview")).to_have_attribute("src", re.compile(r"^blob:"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"]
        small = page.evaluate(
            """[...document.querySelectorAll('button')].filter((b) => b.offsetParent !== null)
                 .filter((b) => b.getBoundingClientRect().height < 30).map((b) => b.textContent)"""
        )
        assert small == []
        card = page.locator('#speakers li[data-key="guest"]')
        expect(card).to_contain_text("joined", timeout=5000)
        expect(card).to_contain_text("kb/s", timeout=10_000)  # the link's quality
        folder = Path(os.environ.get("JALSA_SCREENSHOTS", tmp_path))
        page.screenshot(path=str(folder / picture))
    finally:
        page.context.close()


# -- the rundown ------------------------------------------------------------------------------
def test_the_live_channel_updates_the_on_air_panel(jalsa: JalsaRun, console: Page) -> None:
    version = rundown(jalsa)["version"]
    following = upcoming(jalsa)[0]
    status, _ = call(jalsa, "POST", "/api/rundown/next", {"version": version})
    assert status == 200
    # Pushed, not polled: the page stays on the live channel throughout.
    expect(console.locator("#onair")).to_have_text(name_of(following["speaker"]), timeout=3000)
    row = console.locator(f'#rundown-items li[data-key="{following["id"]}"]')
    expect(row).to_have_attribute("data-state", "on", timeout=3000)
    expect(row.locator(".countdown")).to_contain_text("left")
    expect(console.locator("#link")).to_have_attribute("data-transport", "live")


def test_next_by_button_and_by_key(jalsa: JalsaRun, console: Page) -> None:
    following = upcoming(jalsa)[0]
    console.get_by_role("button", name="Next", exact=True).click()
    wait_rundown(jalsa, lambda r: item(jalsa, following["id"])["state"] == "on", "next on air")
    expect(console.locator("#notice")).to_have_text("Next: done")
    following = upcoming(jalsa)[0]
    expect(console.locator(f'#rundown-items li[data-key="{following["id"]}"]')).to_have_attribute(
        "data-state", "next"
    )
    console.keyboard.press("n")
    wait_rundown(jalsa, lambda r: item(jalsa, following["id"])["state"] == "on", "N: next on air")


def test_hold_with_text_then_resume(jalsa: JalsaRun, console: Page) -> None:
    held = on_air(jalsa)
    console.get_by_role("button", name="Hold", exact=True).click()
    dialog = console.get_by_role("dialog")
    dialog.get_by_label("Stand-by text").fill("Back in two minutes")
    dialog.get_by_role("button", name="Hold", exact=True).click()
    wait_rundown(jalsa, lambda r: r["state"] == "hold", "the hold")
    assert rundown(jalsa)["hold"] == "Back in two minutes"
    expect(console.get_by_role("alert")).to_contain_text("Back in two minutes")
    resume = console.get_by_role("button", name="Resume", exact=True)
    expect(resume).to_be_enabled()
    resume.click()
    wait_rundown(jalsa, lambda r: r["state"] == "on", "resumed")
    assert on_air(jalsa)["id"] == held["id"]  # the same item, with the time it had left
    expect(console.locator("#banners")).to_be_empty()
    expect(resume).to_be_disabled()


def test_plus_one_and_five_minutes_extend_the_item_on_air(jalsa: JalsaRun, console: Page) -> None:
    now = on_air(jalsa)
    console.get_by_role("button", name="+1 min", exact=True).click()
    wait_rundown(
        jalsa, lambda r: item(jalsa, now["id"])["duration"] == now["duration"] + 60, "+1 min"
    )
    console.get_by_role("button", name="+5 min", exact=True).click()
    wait_rundown(
        jalsa, lambda r: item(jalsa, now["id"])["duration"] == now["duration"] + 360, "+5 min"
    )
    row = console.locator(f'#rundown-items li[data-key="{now["id"]}"]')
    expect(row.locator(".duration")).to_have_text("16:00")


def test_take_a_speaker_to_air_from_the_green_room(jalsa: JalsaRun, console: Page) -> None:
    planned = {i["id"] for i in rundown(jalsa)["items"]}
    console.get_by_label("Take to air for").fill("2m")
    console.get_by_role("button", name=f"Take to air {NAMES['green']}").click()
    wait_rundown(
        jalsa,
        lambda r: on_air(jalsa)["speaker"] == "green" and on_air(jalsa)["duration"] == 120,
        "green on air for 2 min",
    )
    assert on_air(jalsa)["id"] not in planned  # an unplanned item, put on now
    expect(console.locator("#onair")).to_have_text(NAMES["green"])


def test_put_on_air_now_form(jalsa: JalsaRun, console: Page) -> None:
    form = console.locator("#take-form")
    form.get_by_label("Speaker").select_option(label=NAMES["host"])
    form.get_by_label("Duration").fill("90s")
    form.get_by_role("button", name="Put on air now").click()
    wait_rundown(
        jalsa,
        lambda r: on_air(jalsa)["speaker"] == "host" and on_air(jalsa)["duration"] == 90,
        "host on air for 90 s",
    )


def test_take_skip_and_move_rundown_items(jalsa: JalsaRun, console: Page) -> None:
    second = upcoming(jalsa)[1]
    console.get_by_role(
        "button", name=f"Take {name_of(second['speaker'])} (item {second['id']})"
    ).click()
    wait_rundown(jalsa, lambda r: item(jalsa, second["id"])["state"] == "on", "take an item")

    skipped = upcoming(jalsa)[-1]
    skip = console.get_by_role(
        "button", name=f"Skip {name_of(skipped['speaker'])} (item {skipped['id']})"
    )
    skip.click()
    confirm(console, "Cancel")
    assert item(jalsa, skipped["id"])["state"] != "skipped"
    skip.click()
    confirm(console, "Skip")
    wait_rundown(jalsa, lambda r: item(jalsa, skipped["id"])["state"] == "skipped", "skipped")

    before = [i["id"] for i in upcoming(jalsa)]
    a, b = before[0], before[1]
    console.get_by_role(
        "button", name=f"Move up {name_of(item(jalsa, b)['speaker'])} (item {b})"
    ).click()
    wait_rundown(jalsa, lambda r: [i["id"] for i in upcoming(jalsa)][:2] == [b, a], "moved up")
    console.get_by_role(
        "button", name=f"Move down {name_of(item(jalsa, b)['speaker'])} (item {b})"
    ).click()
    wait_rundown(jalsa, lambda r: [i["id"] for i in upcoming(jalsa)][:2] == [a, b], "moved down")


def test_add_an_item_to_the_rundown(jalsa: JalsaRun, console: Page) -> None:
    count = len(rundown(jalsa)["items"])
    form = console.locator("#insert-form")
    form.get_by_label("Speaker").select_option(label=NAMES["blue"])
    form.get_by_label("Duration").fill("3m")
    form.get_by_role("button", name="Add item").click()
    wait_rundown(jalsa, lambda r: len(r["items"]) == count + 1, "an item added")
    assert upcoming(jalsa)[0]["speaker"] == "blue" and upcoming(jalsa)[0]["duration"] == 180


def test_two_consoles_see_each_others_changes(jalsa: JalsaRun, browser: Browser) -> None:
    first, second = open_console(jalsa, browser), open_console(jalsa, browser, PHONE)
    try:
        now = on_air(jalsa)
        first.get_by_role("button", name="+1 min", exact=True).click()
        row = second.locator(f'#rundown-items li[data-key="{now["id"]}"] .duration')
        minutes = int(now["duration"] // 60) + 1
        expect(row).to_have_text(f"{minutes}:{int(now['duration'] % 60):02d}", timeout=2000)

        second.get_by_role("button", name="Hold", exact=True).click()
        second.get_by_role("dialog").get_by_label("Stand-by text").fill("Seen by both")
        second.get_by_role("dialog").get_by_role("button", name="Hold", exact=True).click()
        expect(first.get_by_role("alert")).to_contain_text("Seen by both", timeout=2000)
        first.keyboard.press("r")
        expect(second.locator("#banners")).to_be_empty(timeout=2000)
        assert rundown(jalsa)["state"] == "on"
    finally:
        first.context.close()
        second.context.close()


def test_a_stale_write_shows_the_409_message(jalsa: JalsaRun, browser: Browser) -> None:
    """The page misses a change (its rundown frames are held back) and writes with the
    version it saw: the server answers 409 and the page says so and catches up."""
    frozen = {"rundown": False}

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def to_page(message: str | bytes) -> None:
            if frozen["rundown"] and '"type":"rundown"' in str(message):
                return
            ws.send(message)

        server.on_message(to_page)

    page = browser.new_context(viewport=LAPTOP).new_page()  # type: ignore[arg-type]
    try:
        page.route_web_socket("**/api/live", relay)
        page.goto(f"http://127.0.0.1:{jalsa.http_port}/#token={jalsa.token()}")
        expect(page.locator("#link")).to_have_attribute("data-transport", "live", timeout=SECONDS)
        seen = rundown(jalsa)
        expect(page.locator("#rundown-state")).to_contain_text(f"version {seen['version']}")
        frozen["rundown"] = True
        later = upcoming(jalsa)[-1]
        status, _ = call(
            jalsa,
            "PATCH",
            f"/api/rundown/items/{later['id']}",
            {"version": seen["version"], "duration": "4m"},
        )
        assert status == 200
        page.get_by_role("button", name="+1 min", exact=True).click()
        notice = page.locator("#notice")
        expect(notice).to_contain_text("The rundown changed")
        expect(notice).to_contain_text("refreshed")
        # The page took the current rundown from the 409 answer.
        expect(page.locator("#rundown-state")).to_contain_text(f"version {seen['version'] + 1}")
        assert rundown(jalsa)["version"] == seen["version"] + 1  # the stale write changed nothing
    finally:
        page.context.close()


# -- the green room and program audio ---------------------------------------------------------
def test_mute_unmute_and_gain(jalsa: JalsaRun, console: Page) -> None:
    def blue() -> dict[str, Any]:
        status, body = call(jalsa, "GET", "/api/audio")
        assert status == 200, body
        return body["speakers"]["blue"]  # type: ignore[no-any-return]

    mute = console.get_by_role("button", name=f"Mute {NAMES['blue']}")
    mute.click()
    jalsa.wait_for(lambda: blue()["muted"], 5, "blue muted")
    unmute = console.get_by_role("button", name=f"Unmute {NAMES['blue']}")
    expect(unmute).to_have_attribute("aria-pressed", "true")
    unmute.click()
    jalsa.wait_for(lambda: not blue()["muted"], 5, "blue unmuted")
    gain = console.get_by_label("Gain").nth(1)  # blue is the second speaker
    gain.evaluate("(g) => { g.value = '6'; g.dispatchEvent(new Event('change')); }")
    jalsa.wait_for(lambda: blue()["gain_db"] == 6, 5, "blue at +6 dB")
    gain.evaluate("(g) => { g.value = '0'; g.dispatchEvent(new Event('change')); }")
    jalsa.wait_for(lambda: blue()["gain_db"] == 0, 5, "blue at 0 dB")


def test_program_audio_meters(jalsa: JalsaRun, console: Page) -> None:
    peak = console.get_by_role("meter", name="Program peak level")
    expect(console.locator("#peak-value")).to_contain_text("dBFS", timeout=3000)
    # A test pattern's tone is on air: the meter reads well above silence.
    level = float(peak.get_attribute("aria-valuenow") or "-60")
    assert level > -40
    expect(console.get_by_role("meter", name="Program RMS level")).to_be_visible()


@pytest.mark.usefixtures("message")
def test_preview_and_approve_a_message(jalsa: JalsaRun, console: Page) -> None:
    def messages() -> list[dict[str, Any]]:
        status, body = call(jalsa, "GET", "/api/messages")
        assert status == 200, body
        return body["messages"]  # type: ignore[no-any-return]

    (uploaded,) = messages()
    assert uploaded["status"] == "pending"
    card = console.locator(f'#messages li[data-key="{uploaded["id"]}"]')
    expect(card).to_contain_text("pending", timeout=5000)
    # The player plays the file fetched with the token (a media element cannot send it).
    card.get_by_role("button", name="Preview").click()
    player = card.locator("video, audio")
    expect(player).to_have_attribute("src", re.compile("^blob:"))
    player.evaluate(
        "(m) => new Promise((ok) => m.readyState >= 1 ? ok() : m.onloadedmetadata = ok)"
    )
    assert player.evaluate("(m) => m.duration") == pytest.approx(3, abs=0.5)
    card.get_by_role("button", name="Approve").click()
    jalsa.wait_for(lambda: messages()[0]["status"] == "approved", 5, "the message approved")
    expect(card.locator(".pill")).to_have_text("approved", timeout=3000)
    card.get_by_role("button", name="Delete").click()
    confirm(console, "Delete")
    jalsa.wait_for(lambda: messages() == [], 5, "the message deleted")
    expect(card).to_have_count(0, timeout=3000)


def test_an_api_that_is_not_there_says_so(jalsa: JalsaRun, console: Page) -> None:
    console.route(
        "**/api/speakers/guest/revoke",
        lambda route: route.fulfill(status=404, json={"detail": "Not Found"}),
    )
    console.get_by_role("button", name="Revoke link Guest From The Field").click()
    confirm(console, "Revoke link")
    expect(console.locator("#notice")).to_contain_text("not available on this server yet")


def test_revoke_a_speakers_link(jalsa: JalsaRun, console: Page) -> None:
    link = jalsa.links()["guest"]
    assert status_of(link) == 200
    console.get_by_role("button", name="Revoke link Guest From The Field").click()
    confirm(console, "Revoke link")
    expect(console.locator("#notice")).to_contain_text("done")
    jalsa.wait_for(lambda: status_of(link) == 403, 5, "the old link refused")


# -- destinations ------------------------------------------------------------------------------
def destination_state(jalsa: JalsaRun, name: str) -> str | None:
    _, listing = call(jalsa, "GET", "/api/destinations")
    return next((d["state"] for d in listing if d["name"] == name), None)


def test_pause_and_resume_a_destination(jalsa: JalsaRun, console: Page) -> None:
    card = console.locator('#destinations li[data-key="mirror"]')
    console.get_by_role("button", name="Pause mirror").click()
    jalsa.wait_for(lambda: destination_state(jalsa, "mirror") == "paused", 5, "mirror paused")
    expect(card.locator(".pill")).to_have_text("paused", timeout=3000)
    assert destination_state(jalsa, "recording") == "live"  # the other one goes on
    console.get_by_role("button", name="Resume mirror").click()
    jalsa.wait_for(lambda: destination_state(jalsa, "mirror") == "live", 15, "mirror live again")
    expect(card.locator(".pill")).to_have_text("live", timeout=3000)


def test_add_and_remove_a_destination(jalsa: JalsaRun, console: Page) -> None:
    console.locator("#add-destination summary").click()
    form = console.locator("#destination-form")
    expect(form.get_by_label("Sent by")).to_be_hidden()  # the event has no edges
    form.get_by_label("Name").fill("extra")
    form.get_by_label("URL").fill("recordings/extra.mkv")
    form.get_by_role("button", name="Add destination").click()
    jalsa.wait_for(lambda: destination_state(jalsa, "extra") == "live", 10, "extra live")
    expect(console.locator('#destinations li[data-key="extra"]')).to_contain_text("extra (custom)")
    console.get_by_role("button", name="Remove extra").click()
    confirm(console, "Remove")
    jalsa.wait_for(lambda: destination_state(jalsa, "extra") is None, 10, "extra removed")
    expect(console.locator('#destinations li[data-key="extra"]')).to_have_count(0, timeout=3000)


def test_a_refused_destination_says_why(jalsa: JalsaRun, console: Page) -> None:
    console.locator("#add-destination summary").click()
    form = console.locator("#destination-form")
    form.get_by_label("Name").fill("yt2")
    form.get_by_label("Platform").select_option("youtube")
    form.get_by_role("button", name="Add destination").click()  # no key
    expect(console.locator("#notice")).to_contain_text("key")
    assert destination_state(jalsa, "yt2") is None


# -- when WebSockets are blocked -------------------------------------------------------------
def test_polling_when_websockets_are_blocked(jalsa: JalsaRun, browser: Browser) -> None:
    page = browser.new_context(viewport=LAPTOP).new_page()  # type: ignore[arg-type]
    try:
        page.route_web_socket("**/api/live", lambda ws: ws.close())
        page.goto(f"http://127.0.0.1:{jalsa.http_port}/#token={jalsa.token()}")
        link = page.locator("#link")
        expect(link).to_have_attribute("data-transport", "polling", timeout=SECONDS)
        following = upcoming(jalsa)[0]
        status, _ = call(jalsa, "POST", "/api/rundown/next", {"version": rundown(jalsa)["version"]})
        assert status == 200
        expect(page.locator("#onair")).to_have_text(name_of(following["speaker"]), timeout=5000)
    finally:
        page.context.close()


# -- last: the end ---------------------------------------------------------------------------
def test_end_event_asks_first(jalsa: JalsaRun, console: Page) -> None:
    end = console.get_by_role("button", name="End event", exact=True)
    end.click()
    confirm(console, "Cancel")
    assert rundown(jalsa)["state"] == "on"
    end.click()
    confirm(console, "End event")
    wait_rundown(jalsa, lambda r: r["state"] == "ended", "the end")
    expect(end).to_be_disabled(timeout=3000)
    expect(console.get_by_role("button", name="Next", exact=True)).to_be_disabled()
