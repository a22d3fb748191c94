"""The edge's FLV intake: a body that breaks off inside a tag (a dropped link, a studio
reconnecting) must not send the bytes it got of that packet on to the platforms."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from test_mirror_ladders import contribution_flv, demuxed

from orchestrator.edge.intake import demux
from relays.packet import EncodedPacket

pytestmark = pytest.mark.media


def test_a_packet_cut_off_by_the_end_of_the_body_is_not_sent_on(tmp_path: Path) -> None:
    path = contribution_flv(tmp_path / "contribution.flv")
    _, whole = demuxed(path)
    last = max((p for p in whole if p.kind == "video"), key=lambda p: p.seconds)
    data = path.read_bytes()
    cut = data.rindex(last.data) + len(last.data) // 2  # the body ends inside its tag
    got: list[EncodedPacket] = []
    demux(io.BytesIO(data[:cut]), lambda _, packets: got.extend(packets))  # type: ignore[arg-type]
    assert got and all(p.data in {w.data for w in whole} for p in got)
    assert not [p for p in got if p.kind == "video" and p.seconds >= last.seconds]
