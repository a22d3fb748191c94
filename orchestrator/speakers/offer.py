"""Checks on a WHIP offer before aiortc sees it (pure): a clear reason for each refusal.

aiortc's own parser accepts a lot and fails late with messages a speaker's app cannot
act on, so the basics are checked here: text, the session lines, at most a few audio or
video sections (no data channels), DTLS fingerprints and ICE credentials, and at least
one section that sends.

The ICE candidates too: jalsa sends STUN checks to every candidate it is given, so an
offer is a list of UDP targets chosen by the caller. At most :data:`MAX_CANDIDATES`;
one that cannot be a peer (bad syntax, port 0, a multicast, broadcast, unspecified or
reserved address, a host name other than an mDNS ``.local`` one) refuses the offer; and
the event's ``speaker_candidates`` policy drops those it does not allow (from the SDP
aiortc sees): ``"lan"`` (the default) public and private-network addresses and mDNS
names, ``"public"`` public addresses only, ``"any"`` loopback too (a test bench where
everything runs on one machine).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

MAX_OFFER_BYTES: Final = 64 * 1024
MAX_MEDIA_SECTIONS: Final = 4
MAX_CANDIDATES: Final = 32
CandidatePolicy: TypeAlias = Literal["lan", "public", "any"]
_FOUNDATION: Final = re.compile(r"[A-Za-z0-9+/]{1,32}")
_MDNS: Final = re.compile(r"[A-Za-z0-9-]{1,63}\.local", re.IGNORECASE)
_TYPES: Final = ("host", "srflx", "prflx", "relay")
_SENDING: Final = ("sendonly", "sendrecv")
_DIRECTIONS: Final = ("sendonly", "sendrecv", "recvonly", "inactive")


class OfferRefused(ValueError):
    """The offer cannot be answered; the message says why (safe to show the client)."""


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str
    audio: bool  # sends audio
    video: bool  # sends video
    dropped: int = 0  # candidates the policy took out


def check_offer(body: bytes, candidates: CandidatePolicy = "lan") -> Offer:
    """Validate a WHIP offer; ``candidates`` is the event's ``speaker_candidates``.

    Raises:
        OfferRefused: with the reason.
    """
    if not body.strip():
        raise OfferRefused("the offer is empty: POST the SDP offer as the body")
    if len(body) > MAX_OFFER_BYTES:
        raise OfferRefused(f"the offer is larger than {MAX_OFFER_BYTES // 1024} KiB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OfferRefused("the offer is not UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        raise OfferRefused("not an SDP offer: it must start with v=0")
    if not any(line.startswith("o=") for line in lines):
        raise OfferRefused("not an SDP offer: there is no o= line")
    for number, line in enumerate(lines, 1):
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise OfferRefused(f"line {number} is not an SDP line (type=value)")
    session, sections = _split(lines)
    if not sections:
        raise OfferRefused("the offer has no m= section: add an audio or video track")
    if len(sections) > MAX_MEDIA_SECTIONS:
        raise OfferRefused(f"the offer has more than {MAX_MEDIA_SECTIONS} media sections")
    sends = {"audio": False, "video": False}
    for index, section in enumerate(sections):
        kind = section[0][2:].split(" ", 1)[0]
        if kind not in ("audio", "video"):
            raise OfferRefused(
                f"m= section {index} is {kind!r}: only audio and video are accepted "
                "(no data channels)"
            )
        fields = section[0].split()
        if len(fields) < 4 or "RTP" not in fields[2]:
            raise OfferRefused(f"m= section {index} is not RTP media")
        if fields[1] == "0":
            continue  # rejected or stopped section
        attributes = {line.split(":", 1)[0] for line in [*session, *section] if line[:2] == "a="}
        for needed, what in (
            ("a=fingerprint", "a DTLS fingerprint"),
            ("a=ice-ufrag", "ICE credentials (a=ice-ufrag)"),
            ("a=ice-pwd", "ICE credentials (a=ice-pwd)"),
        ):
            if needed not in attributes:
                raise OfferRefused(f"m= section {index} ({kind}) has no {what}")
        direction = next(
            (line[2:] for line in section if line[2:] in _DIRECTIONS),
            next((line[2:] for line in session if line[2:] in _DIRECTIONS), "sendrecv"),
        )
        if direction in _SENDING:
            sends[kind] = True
    if not (sends["audio"] or sends["video"]):
        raise OfferRefused("the offer sends nothing: add an audio or video track (sendonly)")
    found = [line for line in lines if line.startswith("a=candidate:")]
    if len(found) > MAX_CANDIDATES:
        raise OfferRefused(
            f"the offer has {len(found)} ICE candidates: at most {MAX_CANDIDATES} are accepted"
        )
    refused = {line for line in found if not allowed(check_candidate(line), candidates)}
    if refused:
        eol = "\r\n" if "\r\n" in text else "\n"
        kept = [line for line in text.splitlines() if line.strip() not in refused]
        text = eol.join(kept) + eol
    return Offer(text, sends["audio"], sends["video"], len(refused))


Scope: TypeAlias = Literal["public", "private", "mdns", "loopback", "other"]


def check_candidate(line: str) -> Scope:
    """Where an ``a=candidate:`` line points: ``public``, ``private`` (a private, CGNAT,
    unique-local or link-local network), ``mdns`` (a browser's ``<uuid>.local`` name),
    ``loopback``, or ``other`` (a transport jalsa ignores, such as TCP).

    Raises:
        OfferRefused: the candidate cannot be a peer; the message says why.
    """
    fields = line[len("a=candidate:") :].split()
    what = f"ICE candidate {line[:80]!r}"
    if len(fields) < 8 or fields[6] != "typ" or len(fields) % 2:
        raise OfferRefused(f"{what} is not a candidate line (foundation component transport "
                           "priority address port typ type)")  # fmt: skip
    foundation, component, transport, priority, address, port, _, kind = fields[:8]
    if not (
        _FOUNDATION.fullmatch(foundation)
        and component.isdigit()
        and 1 <= int(component) <= 256
        and priority.isdigit()
        and int(priority) < 2**32
        and port.isdigit()
        and kind in _TYPES
    ):
        raise OfferRefused(f"{what} is malformed")
    if not 1 <= int(port) <= 65535:
        raise OfferRefused(f"{what} has port {int(port)}: use a port from 1 to 65535")
    for name, value in zip(fields[8::2], fields[9::2], strict=True):
        if name == "rport" and not (value.isdigit() and int(value) <= 65535):
            raise OfferRefused(f"{what} has a malformed rport")
        if name in ("generation", "network-id", "network-cost") and not value.isdigit():
            raise OfferRefused(f"{what} has a malformed {name}")
    if transport.lower() != "udp":
        if transport.lower() != "tcp":
            raise OfferRefused(f"{what} has transport {transport!r}: use udp (or tcp)")
        return "other"  # aiortc sends nothing to TCP candidates
    if _MDNS.fullmatch(address):
        return "mdns"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise OfferRefused(
            f"{what}: {address!r} is not an IP address (nor a browser's .local name)"
        ) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise OfferRefused(f"{what}: {address} cannot be a peer (unspecified, multicast or "
                           "broadcast)")  # fmt: skip
    if ip.is_loopback:
        return "loopback"
    if ip.is_reserved:
        raise OfferRefused(f"{what}: {address} is a reserved address")
    return "public" if ip.is_global else "private"


def allowed(scope: Scope, policy: CandidatePolicy) -> bool:
    """Whether ``policy`` (``speaker_candidates``) lets jalsa send to a candidate."""
    if scope == "other" or scope == "public":
        return True
    if scope == "loopback":
        return policy == "any"
    return policy != "public"


def _split(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    session: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections
