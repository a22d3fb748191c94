"""``[[edges]]`` and ``via`` in a studio's event file, and an edge's own file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.event import EventError, parse_event
from orchestrator.event.edge_spec import parse_edge_file, studio_outputs

EDGE_KEY = "contribution-key-0123456789abcdef"
ENV = {"EDGE_KEY": EDGE_KEY, "YT": "yt-stream-key-1", "FB": "fb-stream-key-2"}


def studio(**edge: Any) -> dict[str, Any]:
    return {
        "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
        "rundown": [{"speaker": "host", "duration": "1m"}],
        "destinations": [
            {"name": "yt", "platform": "youtube", "key": "${YT}", "via": "karachi-vm"},
            {"name": "fb", "platform": "facebook", "key": "${FB}", "via": "karachi-vm"},
            {"name": "rec", "url": "rec.mkv"},
        ],
        "edges": [
            {
                "name": "karachi-vm",
                "url": "https://edge.example.org/contribute",
                "key": "${EDGE_KEY}",
                **edge,
            }
        ],
    }


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(EventError) as info:
        parse_event(data, base_dir=Path("/srv"), env=ENV, check_files=False)
    assert EDGE_KEY not in str(info.value)
    return {p.key: p.message for p in info.value.problems}


def test_the_studio_sends_one_contribution_per_edge_and_keeps_the_rest_direct() -> None:
    event = parse_event(studio(), base_dir=Path("/srv"), env=ENV, check_files=False)
    outputs = studio_outputs(event.destinations, event.edges)
    assert [(o.name, o.kind) for o in outputs] == [("rec", "file"), ("karachi-vm", "edge")]
    contribution = outputs[1]
    assert contribution.key is not None and contribution.key.reveal() == EDGE_KEY
    assert EDGE_KEY not in repr(event.edges) + repr(contribution)
    assert contribution.cleartext_warning() is None


def test_an_edge_nothing_goes_via_is_not_dialled() -> None:
    data = studio()
    for d in data["destinations"]:
        d.pop("via", None)
    event = parse_event(data, base_dir=Path("/srv"), env=ENV, check_files=False)
    assert [o.kind for o in studio_outputs(event.destinations, event.edges)] == [
        "rtmp",
        "rtmp",
        "file",
    ]


def test_via_an_unknown_edge_names_the_key() -> None:
    data = studio()
    data["destinations"][1]["via"] = "lahore-vm"
    assert "unknown edge 'lahore-vm' (edges: karachi-vm)" in problems(data)["destinations[1].via"]


def test_a_recording_stays_at_the_studio() -> None:
    data = studio()
    data["destinations"][2]["via"] = "karachi-vm"
    assert "a recording stays at the studio" in problems(data)["destinations[2].via"]


def test_an_edge_needs_its_key_from_the_environment() -> None:
    data = studio()
    del data["edges"][0]["key"]
    assert 'add key = "${EDGE_KEY}"' in problems(data)["edges[0].key"]
    assert "is not set" in problems(studio(key="${NOT_SET}"))["edges[0].key"]
    assert "too short" in problems(studio(key="abc123"))["edges[0].key"]


def test_an_edge_url_must_be_http_or_https() -> None:
    assert "edges[0].url" in problems(studio(url="rtmp://edge/app"))


def test_an_edge_and_a_destination_cannot_share_a_name() -> None:
    data = studio(name="yt")
    for d in data["destinations"][:2]:
        d["via"] = "yt"
    assert "also an edge's name" in problems(data)["destinations[0].name"]


def test_http_sends_the_contribution_key_in_cleartext() -> None:
    event = parse_event(
        studio(url="http://edge.example.org/contribute"),
        base_dir=Path("/srv"),
        env=ENV,
        check_files=False,
    )
    warning = studio_outputs(event.destinations, event.edges)[-1].cleartext_warning()
    assert warning is not None and "contribution key" in warning and EDGE_KEY not in warning


def test_edge_file() -> None:
    data = {
        "edge": {"name": "karachi-vm", "key": "${EDGE_KEY}"},
        "destinations": [{"name": "yt", "platform": "youtube", "key": "${YT}"}],
    }
    edge = parse_edge_file(data, Path("/srv"), ENV)
    assert edge.name == "karachi-vm" and edge.key.reveal() == EDGE_KEY
    assert [d.name for d in edge.destinations] == ["yt"]
    assert edge.tls_cert is None


def test_edge_file_problems_name_their_keys() -> None:
    data = {
        "edge": {"name": "karachi-vm", "tls_cert": "/nonexistent.pem"},
        "destinations": [{"name": "yt", "platform": "youtube", "key": "${YT}", "via": "x"}],
    }
    with pytest.raises(EventError) as info:
        parse_edge_file(data, Path("/srv"), ENV)
    keys = {p.key for p in info.value.problems}
    assert {"edge.key", "edge.tls_cert", "destinations[0].via"} <= keys
