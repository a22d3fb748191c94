"""``[[ice_servers]]``: STUN/TURN servers offered to speakers' browsers and to aiortc.

Speakers on mobile networks are often behind carrier-grade NAT, where only TURN works.
A TURN server is given either a fixed login (``username`` + ``credential``: every speaker
receives the same one, for as long as it is valid) or, better, the server's shared
``secret`` (coturn's ``use-auth-secret`` / ``static-auth-secret``): then each speaker gets
a login of their own that expires after ``ttl``, the "TURN REST API" convention that
coturn and the major TURN services implement:

    username = "<expiry, Unix seconds>:<who>"
    password = base64(HMAC-SHA1(secret, username))

A leaked page or WHIP response then opens the relay to nobody for long: a login made for a
speaker's link expires with the link, if that is sooner than ``ttl``. A revoked link
cannot cut its TURN logins short (coturn takes a REST login until it expires), so keep
``ttl`` short. Credentials and secrets are held as :class:`Secret` and revealed only where
a login is made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from orchestrator.event.duration import format_duration, parse_duration
from orchestrator.event.reader import Table, quote
from orchestrator.event.secret import Secret

ICE_SCHEMES: Final = ("stun:", "turn:", "turns:")
TURN_SCHEMES: Final = ("turn:", "turns:")
_KEYS: Final = ("urls", "username", "credential", "secret", "ttl")
DEFAULT_TTL: Final = 12 * 3600.0
"""How long a login made from ``secret`` is valid: a speaker's whole day, by default."""
MIN_TTL: Final = 600.0
MAX_TTL: Final = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class IceServer:
    """One ``[[ice_servers]]`` table."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: Secret | None = None
    secret: Secret | None = None
    """The TURN server's shared secret: logins are made per person, and expire."""
    ttl: float = DEFAULT_TTL

    @property
    def is_turn(self) -> bool:
        return _is_turn(self.urls)

    def login(self, who: str, now: float, until: int | None = None) -> tuple[str, str] | None:
        """``(username, password)`` for ``who`` at ``now`` (Unix seconds), or None if the
        server needs none (STUN). Made from :attr:`secret` when there is one (valid until
        ``now + ttl``, or ``until`` if sooner: the expiry of the link it is made for),
        else the fixed login.

        A TURN REST login cannot be revoked: coturn takes it until it expires, whatever
        happens to the link. Hence the short lifetime."""
        if self.secret is not None:
            expires = int(now + self.ttl)
            return turn_login(
                self.secret.reveal(), who, expires if until is None else min(expires, until)
            )
        if self.username is not None and self.credential is not None:
            return self.username, self.credential.reveal()
        return None


def _is_turn(urls: Sequence[str]) -> bool:
    return any(url.lower().startswith(TURN_SCHEMES) for url in urls)


def turn_login(secret: str, who: str, expires: int) -> tuple[str, str]:
    """The TURN REST API login for ``who``, valid until ``expires`` (Unix seconds)."""
    username = f"{expires}:{who}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def parse_ice_servers(tables: Sequence[Table]) -> tuple[IceServer, ...]:
    """Read every ``[[ice_servers]]`` table. Problems go to each table's collector."""
    result = []
    for table in tables:
        table.check_keys(_KEYS)
        urls = _urls(table)
        username = table.string("username")
        credential = table.string("credential", secret=True)
        secret = table.string("secret", secret=True)
        turn = _is_turn(urls)
        fixed = table.has("username") or table.has("credential")
        if table.has("secret") and fixed:
            table.problem(
                "secret",
                "is given with username/credential: use either secret (short-lived logins "
                "per speaker, coturn's static-auth-secret) or username + credential, not both",
            )
        elif table.has("secret") and not turn and urls:
            table.problem("secret", "is for TURN servers: add a turn: or turns: URL, or remove it")
        elif (
            turn
            and not table.has("secret")
            and not (table.has("username") and table.has("credential"))
        ):
            table.problem(
                "",
                'TURN servers need secret = "${TURN_SECRET}" (coturn\'s static-auth-secret: '
                'short-lived logins) or username = "..." and credential = "${TURN_PASSWORD}"',
            )
        if secret is not None and len(secret) < 16:
            table.problem("secret", "is too short: use at least 16 random characters")
        result.append(
            IceServer(
                urls,
                None if username is None else str(username),
                None if credential is None else Secret(str(credential)),
                None if secret is None else Secret(str(secret)),
                _ttl(table),
            )
        )
    return tuple(result)


def _ttl(table: Table) -> float:
    text = table.string("ttl")
    if text is None:
        return DEFAULT_TTL
    if not table.has("secret"):
        table.problem("ttl", "only applies with secret = ...: remove it, or add the secret")
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        table.problem("ttl", str(exc))
        return DEFAULT_TTL
    if not MIN_TTL <= seconds <= MAX_TTL:
        table.problem(
            "ttl",
            f"{format_duration(seconds)} is out of range: between "
            f"{format_duration(MIN_TTL)} and {format_duration(MAX_TTL)}",
        )
        return DEFAULT_TTL
    return seconds


def _urls(table: Table) -> tuple[str, ...]:
    if not table.has("urls"):
        table.problem("urls", 'is missing: add urls = ["stun:stun.l.google.com:19302"]')
        return ()
    value = table.raw("urls")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        table.problem("urls", f"expected a string or an array of strings, got {quote(value)}")
        return ()
    if not items:
        table.problem("urls", 'is empty: add at least one, like "stun:stun.l.google.com:19302"')
    urls = []
    for item in items:
        if not item.lower().startswith(ICE_SCHEMES):
            table.problem(
                "urls",
                f"{quote(item)} is not an ICE server URL: write stun:host:port, turn:host:port "
                "or turns:host:port",
            )
        else:
            urls.append(str(item))
    return tuple(urls)
