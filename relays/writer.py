"""What a destination's writer thread drives: one connection (or one file) at a time.

Two kinds implement :class:`Writer`: :class:`relays.files.LocalWriter` (a
recording or the HLS mirror, muxed by PyAV straight to disk) and
:class:`relays.publisher.Publisher` (RTMP(S) or Icecast: PyAV muxes into memory, our
own client owns the socket).
"""

from __future__ import annotations

from typing import Protocol

from relays.packet import EncodedPacket, PacketKind


class Writer(Protocol):
    """One open output. Every method runs on the destination's writer thread."""

    @property
    def pending(self) -> int:
        """Bytes accepted by :meth:`write` and not yet handed to the link."""
        ...

    @property
    def sent_bytes(self) -> int:
        """Bytes handed to the link (or file) so far."""
        ...

    @property
    def sent_seconds(self) -> float | None:
        """Program time of the newest packet fully handed to the link, None before any."""
        ...

    def accepts(self) -> tuple[PacketKind, ...]:
        """The kinds of packet the writer can take now without growing what is in
        flight past its small bound; what it cannot take stays in the destination's
        queue, where the drop policy decides what a slow link gets."""
        ...

    def write(self, packet: EncodedPacket) -> None:
        """Mux ``packet`` and queue its bytes for the link."""
        ...

    def service(self, timeout: float) -> None:
        """Move bytes: send what the link takes, read what the server says, waiting up
        to ``timeout`` seconds for either.

        Raises:
            RelayError: The server refused or ended the stream, or the link stalled.
            OSError: The connection failed.
        """
        ...

    def finish(self, deadline: float) -> None:
        """End the stream properly (trailer, goodbye) if that can be done before the
        ``time.monotonic()`` deadline; then close."""
        ...

    def abort(self) -> None:
        """Close at once, without a trailer."""
        ...
