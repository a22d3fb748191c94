"""The built-in demo: ``jalsa run`` with no event file.

Three synthetic speakers (a coloured card with their name, a moving bar and a tone each)
take turns forever, to the self-hosted HLS mirror and a recording in the state dir, so
a new user sees the whole job work with nothing external.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from orchestrator.event import Event, parse_event

SPEAKERS = (
    ("host", "Stage Secretary", "Host"),
    ("amina", "Amina Qureshi", "Youth Wing"),
    ("bilal", "Bilal Ahmed", "Provincial President"),
)
SLOT = "20s"


def demo_data(state_dir: Path) -> dict[str, Any]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return {
        "event": {"name": "Digital Jalsa (demo)", "on_end": "slate"},
        "program": {"width": 1280, "height": 720, "fps": 30},
        "speakers": [
            {"id": sid, "name": name, "title": title, "source": "testsrc"}
            for sid, name, title in SPEAKERS
        ],
        "rundown": [{"speaker": sid, "duration": SLOT} for sid, _, _ in SPEAKERS],
        "destinations": [
            # the adaptive ladder: the program, 360p and audio only (docs/mirror.md)
            {"name": "mirror", "platform": "custom", "url": "hls", "ladder": {}},
            {
                "name": "recording",
                "platform": "custom",
                "url": str((state_dir / "recordings" / f"demo-{stamp}.mkv").resolve()),
            },
        ],
    }


def demo_event(state_dir: Path) -> Event:
    return parse_event(demo_data(state_dir), base_dir=Path.cwd(), env=dict(os.environ))
