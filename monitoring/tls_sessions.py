"""TLS session resumption for the probes: after the first round, a handshake sends no
certificate chain.

A full TLS handshake puts the server's certificate chain on the link (3–5 KB with real
chains), per target, every round: most of a pushing agent's data when nothing is
downloaded (docs/monitoring.md, "Data"). With the session ticket the server gave last
time, the next handshake is a resumption (TLS 1.3 PSK): a few hundred bytes. The check
means the same: the name is still sent in the clear (SNI), so a block by name still
stops it, and a box in the path that answers in the server's place cannot resume a
ticket only the server can read, so it falls back to a full handshake, whose certificate
fails verification as before.

asyncio's ``start_tls`` takes no session; it builds its TLS object with the context's
``wrap_bio``, which creates ``context.sslobject_class``. :func:`resume_sessions` sets that
class on the context to one that passes the stored session of the host it connects to.
"""

from __future__ import annotations

import ssl
from typing import Any


class SessionCache:
    """The newest resumable session per host name (as many entries as target hosts)."""

    def __init__(self) -> None:
        self._sessions: dict[str, ssl.SSLSession] = {}

    def get(self, host: str) -> ssl.SSLSession | None:
        return self._sessions.get(host)

    def keep(self, host: str, ssl_object: object) -> bool:
        """Store ``ssl_object``'s session for ``host`` if the server gave a ticket; whether
        it did. (Under TLS 1.3 tickets come after the handshake, with the server's next
        data: read something before asking.)"""
        session = getattr(ssl_object, "session", None)
        if not isinstance(session, ssl.SSLSession) or not session.has_ticket:
            return False
        self._sessions[host] = session
        return True


def resume_sessions(context: ssl.SSLContext, cache: SessionCache) -> None:
    """Make every client connection of ``context`` offer ``cache``'s session for its host."""

    class Resuming(ssl.SSLObject):
        @classmethod
        def _create(
            cls,
            incoming: ssl.MemoryBIO,
            outgoing: ssl.MemoryBIO,
            server_side: bool = False,
            server_hostname: str | None = None,
            session: ssl.SSLSession | None = None,
            context: ssl.SSLContext | None = None,
        ) -> Any:
            if session is None and server_hostname and not server_side:
                session = cache.get(server_hostname)
            create = super()._create  # type: ignore[misc]
            return create(
                incoming,
                outgoing,
                server_side=server_side,
                server_hostname=server_hostname,
                session=session,
                context=context,
            )

    context.sslobject_class = Resuming
