"""WHIP offers: each refusal says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.event import parse_event
from orchestrator.event.problems import EventError
from orchestrator.speakers.offer import (
    MAX_CANDIDATES,
    MAX_OFFER_BYTES,
    CandidatePolicy,
    OfferRefused,
    allowed,
    check_candidate,
    check_offer,
)

GOOD = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=fingerprint:sha-256 AA:BB
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=mid:0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuv
a=sendonly
a=rtpmap:111 opus/48000/2
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=mid:1
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuv
a=sendonly
a=rtpmap:96 VP8/90000
"""


def test_a_good_offer_sends_audio_and_video() -> None:
    offer = check_offer(GOOD.encode())
    assert (offer.audio, offer.video) == (True, True)


def test_audio_only() -> None:
    audio_only = GOOD.split("m=video")[0]
    assert check_offer(audio_only.encode()).video is False


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"\xff\xfe v=0", "UTF-8"),
        (b"hello world", "v=0"),
        (b"v=0\ns=-\n", "o= line"),
        (b"v=0\no=- 1 2 IN IP4 0.0.0.0\nnot sdp\n", "line 3"),
        (GOOD.split("m=audio")[0].encode(), "no m= section"),
        (
            GOOD.replace(
                "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=application 9 UDP/DTLS/SCTP x"
            ).encode(),
            "data channels",
        ),
        (GOOD.replace("a=fingerprint:sha-256 AA:BB\n", "").encode(), "fingerprint"),
        (GOOD.replace("a=ice-pwd:abcdefghijklmnopqrstuv\n", "").encode(), "ice-pwd"),
        (GOOD.replace("a=sendonly", "a=recvonly").encode(), "sends nothing"),
        (GOOD.encode() + b"a=x:" + b"y" * MAX_OFFER_BYTES, "larger than 64 KiB"),
    ],
)
def test_bad_offers_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(OfferRefused, match=reason):
        check_offer(body)


# --- ICE candidates: jalsa sends STUN to each one -------------------------------------


def candidate(address: str, port: int = 50000, transport: str = "udp", n: int = 1) -> str:
    return f"a=candidate:{n} 1 {transport} 2122260223 {address} {port} typ host generation 0"


def with_candidates(*lines: str) -> bytes:
    """GOOD with ``lines`` in its first media section."""
    head, video = GOOD.split("m=video")
    return (head + "".join(line + "\n" for line in lines) + "m=video" + video).encode()


def test_an_offer_with_600_candidates_is_refused_naming_the_limit() -> None:
    lines = [candidate("203.0.113.7", 1024 + i, n=i) for i in range(600)]
    with pytest.raises(OfferRefused, match=f"600 ICE candidates: at most {MAX_CANDIDATES}"):
        check_offer(with_candidates(*lines))
    assert MAX_CANDIDATES == 32
    offer = check_offer(with_candidates(*lines[:MAX_CANDIDATES]))
    assert offer.sdp.count("a=candidate:") == MAX_CANDIDATES and offer.dropped == 0
    with pytest.raises(OfferRefused, match="33 ICE candidates"):
        check_offer(with_candidates(*lines[: MAX_CANDIDATES + 1]))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("a=candidate:1 1 udp 1 203.0.113.7", "not a candidate line"),
        ("a=candidate:1 1 udp 1 203.0.113.7 5000 type host", "not a candidate line"),
        ("a=candidate:1 1 udp x 203.0.113.7 5000 typ host", "malformed"),
        ("a=candidate:1 1 udp 1 203.0.113.7 5000 typ bogus", "malformed"),
        ("a=candidate:1 1 udp 1 203.0.113.7 5000 typ host generation", "not a candidate line"),
        (candidate("203.0.113.7", 0), "port 0"),
        (candidate("203.0.113.7", 70000), "port 70000"),
        (candidate("0.0.0.0"), "unspecified"),
        (candidate("::"), "unspecified"),
        (candidate("224.0.0.251"), "multicast"),
        (candidate("ff02::1"), "multicast"),
        (candidate("255.255.255.255"), "broadcast"),
        (candidate("::ffff:224.0.0.1"), "multicast"),
        (candidate("240.0.0.1"), "reserved"),
        (candidate("victim.example.com"), "not an IP address"),
        (candidate("203.0.113.7", transport="sctp"), "transport"),
    ],
)
def test_a_candidate_that_cannot_be_a_peer_refuses_the_offer(line: str, reason: str) -> None:
    with pytest.raises(OfferRefused, match=reason):
        check_offer(with_candidates(candidate("203.0.113.9"), line))


