"""How each kind of destination is written, and how a writer for it is opened.

- ``rtmp``: our RTMP(S) client publishes the packets' shared FLV tags
  (:mod:`relays.framing`, :mod:`relays.rtmp.session`, :mod:`relays.publisher`).
- ``icecast``: PyAV muxes ADTS into memory; our Icecast source client sends it.
- ``file`` and ``hls``: PyAV writes straight to disk (:mod:`relays.files`).
- ``edge``: the studio's one contribution to a cloud edge, FLV in an HTTP PUT
  (:mod:`relays.contribution`).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from av.stream import Stream

from orchestrator.event.destination_spec import DestinationSpec
from relays.contribution import ContributionSession, FlvBodyFraming, contribution_target
from relays.files import LocalWriter, output_for
from relays.framing import AdtsFraming, FlvFraming
from relays.icecast import IcecastSourceSession, icecast_target
from relays.publisher import Publisher
from relays.rtmp.session import RtmpPublishSession, rtmp_target
from relays.writer import Writer


def open_writer(
    spec: DestinationSpec,
    templates: tuple[Stream, Stream],
    state_dir: Path,
    attempt: int,
    *,
    deadline: float,
    cancelled: Callable[[], bool],
    stall_timeout: float,
) -> Writer:
    """Open ``spec``'s output; for a network destination, connect and start the stream.

    ``attempt`` > 0 is a reconnect (a recording then gets a new file name).

    Raises:
        RelayError: The connection or the server's acceptance failed (a clear reason).
        OSError: The socket or the file failed.
        av.error.FFmpegError: PyAV could not open a local output.
        ValueError: The URL cannot be used.
    """
    if spec.kind == "rtmp":
        target = rtmp_target(spec.url, spec.key.reveal() if spec.key is not None else None)
        rtmp = RtmpPublishSession(target)
        return Publisher.connect(
            target.host,
            target.port,
            rtmp,
            lambda: FlvFraming(rtmp, templates, audio_only=spec.audio_only),
            tls=tls_context(spec) if target.tls else None,
            deadline=deadline,
            cancelled=cancelled,
            stall_timeout=stall_timeout,
        )
    if spec.kind == "icecast":
        ice = icecast_target(spec.target_url())
        icecast = IcecastSourceSession(ice, name=spec.name)
        return Publisher.connect(
            ice.host,
            ice.port,
            icecast,
            lambda: AdtsFraming(icecast, templates),
            tls=None,
            deadline=deadline,
            cancelled=cancelled,
            stall_timeout=stall_timeout,
        )
    if spec.kind == "edge":
        edge = contribution_target(spec.url, spec.key.reveal() if spec.key is not None else "")
        contribution = ContributionSession(edge, studio=spec.name)
        return Publisher.connect(
            edge.host,
            edge.port,
            contribution,
            lambda: FlvBodyFraming(contribution, templates),
            tls=tls_context(spec) if edge.tls else None,
            deadline=deadline,
            cancelled=cancelled,
            stall_timeout=stall_timeout,
        )
    return LocalWriter(output_for(spec, state_dir, attempt), templates)


def tls_context(spec: DestinationSpec) -> ssl.SSLContext:
    """The TLS settings of an rtmps:// destination (or an https:// edge).

    Verification is on by default against the system's CAs (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` replace them, as everywhere in OpenSSL); ``ca_file`` adds a CA
    for this destination; ``verify_tls = false`` turns checking off.
    """
    context = ssl.create_default_context()
    if spec.ca_file:
        context.load_verify_locations(cafile=spec.ca_file)
    if not spec.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
