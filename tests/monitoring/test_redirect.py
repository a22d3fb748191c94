"""Telling listeners where to go during an outage: the text (pure) and the webhook's payload
(a real local receiver)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from waiting import async_wait_for

from monitoring.outage import ALL_PLATFORMS, Outage
from monitoring.outage_watch import OutageEvent
from monitoring.redirect import MAX_TEXT, mirror_links, redirect_for
from monitoring.webhook import Webhook
from orchestrator.event import parse_event
from orchestrator.event.secret import Secret

WATCH = "https://mirror.example.org/watch/mirror"
CITIES = frozenset({"Lahore", "Karachi"})


def outage(scope: str, platform: str, cities: frozenset[str] = CITIES) -> Outage:
    return Outage(scope, platform, frozenset({"v1", "v2"}), cities, 100.0)  # type: ignore[arg-type]


def test_a_blocked_platform() -> None:
    notice = redirect_for([outage("platform", "youtube")], "Digital Jalsa", [WATCH])
    assert notice is not None and notice.links == (WATCH,)
    assert notice.text == (
        "YouTube is not reachable in Karachi and Lahore. Watch Digital Jalsa live on our own "
        f"stream: {WATCH} (audio only on a slow link)"
    )


def test_several_platforms_throttling_and_national() -> None:
    both = redirect_for([outage("platform", "x"), outage("platform", "facebook")], "J", [WATCH])
    assert both is not None and both.text.startswith("Facebook and X are not reachable in")
    slow = redirect_for([outage("throttling", "x")], "J", [WATCH])
    assert slow is not None and slow.text.startswith("X is slowed down in Karachi and Lahore.")
    national = redirect_for(
        [outage("national", ALL_PLATFORMS), outage("platform", "x")], "J", [WATCH]
    )
    assert national is not None and national.text.startswith("Social media is disrupted in")


def test_not_for_an_uplink_or_without_a_mirror() -> None:
    assert redirect_for([outage("uplink", "*")], "J", [WATCH]) is None
    assert redirect_for([], "J", [WATCH]) is None
    assert redirect_for([outage("platform", "x")], "J", []) is None


def test_the_text_fits_a_post() -> None:
    many = frozenset(f"City number {i}" for i in range(40))
    notice = redirect_for([outage("platform", "youtube", many)], "A" * 100, [WATCH])
    assert notice is not None and len(notice.text) <= MAX_TEXT and WATCH in notice.text


def test_links_are_each_mirrors_watch_url_or_its_path() -> None:
    event = parse_event(
        {
            "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
            "rundown": [{"speaker": "host", "duration": "1m"}],
            "destinations": [
                {"name": "mirror", "url": "hls", "watch_url": WATCH},
                {"name": "backup", "url": "hls"},
                {"name": "rec", "url": "show.mkv"},
            ],
        },
        base_dir=Path("/srv"),
        env={},
        check_files=False,
    )
    assert mirror_links(event.destinations) == (WATCH, "/watch/backup")


@pytest.mark.parametrize(
    ("destination", "words"),
    [
        ({"name": "m", "url": "hls", "watch_url": "mirror.example.org"}, "is not a web address"),
        ({"name": "r", "url": "show.mkv", "watch_url": WATCH}, "only an HLS mirror"),
    ],
)
def test_watch_url_problems(destination: dict[str, str], words: str) -> None:
    from orchestrator.event import EventError

    with pytest.raises(EventError) as info:
        parse_event(
            {
                "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
                "rundown": [{"speaker": "host", "duration": "1m"}],
                "destinations": [destination],
            },
            base_dir=Path("/srv"),
            env={},
            check_files=False,
        )
    [problem] = info.value.problems
    assert problem.key == "destinations[0].watch_url" and words in problem.message


async def test_the_webhook_carries_the_link_and_the_text() -> None:
    got: list[dict[str, object]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        # "/watch/backup" has no host: a webhook's readers could not open it, so it is left out.
        webhook = Webhook(
            Secret(f"http://127.0.0.1:{port}/hook"),
            mirrors=(WATCH, "/watch/backup"),
            event="Digital Jalsa",
        )
        webhook.notify(OutageEvent("started", outage("platform", "youtube"), 160.0))
        webhook.notify(OutageEvent("cleared", outage("platform", "youtube"), 260.0))
        task = asyncio.create_task(webhook.run())
        await async_wait_for(lambda: webhook.sent == 2, 5, "both events sent")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await runner.cleanup()
    started, cleared = got
    assert started["mirror"] == {
        "links": [WATCH],
        "text": redirect_for([outage("platform", "youtube")], "Digital Jalsa", [WATCH]).text,  # type: ignore[union-attr]
    }
    assert str(started["text"]).startswith("OUTAGE: youtube unreachable")
    assert "\nTell listeners: YouTube is not reachable in Karachi and Lahore." in str(
        started["text"]
    )
    assert "mirror" not in cleared
