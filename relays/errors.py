"""Why a destination's connection failed, in words an operator can act on.

Every failure a writer sees becomes a :class:`RelayError` (or an ``OSError`` from the
socket layer, or an FFmpeg error from a local file). Messages never carry a stream key
or password: the destination redacts them once more before they reach a log or the API.
"""

from __future__ import annotations


class RelayError(Exception):
    """A destination's connection failed; the message says why (no secrets in it)."""


class ProtocolError(RelayError):
    """The server does not speak the protocol as expected (not RTMP, a broken message)."""


class PublishRefused(RelayError):
    """The server answered and said no: a rejected connect, a bad stream key, a
    mount in use. The message carries the server's own description."""


class LinkStalled(RelayError):
    """Bytes are waiting but the link has taken none for too long (a blackhole)."""


class ConnectFailed(RelayError):
    """The connection could not be set up: DNS, refused, unreachable, TLS, timeout."""
