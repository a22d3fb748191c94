"""H.264 parameter sets (SPS/PPS) of a stream's extradata, and in-band copies of them.

A stream's out-of-band header is either an ``avcC`` record (what FLV and MP4 carry: the
edge's demuxed contribution) or Annex B NAL units with start codes (what libx264 leaves
in a PyAV encoder's extradata). Both come down to the same SPS and PPS units, which is
what two encodes must share for a decoder to switch between them without a new header.
When they differ, the edge puts them in-band: length-prefixed units at the front of a
keyframe, which decoders take as the parameter sets from there on. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

_SPS, _PPS = 7, 8
_NAL_LENGTH = 4  # bytes of each unit's length prefix in FLV/avcC packets (PyAV writes 4)


@dataclass(frozen=True, slots=True)
class ParameterSets:
    """The SPS and PPS units (without start codes or length prefixes)."""

    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    nal_length: int = _NAL_LENGTH

    def in_band(self) -> bytes:
        """The units as a packet's length-prefixed prefix (SPS first, then PPS)."""
        return b"".join(
            len(unit).to_bytes(self.nal_length, "big") + unit for unit in self.sps + self.pps
        )

    def same_units(self, other: ParameterSets) -> bool:
        return (self.sps, self.pps) == (other.sps, other.pps)


def _annexb_units(data: bytes) -> list[bytes]:
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        start += 3
        following = data.find(b"\x00\x00\x01", start)
        end = len(data) if following < 0 else following
        unit = data[start:end]
        if following >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the leading zero of a 4-byte start code
        if unit:
            units.append(unit)
        start = following
    return units


def _avcc(data: bytes) -> ParameterSets:
    """Raises: ValueError (IndexError inside) on a truncated record."""
    nal_length = (data[4] & 0x03) + 1
    at, sps, pps = 6, list[bytes](), list[bytes]()
    for count, into in ((data[5] & 0x1F, sps), (None, pps)):
        if count is None:
            count, at = data[at], at + 1
        for _ in range(count):
            size = int.from_bytes(data[at : at + 2], "big")
            unit = data[at + 2 : at + 2 + size]
            if len(unit) != size:
                raise ValueError("truncated avcC record")
            into.append(unit)
            at += 2 + size
    return ParameterSets(tuple(sps), tuple(pps), nal_length)


def parameter_sets(extradata: bytes) -> ParameterSets:
    """The SPS/PPS of an ``avcC`` record or of Annex B units.

    Raises:
        ValueError: ``extradata`` is neither (or is truncated).
    """
    if extradata[:1] == b"\x01":
        try:
            return _avcc(extradata)
        except IndexError as error:
            raise ValueError("truncated avcC record") from error
    units = _annexb_units(extradata)
    if not units:
        raise ValueError("no H.264 parameter sets in the extradata")
    return ParameterSets(
        tuple(u for u in units if u[0] & 0x1F == _SPS),
        tuple(u for u in units if u[0] & 0x1F == _PPS),
    )
