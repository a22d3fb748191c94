"""The picture of a speaker who sends no video: their photo, or a card with their name.

Shown for a browser speaker on audio only (with a level bar, :mod:`orchestrator.ingest.webrtc`)
and for a clip or an uploaded message that has no video track.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image

from orchestrator.program.canvas import Canvas
from orchestrator.program.graphics import BACKGROUND, Plane, card, pixels

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Appearance:
    """How to show a speaker with no picture: their photo or a card, and their names."""

    name: str
    title: str = ""
    photo: str | None = None


def speaker_card(width: int, height: int, look: Appearance, subline: str = "") -> Plane:
    """The photo fitted to the program size, or (no photo, or an unreadable one) a card
    with the name and the title (``subline`` if there is no title)."""
    if look.photo is not None:
        try:
            with Image.open(look.photo) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            log.warning("speaker %s: photo unusable (%s); showing a name card", look.name, exc)
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            return pixels(Canvas(width, height).fit(frame))
    return card(width, height, BACKGROUND, look.name, look.title or subline)
