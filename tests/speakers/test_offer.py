"""WHIP offers: each refusal says why."""

from __future__ import annotations

import pytest

from orchestrator.speakers.offer import MAX_OFFER_BYTES, OfferRefused, check_offer

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
