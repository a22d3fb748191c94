"""``relays`` of an Icecast destination's ``[destinations.listeners]``: status pages to add."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.event import EventError, parse_event
from orchestrator.event.listener_spec import IcecastListeners, listener_spec

RELAY = "http://relay-1.example.org:8000/status-json.xsl"


def event(listeners: dict[str, Any]) -> dict[str, Any]:
    return {
        "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
        "rundown": [{"speaker": "host", "duration": "1m"}],
        "destinations": [
            {"name": "radio", "url": "icecast://source:pw@ice:8000/live", "listeners": listeners}
        ],
    }


def test_relays_are_kept_in_order() -> None:
    parsed = parse_event(
        event({"relays": [RELAY, "https://r2/status-json.xsl"]}), base_dir=Path("/"), env={}
    )
    d = parsed.destinations[0]
    spec = listener_spec(d.listeners, d.platform, d.kind, d.url)
    assert isinstance(spec, IcecastListeners)
    assert spec.relays == (RELAY, "https://r2/status-json.xsl")
    assert spec.status_url == "http://ice:8000/status-json.xsl"


@pytest.mark.parametrize("relays", [RELAY, ["relay-1:8000"], [3], ["http://[bad"]])
def test_a_relay_that_is_not_a_url_is_named(relays: Any) -> None:
    with pytest.raises(EventError) as info:
        parse_event(event({"relays": relays}), base_dir=Path("/"), env={})
    [problem] = info.value.problems
    assert problem.key == "destinations[0].listeners.relays"
