"""Speakers' join links: HMAC-signed tokens bound to a speaker, the event and an expiry.

A token is ``<speaker>.<event>.<expires>.<generation>.<mac>``:

- ``speaker``: the speaker's id (ids never contain a dot);
- ``event``: 8 hex digits of SHA-256 of the event's binding: the random event id kept in
  the state dir (``<state dir>/event-id``, created once, 0600) and the event's name, so
  a link made for another event (another state dir, or another name) is told apart from
  a forged one;
- ``expires``: epoch seconds;
- ``generation``: the speaker's link generation when it was made; revoking a speaker's
  links raises their generation, so every older link stops working at once;
- ``mac``: HMAC-SHA-256 of the fields above under the event's key, first 16 bytes,
  base64url. The event's key is HMAC-SHA-256 of the whole binding under the secret: two
  events that share a secret (``JALSA_SECRET``) and a name still have keys of their own.

The core (:func:`sign`, :func:`check`) is pure: no clock, no files. :class:`Links` is the
small I/O shell: the secret (``JALSA_SECRET`` or ``<state dir>/secret``, created once,
mode 0600), the event id, and the revocation list (``<state dir>/revoked-links.json``:
changed under a lock, :func:`revoke`, and replaced atomically).

A token is a credential: it is never logged, never put in metrics or API output.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from orchestrator.event import Event
from orchestrator.event.durable import replace_atomically
from orchestrator.event.secret import Secret, private_dir, stored_secret
from orchestrator.event.secret import SecretError as SecretError  # callers catch it from here
from orchestrator.rundown import Rundown

SECRET_ENV: Final = "JALSA_SECRET"
SECRET_FILE: Final = "secret"
EVENT_ID_FILE: Final = "event-id"
REVOKED_FILE: Final = "revoked-links.json"
LOCK_FILE: Final = "revoked-links.lock"
MIN_SECRET_LENGTH: Final = 16
GRACE_SECONDS: Final = 3600.0  # links stay valid this long after the rundown's end
MAX_EXPIRY_SECONDS: Final = 7 * 86400.0  # no link is made to last longer
MAX_TOKEN_LENGTH: Final = 200

log = logging.getLogger(__name__)

_DOMAIN: Final = b"jalsa-link/2"
_EVENT_KEY_DOMAIN: Final = b"jalsa-link-event/2|"
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
    UNAVAILABLE = "unavailable"  # the revocation list is unreadable: no join until repaired

    @property
    def status(self) -> int:
        if self is LinkProblem.UNAVAILABLE:
            return 503
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
    LinkProblem.UNAVAILABLE: "Joining is paused for a moment on the organisers' side. Try "
    "again in a few minutes, or tell the organisers.",
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
    event: str  # event_tag() of the event's binding
    expires: int  # epoch seconds
    generation: int = 0


def event_tag(binding: str) -> str:
    """The 8-hex-digit tag that tells an event's links apart (see :func:`event_binding`)."""
    return hashlib.sha256(binding.encode()).hexdigest()[:8]


def event_binding(event_id: str, name: str) -> str:
    """What a link is bound to: the state dir's random event id and the event's name."""
    return f"{event_id}/{name}"


def event_key(secret: bytes, binding: str) -> bytes:
    """The key an event's links are signed with: the secret bound to the event."""
    return hmac.new(secret, _EVENT_KEY_DOMAIN + binding.encode(), hashlib.sha256).digest()


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


