"""The console's "Tell listeners where to go" box, in Chromium on a real jalsa run.

A real outage takes probe agents in two cities (tests/e2e/test_monitoring_e2e.py makes
one and checks the ``redirect`` that /api/monitoring and the webhook carry). Here the
console's own live channel is passed through Playwright, which adds an active outage and
its notice — made by :func:`monitoring.redirect.redirect_for`, as jalsa makes it — to the
``monitoring`` frames jalsa sends: what is tested is what the console shows and copies.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from chromium import LAPTOP
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun
from playwright.sync_api import Browser, WebSocketRoute, expect

from monitoring.outage import Outage
from monitoring.redirect import redirect_for

pytestmark = pytest.mark.media

OUTAGE = Outage("platform", "youtube", frozenset({"k1", "l1"}), frozenset({"Karachi", "Lahore"}), 0)


@pytest.fixture(scope="module")
def jalsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    work = tmp_path_factory.mktemp("redirect")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "Redirect Jalsa",
            event={"on_end": "slate"},
            speakers=[speaker("host", source="testsrc")],
            rundown=[slot("host", "10m")],
            destinations=[{"name": "mirror", "url": "hls"}],
        )
    )
    with JalsaRun(event, work / "state") as run:
        run.wait_ready()
        yield run


def with_outage(message: str | bytes) -> str | bytes:
    """A monitoring frame from jalsa, with the outage flagged and its notice."""
    if isinstance(message, bytes) or '"type":"monitoring"' not in message:
        return message
    frame = json.loads(message)
    notice = redirect_for([OUTAGE], "Redirect Jalsa", ["/watch/mirror"])
    frame["data"]["outages"]["active"] = [
        {**dataclasses.asdict(OUTAGE), "cities": ["Karachi", "Lahore"], "vantages": ["k1", "l1"]}
    ]
    frame["data"]["redirect"] = dataclasses.asdict(notice)  # type: ignore[arg-type]
    return json.dumps(frame)


def test_the_console_offers_the_mirror_link_and_a_text(jalsa: JalsaRun, browser: Browser) -> None:
    context = browser.new_context(viewport=LAPTOP)  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))
        server.on_message(lambda message: ws.send(with_outage(message)))

    page.route_web_socket("**/api/live", relay)
    page.goto(f"http://127.0.0.1:{jalsa.http_port}/#token={jalsa.token()}")
    box = page.locator("#redirect")
    expect(box.get_by_role("heading", name="Tell listeners where to go")).to_be_visible(
        timeout=20_000
    )
    link = f"http://127.0.0.1:{jalsa.http_port}/watch/mirror"
    expect(box.get_by_role("link")).to_have_text(link)
    text = page.get_by_label("Text to post")
    expect(text).to_have_value(
        "YouTube is not reachable in Karachi and Lahore. Watch Redirect Jalsa live on our own "
        f"stream: {link} (audio only on a slow link)"
    )
    expect(box.get_by_text("set watch_url on the mirror")).to_be_visible()  # loopback
    box.get_by_role("button", name="Copy text").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == text.input_value()
    # The link opens the listener page.
    assert jalsa.http("/watch/mirror")[0] == 200
    context.close()
