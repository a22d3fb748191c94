"""A recording added over the API stays in the recordings folders (issue 12, item 13):
``POST /api/destinations`` with a file ``url`` that escapes them (``../``, an absolute
path elsewhere, a symlink out) is 422 naming ``url``, and nothing is added. Before the
fix any path the server could write was accepted (``../../..`` included)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_app import Served, served_app


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("web-recordings")) as served:
        yield served


def names(web: Served) -> set[str]:
    status, body, _ = web.call("GET", "/api/destinations")
    assert status == 200
    return {d["name"] for d in body}


@pytest.mark.parametrize(
    "url",
    [
        "../escape.mkv",
        "recordings/../../escape.mkv",
        "../../../../../../tmp/escape.mkv",
        "/tmp/escape.mkv",
        "~/escape.mkv",
        "state-elsewhere.ts",  # the event folder itself is not a recordings folder
    ],
)
def test_a_recording_outside_the_recordings_folders_is_refused(web: Served, url: str) -> None:
    status, body, _ = web.call("POST", "/api/destinations", {"name": "sneaky", "url": url})
    assert status == 422, body
    assert [p["key"] for p in body["detail"]] == ["url"]
    assert "recordings" in body["detail"][0]["message"]
    assert "sneaky" not in names(web)
    assert not (web.base_dir.parent / "escape.mkv").exists()


def test_a_symlink_out_of_the_recordings_folder_is_refused(web: Served, tmp_path: Path) -> None:
    folder = web.base_dir / "recordings"
    folder.mkdir(exist_ok=True)
    link = folder / "elsewhere"
    if not link.exists():
        os.symlink(tmp_path, link)
    status, body, _ = web.call(
        "POST", "/api/destinations", {"name": "linked", "url": "recordings/elsewhere/x.mkv"}
    )
    assert status == 422 and body["detail"][0]["key"] == "url", body
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("extra", "recordings/extra.mkv"),
        ("nested", "recordings/day-2/extra.ts"),
        ("state", "{state}/recordings/extra.mp4"),  # the demo's folder
        ("absolute", "{base}/recordings/absolute.flv"),
    ],
)
def test_a_recording_in_a_recordings_folder_is_added(web: Served, name: str, url: str) -> None:
    url = url.format(state=web.state_dir, base=web.base_dir)
    status, body, _ = web.call("POST", "/api/destinations", {"name": name, "url": url})
    assert status == 201, body
    assert name in names(web)
    assert web.call("DELETE", f"/api/destinations/{name}")[0] == 200
