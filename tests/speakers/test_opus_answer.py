"""jalsa's WHIP answer asks for Opus tuned for lossy links (the browser follows fmtp)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.speakers.opus_answer import PTIME_MS, VOICE_BITRATE, tune_opus

ANSWER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=0",
        "a=rtpmap:0 PCMU/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=rtpmap:96 VP8/90000",
        "a=fmtp:96 max-fr=30",
        "",
    ]
)


def _fmtp(sdp: str, pt: str) -> dict[str, str]:
    (line,) = [x for x in sdp.splitlines() if x.startswith(f"a=fmtp:{pt} ")]
    return dict(p.split("=", 1) for p in line.split(" ", 1)[1].split(";"))


def test_opus_gets_fec_no_dtx_a_2g_bitrate_and_mono() -> None:
    tuned = tune_opus(ANSWER)
    assert _fmtp(tuned, "111") == {
        "minptime": "10",
        "useinbandfec": "1",
        "usedtx": "0",
        "maxaveragebitrate": str(VOICE_BITRATE),
        "stereo": "0",
    }
    assert 24000 <= VOICE_BITRATE <= 32000
    assert _fmtp(tuned, "96") == {"max-fr": "30"}  # other codecs untouched
    assert tuned.endswith("\r\n") and "\r\n" in tuned and "\n\n" not in tuned


def test_opus_is_asked_for_60_ms_packets_once_in_its_section() -> None:
    # A third of the packets of 20 ms ones: ~8 kbit/s of headers instead of ~25.
    with_ptime = ANSWER.replace("a=rtpmap:0 PCMU/8000", "a=ptime:20\r\na=rtpmap:0 PCMU/8000")
    lines = tune_opus(with_ptime).split("\r\n")
    assert [x for x in lines if x.startswith("a=ptime:")] == [f"a=ptime:{PTIME_MS}"]
    assert lines.index(f"a=ptime:{PTIME_MS}") == lines.index("a=rtpmap:111 opus/48000/2") + 2
    assert lines.index(f"a=ptime:{PTIME_MS}") < lines.index("m=video 9 UDP/TLS/RTP/SAVPF 96")
    assert 40 <= PTIME_MS <= 60


def test_an_opus_without_fmtp_gets_one_after_its_rtpmap() -> None:
    sdp = "v=0\nm=audio 9 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=sendrecv\n"
    lines = tune_opus(sdp).split("\n")
    assert lines[3].startswith("a=fmtp:96 useinbandfec=1;usedtx=0;")
    assert lines[4] == f"a=ptime:{PTIME_MS}"
    assert lines[5] == "a=sendrecv"


def test_no_opus_no_change() -> None:
    sdp = "v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    assert tune_opus(sdp) == sdp


@given(st.lists(st.sampled_from(["a=x", "a=fmtp:7 a=b", "m=audio 9 RTP/AVP 7", ""]), max_size=8))
def test_tuning_is_idempotent_and_only_touches_fmtp(lines: list[str]) -> None:
    sdp = "\r\n".join(["v=0", "a=rtpmap:7 opus/48000/2", *lines])
    once = tune_opus(sdp)
    assert tune_opus(once) == once
    tuned = ("a=fmtp:7 ", "a=ptime:")
    kept = [x for x in once.split("\r\n") if not x.startswith(tuned)]
    assert kept == [x for x in sdp.split("\r\n") if not x.startswith(tuned)]
