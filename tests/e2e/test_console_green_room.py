"""The green room's thumbnails and "Copy link" in a real browser: headless Chromium opens
the console of a real ``jalsa run`` (test-pattern speakers and a browser speaker who
joins with Chromium's fake camera), and what the page shows is checked against the API.

One jalsa run for the module; nothing here changes the rundown.
"""

from __future__ import annotations

import io
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from chromium import LAPTOP, PHONE
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun
from PIL import Image
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.media, pytest.mark.timeout(180)]

SECONDS = 10_000  # Playwright's milliseconds
THUMBNAILS = "/thumbnail.jpg"

# Counts the page's blob URLs made and given back, and the thumbnail requests it makes.
COUNTING = """
(() => {
  const made = URL.createObjectURL.bind(URL), gone = URL.revokeObjectURL.bind(URL);
  const live = new Set();
  window.__blobs = live;
  URL.createObjectURL = (blob) => { const url = made(blob); live.add(url); return url; };
  URL.revokeObjectURL = (url) => { live.delete(url); gone(url); };
  window.__thumbs = 0;
  const fetched = window.fetch.bind(window);
  window.fetch = (path, init) => {
    if (String(path).endsWith("/thumbnail.jpg")) window.__thumbs += 1;
    return fetched(path, init);
  };
})();
"""


@pytest.fixture(scope="module")
def jalsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    work = tmp_path_factory.mktemp("green-room")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "Green Room Rally",
            event={"on_end": "slate"},
            speakers=[
                speaker("host", "Stage Secretary", title="Host", source="testsrc"),
                speaker("blue", "Blue Speaker", source="testsrc"),
                speaker("later", "Later Speaker", source="testsrc"),
                speaker("guest", "Guest From The Field"),  # joins from the browser
            ],
            rundown=[slot("host", "20m"), slot("blue", "20m"), slot("later", "20m")],
            destinations=[{"name": "mirror", "platform": "custom", "url": "hls"}],
        )
    )
    with JalsaRun(event, work / "state") as run:
        run.wait_ready()
        yield run


def open_console(
    jalsa: JalsaRun,
    browser: Browser,
    viewport: dict[str, int] = LAPTOP,
    *,
    clipboard: bool = True,
    script: str = COUNTING,
) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    if clipboard:
        context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=f"http://127.0.0.1:{jalsa.http_port}"
        )
    context.add_init_script(script)
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{jalsa.http_port}/#token={jalsa.token()}")
    expect(page.locator("#link")).to_have_attribute("data-transport", "live", timeout=SECONDS)
    return page


@pytest.fixture
def console(jalsa: JalsaRun, browser: Browser) -> Iterator[Page]:
    page = open_console(jalsa, browser)
    yield page
    page.context.close()


def thumbnail(jalsa: JalsaRun, speaker_id: str) -> tuple[int, bytes]:
    return jalsa.http(f"/api/speakers/{speaker_id}{THUMBNAILS}", token=jalsa.token())


def card(page: Page, speaker_id: str) -> Any:
    return page.locator(f'#speakers li[data-key="{speaker_id}"]')


# A card's picture has loaded, at the thumbnail's size
LOADED = """(id) => {
  const i = document.querySelector(`#speakers li[data-key='${id}'] img.thumb`);
  return i && !i.hidden && i.complete && i.naturalWidth === 256;
}"""
BLOBS_SHOWN = """[...document.querySelectorAll('#speakers img.thumb')]
  .filter((i) => i.src.startsWith('blob:')).length"""


# -- thumbnails -------------------------------------------------------------------------------
@pytest.mark.usefixtures("guest_joined")
def test_each_card_shows_the_speakers_latest_picture(jalsa: JalsaRun, console: Page) -> None:
    # The API: the speaker on air and the live guest have a picture; a speaker whose
    # media is not open (not on air, not next within seconds) has none.
    status, data = thumbnail(jalsa, "host")
    assert status == 200 and Image.open(io.BytesIO(data)).size == (256, 144)
    red = Image.open(io.BytesIO(data)).convert("RGB").getpixel((240, 70))  # right of centre
    assert red[0] > 150 and red[1] < 90  # type: ignore[index]  # the host's card is red
    jalsa.wait_for(lambda: thumbnail(jalsa, "guest")[0] == 200, 10, "the guest's picture")
    assert thumbnail(jalsa, "later")[0] == 404
    assert thumbnail(jalsa, "nobody")[0] == 404
    # The page: a picture in each card that has one, "no picture" in the other.
    for speaker_id in ("host", "guest"):
        card(console, speaker_id).scroll_into_view_if_needed()  # only cards on screen load
        console.wait_for_function(
            LOADED,
            arg=speaker_id,
            timeout=SECONDS,
        )
    later = card(console, "later")
    later.scroll_into_view_if_needed()
    expect(later.locator(".thumb.none")).to_be_visible(timeout=5000)
    expect(later.locator("img.thumb")).to_be_hidden()
    alt = card(console, "host").locator("img.thumb").get_attribute("alt")
    assert alt is not None and "Stage Secretary" in alt


