"""State names that cross the layers: metric label values, API fields, report records.

They are contracts (``jalsa_relay_state{state=...}``, ``/api/state``, ``report.json``), so
they are defined once here, in the leaf, for the relays that set them and the monitoring
that reads them.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

RelayState: TypeAlias = Literal["connecting", "live", "retrying", "paused", "stopped"]
RELAY_STATES: Final[tuple[RelayState, ...]] = (
    "connecting",
    "live",
    "retrying",
    "paused",
    "stopped",
)

OnAirKind: TypeAlias = Literal["speaker", "fallback", "slate"]
"""What the program shows: a speaker's own feed, their recorded fallback, or a slate
(``on_air_kind`` in ``/api/state`` and the samples log, read by monitoring)."""
