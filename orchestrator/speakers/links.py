"""Speakers' join links: HMAC-signed tokens bound to a speaker, the event and an expiry.

A token is ``<speaker>.<event>.<expires>.<generation>.<mac>``:

- ``speaker``: the speaker's id (ids never contain a dot);
- ``event``: 8 hex digits of SHA-256 of the event's name, so a link made for another
  event is told apart from a forged one;
- ``expires``: epoch seconds;
- ``generation``: the speaker's link generation when it was made; revoking a speaker's
  links raises their generation, so every older link stops working at once;
- ``mac``: HMAC-SHA-256 of the fields above under the secret, first 16 bytes, base64url.

The core (:func:`sign`, :func:`check`) is pure: no clock, no files. :class:`Links` is the
small I/O shell: the secret (``JALSA_SECRET`` or ``<state dir>/secret``, created once,
mode 0600) and the revocation list (``<state dir>/revoked-links.json``).

A token is a credential: it is never logged, never put in metrics or API output.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from orchestrator.event import Event
from orchestrator.event.secret import Secret, stored_secret
from orchestrator.event.secret import SecretError as SecretError  # callers catch it from here
from orchestrator.rundown import Rundown

SECRET_ENV: Final = "JALSA_SECRET"
SECRET_FILE: Final = "secret"
REVOKED_FILE: Final = "revoked-links.json"
MIN_SECRET_LENGTH: Final = 16
GRACE_SECONDS: Final = 3600.0  # links stay valid this long after the rundown's end
MAX_TOKEN_LENGTH: Final = 200

_DOMAIN: Final = b"jalsa-link/1"
_MAC_BYTES: Final = 16
_TOKEN: Final = re.compile(
    r"(?P<speaker>[a-z0-9][a-z0-9_-]{0,39})\.(?P<event>[0-9a-f]{8})\.(?P<expires>[0-9]{1,12})"
    r"\.(?P<generation>[0-9]{1,6})\.(?P<mac>[A-Za-z0-9_-]{22})"
)


class LinkProblem(enum.Enum):
    """Why a token was refused; ``status`` is the HTTP status to answer with."""

    FORGED = "forged"  # not a token, or not signed by our secret
    OTHER_EVENT = "other_event"  # signed by us, but for another event
    UNKNOWN_SPEAKER = "unknown_speaker"  # no such live speaker in this event
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def status(self) -> int:
        return 401 if self is LinkProblem.FORGED else 403

    @property
    def advice(self) -> str:
        """What the speaker should do, in one sentence."""
        return _ADVICE[self]


_ADVICE: Final = {
    LinkProblem.FORGED: "This link is not valid. Open the link exactly as the organisers sent "
    "it (copy the whole link), or ask them to send it again.",
    LinkProblem.OTHER_EVENT: "This link is for another event. Ask the organisers for your link "
    "to this one.",
    LinkProblem.UNKNOWN_SPEAKER: "This link is not for a speaker of this event any more. Ask "
    "the organisers for a new link.",
    LinkProblem.EXPIRED: "This link has expired. Ask the organisers for a new link.",
    LinkProblem.REVOKED: "This link has been replaced by a newer one. Use the latest link "
    "the organisers sent you, or ask them for a new one.",
}


class LinkRefused(Exception):
    """A token that may not be used; ``problem`` says why."""

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token says: who, for which event, until when, which generation."""

    speaker: str
    event: str  # event_tag() of the event's name
    expires: int  # epoch seconds
    generation: int = 0


def event_tag(name: str) -> str:
    """The 8-hex-digit tag that binds a link to an event (by its name)."""
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def _mac(key: bytes, claims: Claims) -> str:
    message = b"|".join(
        (
            _DOMAIN,
            claims.speaker.encode(),
            claims.event.encode(),
            str(claims.expires).encode(),
            str(claims.generation).encode(),
        )
    )
    digest = hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(claims: Claims, key: bytes) -> str:
    """The token for ``claims`` under ``key``."""
    fields = (claims.speaker, claims.event, str(claims.expires), str(claims.generation))
    return ".".join((*fields, _mac(key, claims)))


def parse(token: str, key: bytes) -> Claims:
    """The claims of an authentic token, checked against nothing else.

    Raises:
        LinkRefused: FORGED when the token is malformed or its MAC is wrong.
    """
    match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise LinkRefused(LinkProblem.FORGED)
    claims = Claims(
        match["speaker"], match["event"], int(match["expires"]), int(match["generation"])
    )
    if not hmac.compare_digest(_mac(key, claims), match["mac"]):
        raise LinkRefused(LinkProblem.FORGED)
    return claims


