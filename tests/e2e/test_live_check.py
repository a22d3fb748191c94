"""Live verification on a real ``jalsa run``: a push that "works" into an ended YouTube
broadcast is flagged, by the one YouTube client there is.

jalsa pushes to nginx-rtmp while the platform stand-in serves the YouTube Data API. The
destination's listener poller asks ``videos?part=snippet,liveStreamingDetails``, and its
answer gives both the listener count and the broadcast's verdict: ``live_check`` in
/api/state says ``live``, then ``ended: ...`` once the broadcast ends; the push into the
ended broadcast is logged once; and the stand-in saw one request per poll interval for
the video (not one for the count and another for the verdict). A YouTube destination
added over the API with a listeners table is checked too.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun
from nginx_rtmp import NginxRtmp
from platform_standin import YT_KEY, PlatformStandIn

pytestmark = [pytest.mark.media, pytest.mark.timeout(180)]

VIDEO = "AbCdEfGhIj0"
ADDED_VIDEO = "AddedVide01"
POLL = 5  # seconds: the shortest poll_seconds allowed
STREAM_KEY = "yt-stream-key-1"


def api(run: JalsaRun, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.http_port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {run.token()}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def row(run: JalsaRun, name: str) -> dict[str, Any]:
    """``name``'s row in /api/state (what the console shows)."""
    state = api(run, "/api/state")
    return next((d for d in state["destinations"] if d["name"] == name), {})


def youtube(name: str, video: str, nginx: NginxRtmp, api_key: str) -> dict[str, Any]:
    return {
        "name": name,
        "platform": "youtube",
        "url": f"rtmp://127.0.0.1:{nginx.port}/live",
        "key": f"{STREAM_KEY}-{name}",
        "listeners": {"video_id": video, "api_key": api_key, "poll_seconds": POLL},
    }


def test_a_push_into_an_ended_broadcast_is_flagged(nginx: NginxRtmp, tmp_path: Path) -> None:
    with PlatformStandIn() as apis:
        apis.script("youtube", ("count", 40))
        yt = youtube("yt", VIDEO, nginx, "${YT_API_KEY}")
        yt["listeners"]["api_base"] = apis.base
        event = tmp_path / "event.toml"
        event.write_text(
            event_toml(
                "Live Check",
                speakers=[speaker("host", source="testsrc")],
                rundown=[slot("host", "10m")],
                destinations=[yt],
            )
        )
        with JalsaRun(event, tmp_path / "state", env={"YT_API_KEY": YT_KEY}) as run:
            run.wait_ready()
            live = run.wait_for(
                lambda: (
                    (r := row(run, "yt")).get("state") == "live"
                    and r.get("live_check") == "live"
                    and r
                ),
                30,
                "yt live, and YouTube saying so",
            )
            run.wait_for(
                lambda: run.metric("jalsa_listeners", platform="youtube") == 40,
                15,
                "the count from the same poller",
            )
            apis.script("youtube", ("ended",))  # the broadcast ends; the push goes on
            ended = run.wait_for(
                lambda: ((r := row(run, "yt")).get("live_check") or "").startswith("ended") and r,
                3 * POLL,
                "live_check to say ended",
            )
            # Added live with a listeners table (the API takes values literally).
            added = youtube("yt-added", ADDED_VIDEO, nginx, YT_KEY)
            added["listeners"]["api_base"] = apis.base
            api(run, "/api/destinations", added)
            added_row = run.wait_for(
                lambda: row(run, "yt-added").get("live_check") and row(run, "yt-added"),
                3 * POLL,
                "the added destination's live_check",
            )
            time.sleep(2 * POLL)  # a few more polls, to count them
            code, _ = run.stop(signal.SIGTERM)
        logs = run.logs
    assert code == 0, logs[-3000:]
    assert live["live_check"] == "live"
    assert ended["state"] == "live"  # the push itself "works": that is the point
    assert "reaches no viewer" in ended["live_check"]
    assert added_row["live_check"].startswith("ended: broadcast AddedVide01")
    flagged = [line for line in logs.splitlines() if "destination yt is pushing, but" in line]
    assert len(flagged) == 1 and "YouTube says ended" in flagged[0], flagged
    # One client: one request per poll interval for the video, asking for both parts.
    asked = [r for r in apis.seen("youtube") if r.query.get("id") == VIDEO]
    assert len(asked) >= 4
    assert all(r.query["part"] == "snippet,liveStreamingDetails" for r in asked)
    gaps = [b.at - a.at for a, b in itertools.pairwise(asked)]
    assert min(gaps) > POLL - 0.5, gaps
    assert YT_KEY not in logs
    assert YT_KEY not in json.dumps([live, ended, added_row])
