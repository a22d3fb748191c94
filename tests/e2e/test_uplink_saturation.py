"""The studio's uplink, as ops see it: a real ``jalsa run`` with three RTMP destinations
(nginx-rtmp) behind one shared link (a FaultProxy in ``uplink`` mode: one rate for all its
connections, like the venue's line) and a fourth through a platform of its own. The
shared link squeezed below what the three need: ``/api/state`` and ``/metrics`` say the
uplink is saturated, with about the link's rate as its throughput; freed, they say it is
not, and the operator's console says so while it lasts. One platform throttled alone is
not the uplink.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from event_toml import event_toml, slot, speaker
from faults import FaultProxy
from jalsa_run import JalsaRun
from nginx_rtmp import NginxRtmp
from playwright.sync_api import Browser, expect
from test_relay_isolation import make_noise_clip

pytestmark = [pytest.mark.media, pytest.mark.timeout(240)]

SHARED = ("yt", "fb", "x")  # through the venue's one uplink
UPLINK_BYTES_PER_S = 60_000  # the three need about 3 x 90 KB/s
SOLO_BYTES_PER_S = 25_000  # one throttled platform


def uplink(run: JalsaRun) -> dict[str, Any]:
    state = json.loads(run.http("/api/state", token=run.token())[1])
    return state["uplink"] or {}


def test_a_full_uplink_is_told_from_one_throttled_platform(
    nginx: NginxRtmp, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("uplink")
    noise = make_noise_clip(work / "noise.mp4", seconds=120)
    with (
        FaultProxy("127.0.0.1", nginx.port) as venue,
        FaultProxy("127.0.0.1", nginx.port) as platform,
    ):
        destinations = [
            {"name": name, "url": f"rtmp://127.0.0.1:{venue.port}/rec", "key": f"{name}-k9"}
            for name in SHARED
        ]
        solo = {"name": "solo", "url": f"rtmp://127.0.0.1:{platform.port}/rec", "key": "solo-k9"}
        local = {"name": "recording", "platform": "custom", "url": "recordings/rally.mkv"}
        event = work / "event.toml"
        event.write_text(
            event_toml(
                "Uplink",
                event={"on_end": "slate"},
                program={
                    "width": 320,
                    "height": 180,
                    "fps": 25,
                    "video_bitrate_kbps": 600,
                    "audio_bitrate_kbps": 64,
                    "keyframe_seconds": 1,
                    "preset": "ultrafast",
                },
                speakers=[speaker("host", source=noise)],
                rundown=[slot("host", "10m")],
                destinations=[*destinations, solo, local],
            )
        )
        with JalsaRun(event, work / "state") as run:
            run.wait_ready()
            healthy = run.wait_for(
                lambda: (u := uplink(run)).get("throughput_bps") and u["network"] == 4 and u,
                30,
                "a throughput measured over four live network destinations",
            )
            assert not healthy["saturated"] and healthy["lagging"] == []
            assert run.metric("jalsa_uplink_saturated") == 0
            # (the recording is local: not on the uplink, not counted)

            venue.set_mode("uplink", rate_bytes_per_s=UPLINK_BYTES_PER_S)
            full = run.wait_for(
                lambda: (u := uplink(run))["saturated"] and u, 60, "the uplink saturated"
            )
            assert len(set(full["lagging"]) & set(SHARED)) >= 2, full
            run.wait_for(lambda: run.metric("jalsa_uplink_saturated") == 1, 10, "in /metrics")
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{run.http_port}/#token={run.token()}")
            banner = page.get_by_role("alert").filter(has_text="Uplink full")
            expect(banner).to_contain_text("cannot keep up", timeout=15_000)
            page.screenshot(path=str(work / "console-uplink.png"))
            # Once the 20 s window holds only the squeezed time, what the destinations
            # manage to send is about the uplink's rate (the solo platform's share on top).
            run.media_flows(22)
            carried = run.wait_for(
                lambda: (u := uplink(run))["saturated"] and u["throughput_bps"],
                30,
                "the throughput while saturated",
            )
            assert carried < 8 * (UPLINK_BYTES_PER_S + 150_000)
            assert carried > 8 * UPLINK_BYTES_PER_S * 0.5

            venue.set_mode("pass")
            run.wait_for(lambda: not uplink(run)["saturated"], 60, "the uplink freed")
            expect(banner).to_have_count(0, timeout=15_000)
            page.close()

            platform.set_mode("throttle", rate_bytes_per_s=SOLO_BYTES_PER_S)
            alone = run.wait_for(
                lambda: "solo" in (u := uplink(run))["lagging"] and u,
                60,
                "the throttled platform falling behind",
            )
            assert not alone["saturated"], alone  # one of four: a platform's problem
            assert run.metric("jalsa_uplink_saturated") == 0
            platform.set_mode("pass")
            run.stop()
