"""Fixtures the console tests share: one Chromium per module, and the browser speaker
waiting in the green room of the module's own ``jalsa`` run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, PHONE
from jalsa_run import JalsaRun
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def guest_joined(jalsa: JalsaRun, browser: Browser) -> Iterator[None]:
    """The browser speaker "guest" in the green room (Chromium's fake camera and microphone)."""
    context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(jalsa.links()["guest"])
    page.get_by_role("button", name="Join").click()
    jalsa.wait_for(
        lambda: jalsa.metric("jalsa_speaker_connected", speaker="guest") == 1, 30, "guest joined"
    )
    yield
    context.close()
