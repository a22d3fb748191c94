"""Checks on a WHIP offer before aiortc sees it (pure): a clear reason for each refusal.

aiortc's own parser accepts a lot and fails late with messages a speaker's app cannot
act on, so the basics are checked here: text, the session lines, at most a few audio or
video sections (no data channels), DTLS fingerprints and ICE credentials, and at least
one section that sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_OFFER_BYTES: Final = 64 * 1024
MAX_MEDIA_SECTIONS: Final = 4
_SENDING: Final = ("sendonly", "sendrecv")
_DIRECTIONS: Final = ("sendonly", "sendrecv", "recvonly", "inactive")


class OfferRefused(ValueError):
    """The offer cannot be answered; the message says why (safe to show the client)."""


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str
    audio: bool  # sends audio
    video: bool  # sends video


def check_offer(body: bytes) -> Offer:
    """Validate a WHIP offer.

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
    return Offer(text, sends["audio"], sends["video"])


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
