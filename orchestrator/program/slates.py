"""What each slate says (pure), and the cache of their rendered pictures."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Mapping
from datetime import datetime

from orchestrator.event import SpeakerSpec
from orchestrator.program.graphics import Plane, slate
from orchestrator.rundown import OnAir, Slot

SlateText = tuple[str, tuple[str, ...]]

STAND_BY = "Please stand by"
HEADLINE_CHARS = 32  # a longer hold text goes under the headline, wrapped
LINE_CHARS = 56
HOLD_LINES = 3


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M")


def _who(speakers: Mapping[str, SpeakerSpec], slot: Slot | None) -> str:
    if slot is None:
        return ""
    spec = speakers.get(slot.speaker)
    if spec is None:
        return slot.speaker
    return f"{spec.name}, {spec.title}" if spec.title else spec.name


def slate_text(event_name: str, on_air: OnAir, speakers: Mapping[str, SpeakerSpec]) -> SlateText:
    """The headline and lines of the slate for a decision whose kind is "slate"."""
    current = speakers.get(on_air.speaker) if on_air.speaker else None
    name = current.name if current else (on_air.speaker or "")
    upcoming = on_air.next
    next_line = (
        (f"Next: {_who(speakers, upcoming)} at {_clock(upcoming.start)}",) if upcoming else ()
    )
    match on_air.slate:
        case "starting":
            return event_name, ("Starting soon", *next_line)
        case "joining":
            return f"{name} is joining", (event_name, *next_line)
        case "reconnecting":
            return f"Reconnecting to {name}…", (event_name, "Please stay with us")
        case "hold":
            return _hold_text(event_name, on_air.text or STAND_BY)
        case "ended":
            return event_name, ("Thank you for joining",)
        case _:
            return event_name, next_line or ("Please stay with us",)


def _hold_text(event_name: str, text: str) -> SlateText:
    """The operator's text as the headline when it is short, else "Please stand by"
    over the text wrapped into a few lines; the event's name below. No "next" line: what
    comes after a hold is the operator's call."""
    text = " ".join(text.split())
    if len(text) <= HEADLINE_CHARS:
        return text, (event_name,)
    lines = textwrap.wrap(text, LINE_CHARS, max_lines=HOLD_LINES, placeholder=" …")
    return STAND_BY, (*lines, event_name)


class SlateCache:
    """Rendered slates by text; rendering takes tens of ms, so it runs off the loop."""

    def __init__(self, width: int, height: int, limit: int = 32) -> None:
        self._width, self._height, self._limit = width, height, limit
        self._pictures: dict[SlateText, Plane] = {}
        self._lock = threading.Lock()

    def render(self, text: SlateText) -> Plane:
        with self._lock:
            cached = self._pictures.get(text)
        if cached is not None:
            return cached
        picture = slate(self._width, self._height, text[0], text[1])
        with self._lock:
            if len(self._pictures) >= self._limit:
                self._pictures.pop(next(iter(self._pictures)))
            self._pictures[text] = picture
        return picture
