"""Just enough of the DNS wire format (RFC 1035) to ask a resolver for A records.

The probes ask a control resolver directly, over UDP, beside the system resolver: when
the system (ISP) resolver fails or lies and the control answers, names are being blocked
at DNS. Sans-I/O: :func:`build_query` and :func:`parse_response` are pure;
:func:`build_response` serves the fake resolvers of the tests.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

TYPE_A: Final = 1
TYPE_CNAME: Final = 5
CLASS_IN: Final = 1
RCODES: Final = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
}
_HEADER: Final = struct.Struct("!HHHHHH")
_MAX_LABELS: Final = 128


class DnsWireError(ValueError):
    """A name that cannot be asked, or a response that cannot be read."""


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """``rcode`` 0 is NOERROR; ``addresses`` are the A records of the answer section."""

    rcode: int
    addresses: tuple[str, ...]
    truncated: bool = False

    @property
    def rcode_name(self) -> str:
        return RCODES.get(self.rcode, f"RCODE{self.rcode}")


def encode_name(name: str) -> bytes:
    """``name`` as DNS labels (IDNA for non-ASCII).

    Raises:
        DnsWireError: an empty label, a label over 63 bytes, or a name over 253.
    """
    text = name.rstrip(".")
    try:
        ascii_name = text.encode("idna")
    except UnicodeError as exc:
        raise DnsWireError(f"{name!r} is not a valid host name") from exc
    if not ascii_name or len(ascii_name) > 253:
        raise DnsWireError(f"{name!r} is not a valid host name")
    out = bytearray()
    for label in ascii_name.split(b"."):
        if not 0 < len(label) <= 63:
            raise DnsWireError(f"{name!r} is not a valid host name")
        out.append(len(label))
        out += label
    return bytes(out + b"\x00")


def build_query(name: str, query_id: int, qtype: int = TYPE_A) -> bytes:
    """A recursive query for ``name``."""
    header = _HEADER.pack(query_id & 0xFFFF, 0x0100, 1, 0, 0, 0)  # RD
    return header + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


def parse_response(data: bytes, query_id: int) -> DnsAnswer:
    """The A records of a response to the query ``query_id``.

    Raises:
        DnsWireError: not a response to that query, or malformed.
    """
    if len(data) < _HEADER.size:
        raise DnsWireError("response shorter than a DNS header")
    rid, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    if rid != query_id or not flags & 0x8000:
        raise DnsWireError("not a response to our query")
    offset = _HEADER.size
    for _ in range(qdcount):
        offset = _skip_name(data, offset) + 4
    addresses = []
    for _ in range(ancount):
        offset = _skip_name(data, offset)
        if offset + 10 > len(data):
            raise DnsWireError("truncated resource record")
        rtype, rclass, _ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if offset + length > len(data):
            raise DnsWireError("truncated resource record data")
        if rtype == TYPE_A and rclass == CLASS_IN and length == 4:
            addresses.append(str(ipaddress.IPv4Address(data[offset : offset + 4])))
        offset += length
    return DnsAnswer(flags & 0x000F, tuple(addresses), bool(flags & 0x0200))


def build_response(query: bytes, addresses: tuple[str, ...] = (), rcode: int = 0) -> bytes:
    """A response to ``query`` with these A records (for fake resolvers in tests).

    Raises:
        DnsWireError: the query cannot be read.
    """
    if len(query) < _HEADER.size:
        raise DnsWireError("query shorter than a DNS header")
    qid = _HEADER.unpack_from(query)[0]
    end = _skip_name(query, _HEADER.size) + 4
    if end > len(query):
        raise DnsWireError("truncated question")
    question = query[_HEADER.size : end]
    header = _HEADER.pack(qid, 0x8180 | (rcode & 0xF), 1, len(addresses), 0, 0)
    answers = b"".join(
        b"\xc0\x0c"
        + struct.pack("!HHIH", TYPE_A, CLASS_IN, 60, 4)
        + ipaddress.IPv4Address(a).packed
        for a in addresses
    )
    return header + question + answers


def _skip_name(data: bytes, offset: int) -> int:
    """The offset just past the (possibly compressed) name at ``offset``."""
    for _ in range(_MAX_LABELS):
        if offset >= len(data):
            raise DnsWireError("name runs past the end")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 2 > len(data):
                raise DnsWireError("truncated name pointer")
            return offset + 2  # a pointer ends the name in this position
        if length & 0xC0:
            raise DnsWireError("bad label type")
        offset += 1 + length
        if length == 0:
            return offset
    raise DnsWireError("name too long")
