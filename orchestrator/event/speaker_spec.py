"""The people on the program: one ``[[speakers]]`` item of the event file.

A speaker either joins live from the browser link (no ``source``) or has a configured
source: the ``testsrc`` pattern, a clip, or a stream pulled from an RTMP(S), RTSP or
HTTP(S) URL. A ``fallback`` clip covers a live speaker who is absent; a ``photo`` goes
on the lower third and the slates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from orchestrator.event.reader import Table, check_readable, quote, resolve_path
from orchestrator.event.secret import sanitize_source_url

ID_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SOURCE_SCHEMES: Final = ("rtmp", "rtmps", "rtsp", "http", "https")
PHOTO_SUFFIXES: Final = (".png", ".jpg", ".jpeg", ".webp")
_KEYS: Final = ("id", "name", "title", "source", "fallback", "photo")
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True, repr=False)
class SpeakerSpec:
    """One ``[[speakers]]`` item.

    Attributes:
        id: unique, ``^[a-z0-9][a-z0-9_-]{0,39}$``; the rundown refers to it.
        name: shown on the lower third.
        title: shown under the name.
        source: ``"testsrc"``, an absolute file path, or an rtmp(s)/rtsp/http(s) URL to
            pull; None for a speaker who joins live from the browser link.
        fallback: absolute path of a clip played while the live feed is absent.
        photo: absolute path of an image for the lower third and slates.
    """

    id: str
    name: str
    title: str = ""
    source: str | None = None
    fallback: str | None = None
    photo: str | None = None

    @property
    def live(self) -> bool:
        """True for a speaker who joins from the browser (no configured source)."""
        return self.source is None

    def safe_source(self) -> str | None:
        """``source`` with any credentials in it masked: for logs and the API (a pulled
        URL shows its scheme, host and app only)."""
        if self.source is None or _SCHEME.match(self.source) is None:
            return self.source
        return sanitize_source_url(self.source)

    def __repr__(self) -> str:
        return (
            f"SpeakerSpec(id={self.id!r}, name={self.name!r}, title={self.title!r}, "
            f"source={self.safe_source()!r}, fallback={self.fallback!r}, photo={self.photo!r})"
        )


def parse_speakers(
    tables: Sequence[Table], base_dir: Path, check_files: bool
) -> tuple[SpeakerSpec, ...]:
    """Read every ``[[speakers]]`` table; problems go to each table's collector.

    Args:
        tables: the items of ``speakers``, in file order.
        base_dir: the event file's folder, for relative paths.
        check_files: check that clips, fallbacks and photos exist and are readable.
    """
    first_use: dict[str, str] = {}
    result = []
    for table in tables:
        table.check_keys(_KEYS)
        speaker_id = table.string(
            "id", required='add id = "host" (lowercase letters, digits, - and _)'
        )
        if speaker_id is not None:
            if not ID_PATTERN.fullmatch(speaker_id):
                table.problem(
                    "id",
                    f"{quote(speaker_id)} is not a valid id: use 1-40 lowercase letters, digits, "
                    '- and _, starting with a letter or digit, like "host" or "guest-2"',
                )
                speaker_id = None
            elif speaker_id in first_use:
                table.problem(
                    "id",
                    f"{quote(speaker_id)} is already used by {first_use[speaker_id]}: "
                    "each speaker needs its own id",
                )
            else:
                first_use[speaker_id] = table.key
        name = table.string("name", required='add name = "..." (shown on the lower third)')
        if name is not None and not name.strip():
            table.problem("name", "is empty: write the name shown on the lower third")
        title = table.string("title") or ""
        source = _parse_source(table, base_dir, check_files)
        fallback = _parse_file(table, "fallback", "fallback clip", base_dir, check_files)
        photo = _parse_file(table, "photo", "photo", base_dir, check_files)
        if photo is not None and not photo.lower().endswith(PHOTO_SUFFIXES):
            table.problem(
                "photo", f"{photo} is not an image we can show: use {', '.join(PHOTO_SUFFIXES)}"
            )
        if speaker_id is not None and name:
            result.append(
                SpeakerSpec(
                    id=str(speaker_id),
                    name=str(name),
                    title=str(title),
                    source=source,
                    fallback=fallback,
                    photo=photo,
                )
            )
    return tuple(result)


def _parse_source(table: Table, base_dir: Path, check_files: bool) -> str | None:
    text = table.string("source")
    if text is None:
        return None
    if not text.strip():
        table.problem("source", "is empty: omit source for a speaker who joins from the browser")
        return None
    if text == "testsrc":
        return "testsrc"
    match = _SCHEME.match(text)
    if match is not None:
        if match.group(1).lower() not in SOURCE_SCHEMES:
            table.problem(
                "source",
                f"cannot pull from {match.group(1)}:// URLs: use "
                f'{", ".join(s + "://" for s in SOURCE_SCHEMES)}, a file path, or "testsrc"',
            )
            return None
        return str(text)
    return _checked_path(table, "source", text, "clip", base_dir, check_files)


def _parse_file(
    table: Table, name: str, what: str, base_dir: Path, check_files: bool
) -> str | None:
    text = table.string(name)
    if text is None:
        return None
    if not text.strip():
        table.problem(name, f"is empty: name a {what} file, or remove {name}")
        return None
    if _SCHEME.match(text):
        table.problem(name, f"must be a local file path, not a URL: download the {what} first")
        return None
    return _checked_path(table, name, text, what, base_dir, check_files)


def _checked_path(
    table: Table, name: str, text: str, what: str, base_dir: Path, check_files: bool
) -> str:
    path = resolve_path(text, base_dir)
    if check_files:
        check_readable(table, name, text, path, what)
    return str(path)