def parse(token: str, key: bytes, event: str | None = None) -> Claims:
    """The claims of an authentic token, checked against nothing else but, if given, the
    ``event`` tag (a token of another event cannot be verified: its key is another).

    Raises:
        LinkRefused: FORGED when the token is malformed or its MAC is wrong; OTHER_EVENT
            when it carries another tag than ``event``.
    """
    match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise LinkRefused(LinkProblem.FORGED)
    claims = Claims(
        match["speaker"], match["event"], int(match["expires"]), int(match["generation"])
    )
    if event is not None and not hmac.compare_digest(claims.event, event):
        raise LinkRefused(LinkProblem.OTHER_EVENT)
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
    claims = parse(token, key, event)
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
        SecretError: the environment's secret is shorter than 16 characters, or the file is
            too short or open to other users.
    """
    secret, _ = stored_secret(state_dir, SECRET_FILE, SECRET_ENV, env, min_length=MIN_SECRET_LENGTH)
    return secret


def load_event_id(state_dir: Path) -> str:
    """The state dir's random event id (32 hex digits), made once (0600).

    A new state dir is a new event: links made for another one, even with the same secret
    and event name, do not work in it (nor can its fresh revocation list revive them).

    Raises:
        SecretError: the file is too short or open to other users.
    """
    event_id, _ = stored_secret(state_dir, EVENT_ID_FILE, None, make=lambda: secrets.token_hex(16))
    return event_id.reveal()


class RevocationsUnreadable(ValueError):
    """The revocation list does not parse. Never "delete it": that would make every
    revoked link work again."""


def _unreadable(path: Path, problem: object) -> RevocationsUnreadable:
    return RevocationsUnreadable(
        f"{path} cannot be read ({problem}): no speaker can join until it is repaired. Do "
        "NOT delete it: that would make every revoked link work again. Restore it from a "
        'backup, or fix the JSON by hand ({"speakers": {"<id>": <generation>}}; a '
        "generation only ever goes up)"
    )


def read_generations(state_dir: Path) -> dict[str, int]:
    """Each speaker's link generation from the revocation list (empty if none).

    Raises:
        RevocationsUnreadable: the file exists but is not a revocation list.
    """
    path = state_dir / REVOKED_FILE
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    speakers = data.get("speakers") if isinstance(data, dict) else None
    if not isinstance(speakers, dict):
        raise _unreadable(path, 'no "speakers" table')
    return {
        str(k): int(v)
        for k, v in speakers.items()
        if isinstance(v, int) and not isinstance(v, bool)
    }


_THREAD_LOCK: Final = threading.Lock()


@contextlib.contextmanager
def _revocations_locked(state_dir: Path) -> Iterator[None]:
    """Held while the revocation list is read, changed and replaced: by one thread of
    this process (a lock) and one process (``flock`` on the lock file beside it)."""
    with _THREAD_LOCK:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


def revoke(state_dir: Path, speaker: str) -> int:
    """Revoke every link of ``speaker`` made so far; returns their new generation.

    Safe from many threads and processes at once (``jalsa links --revoke`` beside a
    running jalsa): no revocation is lost, and the file always parses.

    Raises:
        RevocationsUnreadable: the list does not parse (nothing is written).
    """
    private_dir(state_dir)
    with _revocations_locked(state_dir):
        generations = read_generations(state_dir)
        generations[speaker] = generations.get(speaker, 0) + 1
        text = json.dumps({"speakers": generations}, indent=2, sort_keys=True) + "\n"
        replace_atomically(state_dir / REVOKED_FILE, text.encode())
    return generations[speaker]


def _file_key(path: Path) -> tuple[int, int, int] | None:
    """What tells a new version of the file: an atomic replace changes the inode even
    when the mtime (coarse on some filesystems) and the size stay the same."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class Links:
    """Issues and checks an event's links. ``check`` reads no file: call ``refresh``
    (off the event loop) to pick up revocations made by ``jalsa links --revoke``.

    An unreadable revocation list refuses every check (UNAVAILABLE, and an error in the
    log naming the file) until it is repaired; generations already known stay known, so
    a repair that loses a revocation does not revive a link this process refused."""

    def __init__(self, event: Event, state_dir: Path, env: Mapping[str, str] | None = None):
        self.event = event
        self.state_dir = state_dir
        binding = event_binding(load_event_id(state_dir), event.info.name)
        self._key = event_key(load_secret(state_dir, env).reveal().encode(), binding)
        self._tag = event_tag(binding)
        self.speakers = frozenset(s.id for s in event.speakers if s.live)
        self._generations: dict[str, int] = {}
        self.problem: str | None = None
        self._revoked_key: tuple[int, int, int] | None = None
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the revocation list if it changed (blocking: run it in a thread)."""
        path = self.state_dir / REVOKED_FILE
        key = _file_key(path)
        if key == self._revoked_key and not force:
            return
        try:
            found = read_generations(self.state_dir)
        except RevocationsUnreadable as error:
            if self.problem != str(error):
                log.error("speaker links: %s", error)
            self.problem = str(error)
        else:
            if self.problem is not None:
                log.warning("speaker links: %s is readable again: joins resume", path)
            self.problem = None
            known = self._generations
            self._generations = {
                s: max(found.get(s, 0), known.get(s, 0)) for s in found.keys() | known.keys()
            }
        self._revoked_key = key

    def generation(self, speaker: str) -> int:
        """The speaker's current link generation: links of an older one are revoked."""
        return self._generations.get(speaker, 0)

    def issue(self, speaker: str, expires: int) -> str:
        """A token for a live speaker of this event.

        Raises:
            KeyError: ``speaker`` is not a live speaker of the event.
            ValueError: ``expires`` is more than :data:`MAX_EXPIRY_SECONDS` away.
            RevocationsUnreadable: the revocation list is unreadable.
        """
        if speaker not in self.speakers:
            raise KeyError(speaker)
        if expires > time.time() + MAX_EXPIRY_SECONDS:
            raise ValueError(f"links last at most {MAX_EXPIRY_SECONDS / 86400:g} days")
        if self.problem is not None:
            raise RevocationsUnreadable(self.problem)
        generation = self._generations.get(speaker, 0)
        return sign(Claims(speaker, self._tag, expires, generation), self._key)

    def check(self, token: str, now: float | None = None) -> Claims:
        """The claims of a usable token.

        Raises:
            LinkRefused: see :func:`check`; UNAVAILABLE while the revocation list is
                unreadable.
        """
        claims = check(
            token,
            self._key,
            event=self._tag,
            speakers=self.speakers,
            now=time.time() if now is None else now,
            generations=self._generations,
        )
        if self.problem is not None:
            raise LinkRefused(LinkProblem.UNAVAILABLE)
        return claims

    def authentic(self, token: str) -> Claims:
        """The claims of a token we signed for this event, expired or revoked or not
        (ending a session needs no more than that).

        Raises:
            LinkRefused: FORGED or OTHER_EVENT.
        """
        return parse(token, self._key, self._tag)
