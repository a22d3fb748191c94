"""What monitoring reads of a running show, as Protocols.

monitoring/ sits beside relays/ and below the runtime (orchestrator/show, ingest), so it
never imports them: the collectors and the samples log read any object of this shape,
which :class:`orchestrator.show.ShowSnapshot` is (mypy checks it where the service wires
them together). Only the fields monitoring uses are named here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from monitoring.uplink import UplinkEstimate
from orchestrator.event.states import OnAirKind, RelayState


class ProgramView(Protocol):
    @property
    def up(self) -> bool: ...
    @property
    def seconds(self) -> float: ...
    @property
    def late_resets(self) -> int: ...
    @property
    def audio_peak_dbfs(self) -> float: ...
    @property
    def input_speaker(self) -> str: ...
    @property
    def input_peak_dbfs(self) -> float: ...


class DestinationView(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> RelayState: ...
    @property
    def sent_bytes(self) -> int: ...
    @property
    def reconnects(self) -> int: ...
    @property
    def dropped_video(self) -> int: ...
    @property
    def dropped_audio(self) -> int: ...
    @property
    def lag_seconds(self) -> float: ...


@runtime_checkable
class SpeakerLinkView(Protocol):
    """A browser speaker's source: the link's state and quality."""

    @property
    def speaker(self) -> str: ...
    @property
    def connected(self) -> bool: ...
    @property
    def bitrate_bps(self) -> float | None: ...
    @property
    def packet_loss_ratio(self) -> float | None: ...
    @property
    def rtt_seconds(self) -> float | None: ...
    @property
    def level_dbfs(self) -> float: ...
    @property
    def concealed_seconds(self) -> float: ...  # voice rebuilt for lost packets, so far


@runtime_checkable
class SpeakerSendingView(Protocol):
    """What a browser speaker's page says of its own sending."""

    @property
    def sent_bitrate_bps(self) -> float | None: ...
    @property
    def video_paused(self) -> bool: ...


class ShowView(Protocol):
    @property
    def event(self) -> str: ...
    @property
    def on_air(self) -> str: ...
    @property
    def on_air_kind(self) -> OnAirKind: ...
    @property
    def ends_at(self) -> float | None: ...
    @property
    def speakers(self) -> Sequence[str]: ...
    @property
    def live_speakers(self) -> Sequence[str]: ...
    @property
    def program(self) -> ProgramView: ...
    @property
    def destinations(self) -> Sequence[DestinationView]: ...
    @property
    def sources(self) -> Sequence[object]: ...
    @property
    def uplink(self) -> UplinkEstimate | None: ...


def speaker_levels(show: ShowView) -> dict[str, float]:
    """Each speaker's input level where one is measured: dBFS, the peak of the last
    second, before the program's mute and gain.

    The speaker on air: what the program receives from their feed (clip, pulled stream,
    test pattern, browser or fallback). A live speaker off air: their browser feed's
    while they are connected (in the green room). Other speakers have none.
    """
    levels = {
        source.speaker: source.level_dbfs
        for source in show.sources
        if isinstance(source, SpeakerLinkView) and source.connected
    }
    program = show.program
    if program.input_speaker == show.on_air and program.input_speaker in show.speakers:
        levels[program.input_speaker] = program.input_peak_dbfs
    return levels
