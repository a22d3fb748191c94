"""Opus as jalsa asks a speaker's browser to send it (pure): tuned for lossy, thin links.

In SDP a codec's ``a=fmtp`` parameters say what the *receiver* wants, so jalsa puts its
wishes into its WHIP answer, and the browser's Opus encoder follows them:

- ``useinbandfec=1``: each packet carries a low-rate copy of the one before (the encoder
  sizes it from the loss that jalsa's RTCP receiver reports signal back). jalsa's decoder
  (voice_decoder.py) rebuilds a lost packet from that copy, or conceals it
  (docs/speakers.md, section 7);
- ``usedtx=0``: no discontinuous transmission — a quiet moment in a speech keeps its
  packets, so a gap on the link never looks like the speaker stopped;
- ``maxaveragebitrate``: a voice that fits a 2G-class uplink beside its own packet
  overhead (about 8 kbit/s of headers at 17 packets a second, see ``a=ptime``);
- ``stereo=0``: one voice, mono;
- ``a=ptime:60``: 60 ms of voice in a packet, not 20: a third of the packets, so a third of
  the RTP/SRTP/UDP/IP overhead (about 8 kbit/s instead of 25). On a 40 kbit/s uplink that
  is what lets the voice through at all; it costs 40 ms of delay. (aiortc decodes any
  Opus frame length: it hands whole packets to libopus.)

The page lowers the voice further on a link too thin for video (``maxBitrate`` on its
audio sender, join-link.js); ``maxaveragebitrate`` is the voice's ceiling.
"""

from __future__ import annotations

import re
from typing import Final

VOICE_BITRATE: Final = 32000  # bits per second of Opus payload
PTIME_MS: Final = 60  # milliseconds of voice per packet
OPUS_WISHES: Final = {
    "useinbandfec": "1",
    "usedtx": "0",
    "maxaveragebitrate": str(VOICE_BITRATE),
    "stereo": "0",
}
_PTIME: Final = f"a=ptime:{PTIME_MS}"
_RTPMAP: Final = re.compile(r"^a=rtpmap:(\d+) opus/48000(?:/\d+)?$", re.IGNORECASE)


def _merged(params: str) -> str:
    pairs: dict[str, str] = {}
    for part in params.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            pairs[key.strip()] = value.strip()
    pairs.update(OPUS_WISHES)
    return ";".join(f"{key}={value}" for key, value in pairs.items())


def tune_opus(sdp: str) -> str:
    """``sdp`` (an answer) with :data:`OPUS_WISHES` in every Opus payload type's
    ``a=fmtp`` line (one is added after the ``a=rtpmap`` where there is none), and
    ``a=ptime`` :data:`PTIME_MS` after each (replacing any other ``a=ptime``). Other codecs
    and lines are left as they are; the line ending is kept."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    opus = {m.group(1) for line in lines if (m := _RTPMAP.match(line))}
    if not opus:
        return sdp
    tuned: set[str] = set()
    out: list[str] = []
    for line in lines:
        if line.startswith("a=ptime:"):
            continue
        if line.startswith("a=fmtp:"):
            pt, _, params = line[len("a=fmtp:") :].partition(" ")
            if pt in opus:
                line = f"a=fmtp:{pt} {_merged(params)}"
                tuned.add(pt)
        out.append(line)
    for pt in sorted(opus - tuned):
        at = next(
            i for i, line in enumerate(out) if (m := _RTPMAP.match(line)) and m.group(1) == pt
        )
        out.insert(at + 1, f"a=fmtp:{pt} {_merged('')}")
    for at in reversed([i for i, line in enumerate(out) if _opus_fmtp(line, opus)]):
        out.insert(at + 1, _PTIME)
    return newline.join(out)


def _opus_fmtp(line: str, opus: set[str]) -> bool:
    return line.startswith("a=fmtp:") and line[len("a=fmtp:") :].partition(" ")[0] in opus
