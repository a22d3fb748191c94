"""Secrets that never print, and URLs made safe to log.

A stream key or token is wrapped in :class:`Secret` as soon as it is read, so that
``repr``, ``str``, f-strings and logging all show ``***``. Only the code that really
needs the value (the muxer opening the ingest URL, the HMAC signer) calls
:meth:`Secret.reveal`.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

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


def stored_secret(
    state_dir: Path,
    file_name: str,
    env_name: str,
    env: Mapping[str, str] | None = None,
    *,
    min_length: int = 16,
) -> tuple[Secret, bool]:
    """A secret from ``env_name`` in the environment, or kept in ``<state_dir>/<file_name>``.

    The file is created once (mode 0600) with a random value. Returns the secret and
    whether it was created just now (so the caller can show it once).

    Raises:
        SecretError: the environment's value is shorter than ``min_length``, or the file
            exists but stays empty (another process died while creating it).
    """
    environ = os.environ if env is None else env
    value = environ.get(env_name, "")
    if value:
        if len(value) < min_length:
            raise SecretError(
                f"{env_name} is too short: use at least {min_length} characters "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        return Secret(value), False
    path = state_dir / file_name
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Made earlier, or by another jalsa starting at the same moment: wait for its write.
        for _ in range(50):
            text = path.read_text().strip()
            if text:
                return Secret(text), False
            time.sleep(0.02)
        raise SecretError(f"{path} is empty: delete it to make a new one") from None
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return Secret(value), True