PUBLIC = candidate("8.8.4.4", n=1)
PRIVATE = candidate("192.168.1.20", n=2)
CGNAT = candidate("100.64.3.4", n=3)
ULA = candidate("fd00::2", n=4)
MDNS = candidate("3c1f1c8e-52b3-4a4d-9a3e-0f2b1c7e9d11.local", n=5)
LOOPBACK = candidate("127.0.0.1", n=6)
LOOPBACK6 = candidate("::1", n=7)
TCP = "a=candidate:8 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active generation 0"


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        ("lan", {PUBLIC, PRIVATE, CGNAT, ULA, MDNS, TCP}),  # the default: the venue LAN works
        ("public", {PUBLIC, TCP}),
        ("any", {PUBLIC, PRIVATE, CGNAT, ULA, MDNS, TCP, LOOPBACK, LOOPBACK6}),
    ],
)
def test_the_candidate_policy_drops_what_it_does_not_allow(
    policy: CandidatePolicy, kept: set[str]
) -> None:
    every = (PUBLIC, PRIVATE, CGNAT, ULA, MDNS, LOOPBACK, LOOPBACK6, TCP)
    offer = check_offer(with_candidates(*every), policy)
    left = {line for line in offer.sdp.splitlines() if line.startswith("a=candidate:")}
    assert left == kept and offer.dropped == len(every) - len(kept)
    assert (
        check_offer(with_candidates(*every)).sdp == check_offer(with_candidates(*every), "lan").sdp
    )


def test_the_event_file_takes_the_policy() -> None:
    base: dict[str, Any] = {
        "speakers": [{"id": "guest", "name": "Guest"}],
        "rundown": [{"speaker": "guest", "duration": "1m"}],
        "destinations": [{"name": "mirror", "url": "hls"}],
    }
    assert parse_event(base, base_dir=Path("/"), env={}).info.speaker_candidates == "lan"
    chosen = parse_event(
        {**base, "event": {"speaker_candidates": "public"}}, base_dir=Path("/"), env={}
    )
    assert chosen.info.speaker_candidates == "public"
    with pytest.raises(EventError, match=r"event\.speaker_candidates"):
        parse_event({**base, "event": {"speaker_candidates": "all"}}, base_dir=Path("/"), env={})


_LINE = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=60
)  # any one line
_TOKEN = st.one_of(
    st.sampled_from(["udp", "UDP", "tcp", "typ", "host", "srflx", "relay", "raddr", "rport",
                     "generation", "0", "9", "65535", "65536", "-1", "127.0.0.1", "::1",
                     "fe80::1%eth0", "x.local", "224.0.0.1", "1e9", "٣"]),
    st.text(st.characters(codec="ascii", exclude_characters="\r\n "), min_size=1, max_size=12),
)  # fmt: skip
_CANDIDATE = st.lists(_TOKEN, max_size=14).map(lambda ts: "a=candidate:" + " ".join(ts))


@settings(max_examples=400, deadline=None)
@given(
    extra=st.lists(st.one_of(_CANDIDATE, _LINE.map(lambda t: "a=" + t), _LINE), max_size=40),
    at=st.integers(0, 30),
    policy=st.sampled_from(["lan", "public", "any"]),
)
def test_any_variant_of_an_offer_is_answered_or_refused_with_a_reason(
    extra: list[str], at: int, policy: CandidatePolicy
) -> None:
    """WHIP answers 400 for OfferRefused; anything else raised would be a 500."""
    lines = GOOD.splitlines()
    at = min(at, len(lines))
    body = "\n".join([*lines[:at], *extra, *lines[at:]]).encode()
    try:
        offer = check_offer(body, policy)
    except OfferRefused as refused:
        assert str(refused)
        return
    found = [line for line in offer.sdp.splitlines() if line.startswith("a=candidate:")]
    assert len(found) <= MAX_CANDIDATES
    for line in found:
        assert allowed(check_candidate(line), policy)
