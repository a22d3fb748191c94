"""Shared fixtures. Helpers (media.py, faults.py, nginx_rtmp.py, jalsa_run.py) sit here
beside this file and are imported by name: pytest puts this folder on sys.path.

The suite runs on two workers (scripts/test.sh: pytest-xdist, ``--dist loadgroup``): each
module is one unit (its module-scoped run is made once, on one worker). The modules whose
figures are real-time ratios of a CPU-heavy scenario (a browser on a thin link, 300
players, a socket siege, a restart's time to air, network namespaces) are the longest and
go first. They are not run one after another: together they take longer than the suite's
15 minutes, so two may run at once (each on its own worker).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REALTIME = frozenset(
    {
        "test_weak_uplink",
        "test_mirror_cache",
        "test_web_descriptors",
        "test_crash_resume",
        "test_rundown_on_air",
        "test_uplink_saturation",
        "test_probe_agents_netns",
        "test_join_never_hangs",  # a network namespace too: one at a time
        "test_edge_blip",
        "test_edge_uplink_netns",
    }
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group each test with its module, the real-time modules first (see above).

    First among the hooks: pytest-xdist's own (``--dist loadgroup``) reads the groups into
    each test's id. It used to run before this one, so no test had a group, and a module's
    tests went to both workers, each running the module's fixtures (the edge, the netns
    venue, the mirror cache: twice per run)."""
    realtime = {item: Path(item.nodeid.partition("::")[0]).stem in REALTIME for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(item.nodeid.partition("::")[0]))
    items.sort(key=lambda item: not realtime[item])


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real nginx-rtmp standing in for a platform's ingest; ``rec`` records to files."""
    from nginx_rtmp import NginxRtmp

    with NginxRtmp(tmp_path_factory.mktemp("nginx")) as server:
        yield server


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Solid-colour test clips made once per session."""
    from media import make_clip

    folder = tmp_path_factory.mktemp("clips")
    make_clip(folder / "red.mp4", colour="red", seconds=8, tone=440)
    # 4:3, 25 fps, stereo 48 kHz: the program must fit it into 16:9 at its own rate.
    make_clip(
        folder / "blue.mp4",
        colour="blue",
        seconds=8,
        size="320x240",
        rate=25,
        tone=660,
        sample_rate=48000,
        channels=2,
    )
    make_clip(folder / "green.mp4", colour="green", seconds=3, tone=880)
    return folder
