"""The master playlist of an HLS ladder (RFC 8216 §4.3.4.2), pure text from what is known.

Each rendition is one ``EXT-X-STREAM-INF`` entry. ``BANDWIDTH`` is the peak the
rendition may reach (its encoder's rates plus MPEG-TS overhead), so a player on a
throttled link never picks one it cannot carry; ``CODECS`` lets a player (or hls.js)
tell the audio-only rendition from the video ones before loading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# MPEG-TS and PES headers on top of the codec rates (measured ~8% at 48 kbit/s AAC).
TS_OVERHEAD = 1.15
AAC_LC = "mp4a.40.2"
_DEFAULT_AVC = "avc1.64001f"  # High, level 3.1: when no SPS can be read


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendition in the master playlist.

    Attributes:
        playlist: its media playlist, relative to the master (``low.m3u8``).
        kbps: its encoders' rates added up (video + audio), kbit/s.
        codecs: RFC 6381 codec strings, comma-separated.
        width, height: its picture (0, 0 for audio only).
        fps: its frame rate (0 for audio only).
    """

    playlist: str
    kbps: int
    codecs: str
    width: int = 0
    height: int = 0
    fps: int = 0

    @property
    def bandwidth(self) -> int:
        return round(self.kbps * 1000 * TS_OVERHEAD)


def master_playlist(variants: Sequence[Variant]) -> str:
    """The master playlist, best rendition first (players start on the first)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in sorted(variants, key=lambda v: -v.bandwidth):
        attributes = [f"BANDWIDTH={v.bandwidth}", f"AVERAGE-BANDWIDTH={round(v.kbps * 1000)}"]
        attributes.append(f'CODECS="{v.codecs}"')
        if v.width and v.height:
            attributes.append(f"RESOLUTION={v.width}x{v.height}")
        if v.fps:
            attributes.append(f"FRAME-RATE={v.fps:.3f}")
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", v.playlist]
    return "\n".join(lines) + "\n"


def avc_codec(extradata: bytes | None) -> str:
    """``avc1.PPCCLL`` from H.264 extradata: an avcC record or Annex B with an SPS."""
    if extradata and extradata[0] == 1 and len(extradata) >= 4:  # avcC
        return f"avc1.{extradata[1]:02x}{extradata[2]:02x}{extradata[3]:02x}"
    data = extradata or b""
    start = 0
    while (start := data.find(b"\x00\x00\x01", start)) != -1:
        nal = data[start + 3 : start + 7]
        if len(nal) == 4 and nal[0] & 0x1F == 7:  # an SPS: profile, constraints, level
            return f"avc1.{nal[1]:02x}{nal[2]:02x}{nal[3]:02x}"
        start += 3
    return _DEFAULT_AVC
