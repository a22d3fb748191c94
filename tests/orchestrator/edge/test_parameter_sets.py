"""H.264 parameter sets from avcC and Annex B extradata, and their in-band form."""

from __future__ import annotations

import pytest

from orchestrator.edge.parameter_sets import parameter_sets

SPS = bytes.fromhex("6742c01eda05067e78400000030040000007a3c58ba8")
PPS = bytes.fromhex("68ce3c80")
ANNEX_B = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS
AVCC = (
    bytes((1, SPS[1], SPS[2], SPS[3], 0xFF, 0xE1))
    + len(SPS).to_bytes(2, "big")
    + SPS
    + b"\x01"
    + len(PPS).to_bytes(2, "big")
    + PPS
)


def test_avcc_and_annex_b_give_the_same_units() -> None:
    a, b = parameter_sets(AVCC), parameter_sets(ANNEX_B)
    assert (a.sps, a.pps) == ((SPS,), (PPS,)) and a.same_units(b)


def test_in_band_units_are_length_prefixed() -> None:
    in_band = parameter_sets(AVCC).in_band()
    assert in_band == len(SPS).to_bytes(4, "big") + SPS + len(PPS).to_bytes(4, "big") + PPS


def test_a_different_pps_is_not_the_same() -> None:
    other = parameter_sets(b"\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS[:-1] + b"\x81")
    assert not parameter_sets(AVCC).same_units(other)


@pytest.mark.parametrize("data", [AVCC[:9], b"", b"\x00\x11\x22"])
def test_truncated_or_foreign_extradata_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        parameter_sets(data)
