"""Names vulture cannot see being used (``python3 -m vulture``, configured in pyproject.toml).

Never executed. Vulture matches by name, so one entry covers the name everywhere. Each
entry says who uses it; dead code is removed, not listed here. (FastAPI routes are
covered by ``ignore_decorators``.)
"""

import av
import uvicorn

from monitoring.listeners import DestinationListeners
from monitoring.metrics import ShowCollector
from monitoring.metrics_endpoint import Bind
from monitoring.outage_watch import OutagesSnapshot
from orchestrator.edge.fanout import ContributionSnapshot
from orchestrator.ingest.webrtc import SpeakerSourceSnapshot
from orchestrator.program.ladder import RenditionSnapshot
from orchestrator.program.source import SourceSnapshot
from orchestrator.show import Show
from orchestrator.speakers.voice_buffer import VoiceJitterBuffer
from relays.destination import DestinationSnapshot

# prometheus_client calls collect() on every registered collector at scrape time.
ShowCollector.collect

# uvicorn.Server subclasses (service, probe agent): the override and the flag it polls.
uvicorn.Server.capture_signals
uvicorn.Server.should_exit

# PyAV stream, codec and frame settings: assigned here, read by libav.
av.video.stream.VideoStream.pix_fmt
av.video.stream.VideoStream.bit_rate
av.video.stream.VideoStream.thread_type
av.codec.context.CodecContext.gop_size
av.audio.stream.AudioStream.layout
av.VideoFrame.pict_type
av.AudioFrame.sample_rate
av.codec.context.CodecContext.flags

# Snapshot fields read only as JSON: /api/state and /api/monitoring serve
# dataclasses.asdict(...) to the console (last_error) and to operators (docs/speakers.md).
SourceSnapshot.frames  # also ProgramSnapshot.frames
SourceSnapshot.last_error
SpeakerSourceSnapshot.level
SpeakerSourceSnapshot.pictures_in
SpeakerSourceSnapshot.audio_in
OutagesSnapshot.recent
DestinationSnapshot.live_check  # the console's destinations table, /api/state
DestinationSnapshot.sent_packets  # /api/state; bench/benchlib.py reads it
DestinationListeners.updated_at  # /api/state listeners
DestinationListeners.polls

# The rundown's change counter and its wait, for a console's push (/api/live); used by
# tests/orchestrator/test_rundown_control.py.
Show.rundown_changes
Show.wait_rundown_change

# An HLS ladder's renditions in /api/state (tests/e2e/test_hls_ladder.py reads them).
RenditionSnapshot.dropped_frames

# The edge's contribution snapshot is served whole by its /healthz (dataclasses.asdict).
ContributionSnapshot.relays
ContributionSnapshot.program_seconds
# uvicorn reads them when it loads its config: TLS of jalsa edge's contribution route.
uvicorn.Config.ssl_certfile
uvicorn.Config.ssl_keyfile

# A Protocol's call signature (monitoring/metrics_endpoint.py: what OnLoop.bind is).
Bind.__call__

# aiortc's JitterBuffer.add calls it (orchestrator/speakers/voice_buffer.py overrides it).
VoiceJitterBuffer._remove_frame
