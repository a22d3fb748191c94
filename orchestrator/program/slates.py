"""What each slate says (pure), and the cache of their rendered pictures."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime

from orchestrator.event import SpeakerSpec
from orchestrator.program.graphics import Plane, slate
from orchestrator.rundown import OnAir, Slot

SlateText = tuple[str, tuple[str, ...]]


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
        case "ended":
            return event_name, ("Thank you for joining",)
        case _:
            return event_name, next_line or ("Please stay with us",)


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
