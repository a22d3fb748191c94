"""Secrets that never print, and URLs made safe to log.

A stream key or token is wrapped in :class:`Secret` as soon as it is read, so that
``repr``, ``str``, f-strings and logging all show ``***``. Only the code that really
needs the value (the muxer opening the ingest URL, the HMAC signer) calls
:meth:`Secret.reveal`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from orchestrator.event.durable import fsync_dir

MASK: Final = "***"


class Secret:
    """A string value that masks itself everywhere but :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:[a-z_-]*(?:key|token|secret|session|sess|sid|auth|pass|password|pwd|sig)"
    r"|signature|jwt|credential|credentials|hash|hmac)=)[^&]*"
)


def sanitize_url(url: str, secrets: tuple[str, ...] = ()) -> str:
    """Return ``url`` with credentials, stream keys and known secrets masked.

    Masks the userinfo password, secret-looking query parameters, the last path
    segment of an RTMP(S) URL (where platforms put the stream key) and any of
    ``secrets`` wherever they appear.
    """
    text = url
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    try:
        parts = urlsplit(text)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    path = parts.path
    if parts.scheme.lower() in {"rtmp", "rtmps"}:
        segments = path.split("/")
        # rtmp://host/app/<key>: the stream name is the key
        if len(segments) > 2 and segments[-1]:
            segments[-1] = MASK
        path = "/".join(segments)
    query = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, "?" + parts.query)[1:]
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def sanitize_source_url(url: str) -> str:
    """A pulled source's URL as it may be shown: the scheme, the host and port and the
    first path segment (the app) only; every other path segment, every query value,
    the password and any fragment are ``***``.

    CDNs and streaming servers put their secrets anywhere in a URL
    (``https://cdn/live/<secret path>/index.m3u8``, ``?apikey=``, ``?session=``,
    ``rtmp://host/app/<key>``), so nothing after the app is trusted to be public. A
    string with no ``scheme://`` (a file path) is returned as it is.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    segments = parts.path.split("/")
    # "/app/a/b" -> ["", "app", "a", "b"]: keep the leading "" and the app.
    path = "/".join(segments[:2] + [MASK if s else s for s in segments[2:]])
    query = "&".join(
        (pair.split("=", 1)[0] + "=" + MASK) if "=" in pair else MASK
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


def source_secrets(url: str) -> tuple[str, ...]:
    """The parts of a pulled source's URL that :func:`sanitize_source_url` hides (the
    path after the app, each query value, the password), for :func:`redact`: an error
    message may quote one of them without the URL around it. Parts of under 4
    characters are left out (masking them would garble the text, not protect it)."""
    if "://" not in url:
        return ()
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return (url,)
    found = [url]
    segments = [s for s in parts.path.split("/")[2:] if s]
    if segments:
        found.append("/".join(segments))
    found.extend(segments)
    found.extend(pair.split("=", 1)[-1] for pair in parts.query.split("&") if pair)
    if parts.fragment:
        found.append(parts.fragment)
    if password:
        found.append(password)
    # Longest first, so a whole path is masked before the segments inside it.
    return tuple(sorted({s for s in found if len(s) >= 4}, key=len, reverse=True))


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact(
    text: str,
    secrets: tuple[str, ...] = (),
    *,
    sanitize: Callable[[str], str] = sanitize_url,
) -> str:
    """``text`` (an error message, a log line) with every URL in it sanitised (by
    ``sanitize``: :func:`sanitize_source_url` for a pulled source's messages).

    Known ``secrets`` are masked first, wherever they appear.
    """
    text = _URL_IN_TEXT.sub(lambda m: sanitize(m.group(0)), text)
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    return text


class SecretError(ValueError):
    """A secret from the environment is unusable, or its file in the state dir is broken."""


MIN_STORED_LENGTH: Final = 32
"""A stored secret file holds at least this many characters (jalsa writes 43 random
URL-safe ones: 32 bytes; 32 characters are at least 16 bytes of entropy as jalsa writes
them, and refuse a hand-written ``secret`` of a few letters)."""
_PRIVATE_DIR: Final = 0o700

log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter: created 0700 (parents too), or an
    existing one tightened to 0700 if it is open to group or others.

    Raises:
        SecretError: ``path`` exists but is not a directory, or is open to others and
            cannot be tightened (not ours, or a shared folder such as /tmp).
    """
    try:
        path.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
        info = path.stat()
    except FileExistsError:
        raise SecretError(f"{path} is not a directory: give --state a folder of its own") from None
    if not stat.S_ISDIR(info.st_mode):
        raise SecretError(f"{path} is not a directory: give --state a folder of its own")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 == 0:
        return path
    if info.st_uid != os.geteuid() or mode & (stat.S_ISVTX | 0o002):
        raise SecretError(
            f"{path} is open to other users (mode {mode:04o}) and is not jalsa's to change: "
            f"give --state a folder of its own, or run `chmod 700 {path}`"
        )
    os.chmod(path, _PRIVATE_DIR)
    log.warning("%s was open to other users (mode %04o): made it 0700", path, mode)
    return path


def _read_stored(path: Path, min_length: int) -> str | None:
    """The value in ``path`` (None while it is missing), refused when unsafe."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:  # ELOOP: a symlink
        raise SecretError(
            f"{path} cannot be opened ({error.strerror}): it must be a plain file of its own, "
            "mode 0600; delete it and jalsa makes a new one"
        ) from None
    with os.fdopen(fd) as file:
        info = os.fstat(file.fileno())
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"{path} is not a plain file: delete it and jalsa makes a new one")
        if mode & 0o077:
            raise SecretError(
                f"{path} can be read or written by other users (mode {mode:04o}): run "
                f"`chmod 600 {path}`; if anyone else may have read it, delete it instead "
                "(jalsa makes a new one)"
            )
        text = file.read().strip()
    if len(text) < min_length:
        raise SecretError(
            f"{path} is too short ({len(text)} characters, at least {min_length} needed): "
            "delete it and jalsa makes a new random one, or write at least "
            f"{min_length} random characters in it "
            "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return text


def _create_stored(path: Path, value: str) -> bool:
    """Write ``value`` to ``path`` unless it exists, atomically (never an empty or half
    file): a temporary file (0600), fsync, then a hard link into place. Whether it was
    created by this call."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(value + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        os.unlink(temporary)


def stored_secret(
    state_dir: Path,
    file_name: str,
    env_name: str | None,
    env: Mapping[str, str] | None = None,
    *,
    min_length: int = 16,
    make: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> tuple[Secret, bool]:
    """A secret from ``env_name`` in the environment, or kept in ``<state_dir>/<file_name>``.

    The file is created once (mode 0600, in a state dir made 0700) with a random value
    from ``make``. Returns the secret and whether it was created just now (so the caller
    can show it once).

    Raises:
        SecretError: the environment's value is shorter than ``min_length``; or the file
            is shorter than :data:`MIN_STORED_LENGTH`, open to other users, or not a plain
            file (the message names it and the fix).
    """
    environ = os.environ if env is None else env
    value = environ.get(env_name, "") if env_name is not None else ""
    if value:
        if len(value) < min_length:
            raise SecretError(
                f"{env_name} is too short: use at least {min_length} characters "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        return Secret(value), False
    path = private_dir(state_dir) / file_name
    stored = _read_stored(path, MIN_STORED_LENGTH)
    if stored is not None:
        return Secret(stored), False
    made = make()
    created = _create_stored(path, made)
    if created:
        return Secret(made), True
    # Another jalsa made it at the same moment: theirs is complete (linked whole).
    stored = _read_stored(path, MIN_STORED_LENGTH)
    if stored is None:
        raise SecretError(f"{path} vanished while it was being read: start again")
    return Secret(stored), False
