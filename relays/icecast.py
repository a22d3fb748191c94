"""An Icecast source client as a sans-I/O state machine: an HTTP PUT that never ends.

Icecast 2.4 takes a source as ``PUT /mount`` with basic auth and the stream's content
type; after ``HTTP/1.1 100 Continue`` (we send ``Expect: 100-continue``) or ``200 OK``
the body is the stream itself, here ADTS (AAC with a 7-byte header per frame, so a
listener can start anywhere). Errors come back as a status line: 401 (wrong source
password), 403 (mount in use, or too many sources), 404 and so on.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias
from urllib.parse import quote, unquote, urlsplit

from relays.errors import ProtocolError, PublishRefused
from relays.outbox import Outbox

USER_AGENT: Final = "jalsa"
BODY: Final = "body"
_MAX_RESPONSE_HEAD: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class IcecastTarget:
    """Where to send the source: host, port, mount, credentials (never in ``repr``)."""

    host: str
    port: int
    mount: str
    user: str
    password: str = field(repr=False)


def icecast_target(url: str) -> IcecastTarget:
    """Read ``icecast://user:password@host:port/mount``.

    Raises:
        ValueError: No host, password or mount.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "icecast":
        raise ValueError("not an icecast:// URL")
    if not parts.hostname or not parts.password or parts.path in ("", "/"):
        raise ValueError("the URL needs icecast://source:PASSWORD@host:port/mount")
    return IcecastTarget(
        host=parts.hostname,
        port=parts.port or 8000,
        mount="/" + parts.path.lstrip("/"),
        user=unquote(parts.username or "source"),
        password=unquote(parts.password),
    )


IcecastState: TypeAlias = Literal["request", "live", "closed"]


class IcecastSourceSession:
    """One source connection's protocol state.

    Attributes:
        state: ``request`` (waiting for the answer), ``live`` or ``closed``.

    Args:
        target: Where to send.
        name: The stream's name for listeners (``Ice-Name``).
        content_type: The body's type: ``audio/aac`` for ADTS.
    """

    def __init__(
        self, target: IcecastTarget, *, name: str, content_type: str = "audio/aac"
    ) -> None:
        self.target = target
        self.state: IcecastState = "request"
        self._name = name
        self._content_type = content_type
        self.outbox = Outbox(BODY)
        self._head = bytearray()
        self._initiated = False

    def initiate(self) -> None:
        """Queue the request head."""
        if self._initiated:
            raise RuntimeError("the session was already initiated")
        self._initiated = True
        t = self.target
        credentials = base64.b64encode(f"{t.user}:{t.password}".encode()).decode("ascii")
        host = f"[{t.host}]" if ":" in t.host else t.host
        lines = [
            f"PUT {quote(t.mount)} HTTP/1.1",
            f"Host: {host}:{t.port}",
            f"Authorization: Basic {credentials}",
            f"User-Agent: {USER_AGENT}",
            f"Content-Type: {self._content_type}",
            f"Ice-Name: {_header_value(self._name)}",
            "Ice-Public: 0",
            "Expect: 100-continue",
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.outbox.put(BODY, head)

    def data_to_send(self, limit: int | None = None) -> bytes:
        """What to send next, up to about ``limit`` bytes (all of it if None)."""
        return self.outbox.take(limit)

    @staticmethod
    def lane_of(kind: str) -> str:
        return BODY

    @property
    def live(self) -> bool:
        return self.state == "live"

    def receive_data(self, data: bytes) -> None:
        """Handle bytes from the server: the answer to the PUT.

        Raises:
            PublishRefused: Icecast said no (wrong password, mount in use...).
            ProtocolError: The answer is not HTTP.
        """
        if self.state != "request":
            # Icecast says nothing more to a source; a late status line is a refusal.
            self._head.clear()
        self._head += data
        if len(self._head) > _MAX_RESPONSE_HEAD:
            raise ProtocolError("the server's answer to the source request is too long")
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if not self._head.startswith(b"HTTP/"[: len(self._head)]):
                raise ProtocolError("the server did not answer as HTTP: is this Icecast?")
            return
        head = bytes(self._head[:end]).decode("latin-1")
        del self._head[: end + 4]
        status_line = head.split("\r\n", 1)[0]
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"the server did not answer as HTTP ({status_line[:60]!r})")
        code = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        if code in (100, 200):
            self.state = "live"
            return
        hint = {
            401: "check the source user and password in the icecast:// URL",
            403: "the mount is in use by another source, or Icecast refuses more sources",
            404: "check the mount point",
        }.get(code, "")
        said = bytes(self._head[:120]).decode("utf-8", "replace").strip()
        detail = f"{code} {reason}".strip()
        if said and said.isprintable():
            detail += f" ({said})"
        if hint:
            detail += f": {hint}"
        raise PublishRefused(f"Icecast refused the source: {detail}")

    def send_media(self, data: bytes) -> None:
        """Queue stream bytes (the PUT body).

        Raises:
            RuntimeError: Not live yet.
        """
        if not self.live:
            raise RuntimeError("the source is not accepted yet")
        self.outbox.put(BODY, data)

    def finish(self) -> None:
        self.state = "closed"


def _header_value(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:200]
