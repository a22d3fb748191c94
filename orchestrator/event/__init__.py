"""The event model: the event file, read and validated, and every spec in it.

A leaf of the layers: everything in jalsa may import it, and it imports nothing of jalsa
outside this package (nor PyAV, numpy or PIL). :func:`load_event` reads a TOML file
(:mod:`orchestrator.event.event_file`); the specs it holds are in the ``*_spec`` modules;
``${VAR}``, typed reading and key names in :mod:`orchestrator.event.reader`; problems and
their wording in :mod:`orchestrator.event.problems`; secrets in
:mod:`orchestrator.event.secret`.
"""

from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.event_file import Event, EventInfo, SegmentSpec, load_event, parse_event
from orchestrator.event.problems import EventError, Problem
from orchestrator.event.program_spec import ProgramSpec
from orchestrator.event.speaker_spec import SpeakerSpec

__all__ = [
    "DestinationSpec",
    "Event",
    "EventError",
    "EventInfo",
    "Problem",
    "ProgramSpec",
    "SegmentSpec",
    "SpeakerSpec",
    "load_event",
    "parse_event",
]