def check(
    token: str,
    key: bytes,
    *,
    event: str,
    speakers: frozenset[str],
    now: float,
    generations: Mapping[str, int],
) -> Claims:
    """The claims of a token that may be used now for this event.

    Args:
        token: from the link.
        key: the HMAC secret.
        event: :func:`event_tag` of this event.
        speakers: the ids of this event's live speakers.
        now: epoch seconds.
        generations: each speaker's current link generation (absent: 0).

    Raises:
        LinkRefused: FORGED, OTHER_EVENT, UNKNOWN_SPEAKER, EXPIRED or REVOKED.
    """
    claims = parse(token, key)
    if not hmac.compare_digest(claims.event, event):
        raise LinkRefused(LinkProblem.OTHER_EVENT)
    if claims.speaker not in speakers:
        raise LinkRefused(LinkProblem.UNKNOWN_SPEAKER)
    if now >= claims.expires:
        raise LinkRefused(LinkProblem.EXPIRED)
    if claims.generation < generations.get(claims.speaker, 0):
        raise LinkRefused(LinkProblem.REVOKED)
    return claims


def default_expiry(event: Event, now: float) -> int:
    """When links made ``now`` expire: the rundown's estimated end plus an hour.

    The end is estimated by laying the rundown out from ``now``: the last hard start
    plus what follows it, or, with no hard starts, ``now`` plus the sum of durations.
    """
    ends_at = Rundown(event.rundown, starts_at=now).ends_at
    return int(max(ends_at, now) + GRACE_SECONDS)


# -- the I/O shell --------------------------------------------------------------------------


def load_secret(state_dir: Path, env: Mapping[str, str] | None = None) -> Secret:
    """``JALSA_SECRET``, or the secret kept in ``<state dir>/secret`` (created once, 0600).

    Raises:
        SecretError: the environment's secret is shorter than 16 characters.
    """
    secret, _ = stored_secret(state_dir, SECRET_FILE, SECRET_ENV, env, min_length=MIN_SECRET_LENGTH)
    return secret


def read_generations(state_dir: Path) -> dict[str, int]:
    """Each speaker's link generation from the revocation list (empty if none)."""
    try:
        data = json.loads((state_dir / REVOKED_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{state_dir / REVOKED_FILE} is unreadable ({exc}): fix or delete it"
        ) from None
    speakers = data.get("speakers", {}) if isinstance(data, dict) else {}
    return {
        str(k): int(v)
        for k, v in speakers.items()
        if isinstance(v, int) and not isinstance(v, bool)
    }


def revoke(state_dir: Path, speaker: str) -> int:
    """Revoke every link of ``speaker`` made so far; returns their new generation."""
    generations = read_generations(state_dir)
    generations[speaker] = generations.get(speaker, 0) + 1
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / REVOKED_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"speakers": generations}, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)  # atomic: a running jalsa never reads half a file
    return generations[speaker]


class Links:
    """Issues and checks an event's links. ``check`` reads no file: call ``refresh``
    (off the event loop) to pick up revocations made by ``jalsa links --revoke``."""

    def __init__(self, event: Event, state_dir: Path, env: Mapping[str, str] | None = None):
        self.event = event
        self.state_dir = state_dir
        self._key = load_secret(state_dir, env).reveal().encode()
        self._tag = event_tag(event.info.name)
        self.speakers = frozenset(s.id for s in event.speakers if s.live)
        self._generations = read_generations(state_dir)
        self._revoked_mtime = self._mtime()

    def _mtime(self) -> int:
        try:
            return (self.state_dir / REVOKED_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def refresh(self) -> None:
        """Re-read the revocation list if it changed (blocking: run it in a thread)."""
        mtime = self._mtime()
        if mtime != self._revoked_mtime:
            self._generations = read_generations(self.state_dir)
            self._revoked_mtime = mtime

    def generation(self, speaker: str) -> int:
        """The speaker's current link generation: links of an older one are revoked."""
        return self._generations.get(speaker, 0)

    def issue(self, speaker: str, expires: int) -> str:
        """A token for a live speaker of this event.

        Raises:
            KeyError: ``speaker`` is not a live speaker of the event.
        """
        if speaker not in self.speakers:
            raise KeyError(speaker)
        generation = self._generations.get(speaker, 0)
        return sign(Claims(speaker, self._tag, expires, generation), self._key)

    def check(self, token: str, now: float | None = None) -> Claims:
        """The claims of a usable token.

        Raises:
            LinkRefused: see :func:`check`.
        """
        return check(
            token,
            self._key,
            event=self._tag,
            speakers=self.speakers,
            now=time.time() if now is None else now,
            generations=self._generations,
        )

    def authentic(self, token: str) -> Claims:
        """The claims of a token we signed for this event, expired or revoked or not
        (ending a session needs no more than that).

        Raises:
            LinkRefused: FORGED or OTHER_EVENT.
        """
        claims = parse(token, self._key)
        if claims.event != self._tag:
            raise LinkRefused(LinkProblem.OTHER_EVENT)
        return claims
