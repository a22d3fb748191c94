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
from collections.abc import Mapping
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


_QUERY_SECRET = re.compile(r"(?i)([?&](?:key|token|access_token|secret|sig|signature|auth)=)[^&]*")


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


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` (an error message, a log line) with every URL in it sanitised.

    Known ``secrets`` are masked first, wherever they appear.
    """
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    return _URL_IN_TEXT.sub(lambda m: sanitize_url(m.group(0)), text)


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