def test_thumbnails_refresh_once_a_second_without_growing(jalsa: JalsaRun, console: Page) -> None:
    console.wait_for_function("() => window.__thumbs > 0", timeout=SECONDS)
    before = console.evaluate("window.__thumbs")
    first = console.evaluate(
        "document.querySelector('#speakers li[data-key=\"host\"] img.thumb').src"
    )
    console.wait_for_timeout(4000)
    requests = console.evaluate("window.__thumbs") - before
    cards = console.evaluate(
        "[...document.querySelectorAll('#speakers li')].filter((li) => li.onScreen).length"
    )
    # about one request per card on screen per second
    assert cards >= 2
    assert cards * 2.5 <= requests <= cards * 5, (requests, cards)
    later = console.evaluate(
        "document.querySelector('#speakers li[data-key=\"host\"] img.thumb').src"
    )
    assert later != first and later.startswith("blob:")  # a new picture
    # Every replaced picture was given back: one blob URL per card showing a picture, and
    # the program preview's.
    shown = console.evaluate(BLOBS_SHOWN)
    assert console.evaluate("window.__blobs.size") <= shown + 2


def test_a_hidden_tab_fetches_no_thumbnails(console: Page) -> None:
    console.wait_for_function("() => window.__thumbs > 0", timeout=SECONDS)
    console.evaluate(
        """Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
           document.dispatchEvent(new Event("visibilitychange"));"""
    )
    console.wait_for_timeout(1200)  # a round already on its way may finish
    before = console.evaluate("window.__thumbs")
    console.wait_for_timeout(3000)
    assert console.evaluate("window.__thumbs") == before
    console.evaluate(
        """Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
           document.dispatchEvent(new Event("visibilitychange"));"""
    )
    console.wait_for_function(f"() => window.__thumbs > {before}", timeout=3000)


def test_a_card_off_screen_is_not_fetched(jalsa: JalsaRun, browser: Browser) -> None:
    page = open_console(jalsa, browser, PHONE)  # one column: the green room is below
    try:
        page.wait_for_timeout(3000)
        assert page.evaluate("window.__thumbs") == 0
        card(page, "host").scroll_into_view_if_needed()
        page.wait_for_function("() => window.__thumbs > 0", timeout=5000)
        expect(card(page, "host").locator("img.thumb")).to_be_visible(timeout=5000)
    finally:
        page.context.close()


# -- Copy link --------------------------------------------------------------------------------
def test_copy_link_puts_a_working_join_link_on_the_clipboard(
    jalsa: JalsaRun, console: Page
) -> None:
    guest = card(console, "guest")
    console.bring_to_front()  # the clipboard takes writes from the focused page only
    guest.get_by_role("button", name="Copy link Guest From The Field").click()
    expect(console.locator("#notice")).to_contain_text("Link copied", timeout=5000)
    expect(guest.get_by_role("button", name="Link copied Guest From The Field")).to_be_visible()
    url = console.evaluate("navigator.clipboard.readText()")
    assert url.startswith(f"http://127.0.0.1:{jalsa.http_port}/join/guest.")
    with urllib.request.urlopen(url, timeout=10) as response:  # the join page opens
        assert response.status == 200
        assert "Join" in response.read().decode()
    expect(guest.locator(".link-box")).to_be_hidden()
    # Only live speakers have a link to copy.
    expect(
        card(console, "host").get_by_role("button", name="Copy link Stage Secretary")
    ).to_be_hidden()


def test_copy_link_without_a_clipboard_shows_the_link(jalsa: JalsaRun, browser: Browser) -> None:
    page = open_console(
        jalsa,
        browser,
        clipboard=False,
        script=COUNTING
        + "Object.defineProperty(navigator, 'clipboard', { get: () => undefined });",
    )
    try:
        guest = card(page, "guest")
        guest.get_by_role("button", name="Copy link Guest From The Field").click()
        field = guest.get_by_label("Join link for Guest From The Field")
        expect(field).to_be_visible(timeout=5000)
        prefix = re.escape(f"http://127.0.0.1:{jalsa.http_port}/join/guest.")
        expect(field).to_have_value(re.compile(prefix + r"\S+$"))
        expect(page.locator("#notice")).to_contain_text("clipboard is not available")
        # the link is selected, ready for Ctrl-C
        assert page.evaluate("document.activeElement.classList.contains('link-field')")
    finally:
        page.context.close()
