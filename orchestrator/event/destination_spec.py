"""Where the program goes: one ``[[destinations]]`` item of the event file.

A destination is a platform preset (YouTube, Facebook, X, Twitch: their ingest URL plus
a stream key) or a custom target: an RTMP(S) server, an Icecast mount (audio only), a
recording file or the self-hosted HLS mirror.

The stream key and any password in the URL are held as :class:`Secret`: ``repr`` and
:meth:`DestinationSpec.safe_url` never show them, and only the muxer calls
:meth:`DestinationSpec.target_url`.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit, urlunsplit

from orchestrator.event.ladder_spec import LadderSpec, read_ladder
from orchestrator.event.listener_spec import read_listeners
from orchestrator.event.reader import (
    EnvStr,
    Table,
    check_readable,
    one_of,
    quote,
    resolve_path,
)
from orchestrator.event.secret import Secret, sanitize_url

Platform = Literal["youtube", "facebook", "x", "twitch", "custom"]
Kind = Literal["rtmp", "file", "hls", "icecast", "edge"]

PLATFORMS: Final = ("youtube", "facebook", "x", "twitch", "custom")
PLATFORM_INGEST: Final[Mapping[str, str]] = types.MappingProxyType(
    {
        # RTMPS wherever the platform documents it: over rtmp:// the stream key crosses
        # every network on the way in cleartext. (Twitch: the secure template of
        # https://ingest.twitch.tv/ingests, its global ingest.)
        "youtube": "rtmps://a.rtmps.youtube.com:443/live2",
        "facebook": "rtmps://live-api-s.facebook.com:443/rtmp",
        "x": "rtmps://va.pscp.tv:443/x",
        "twitch": "rtmps://ingest.global-contribute.live-video.net:443/app",
    }
)
# YouTube's backup ingest: the same stream key, sent beside the primary.
YOUTUBE_BACKUP_INGEST: Final = "rtmps://b.rtmps.youtube.com:443/live2?backup=1"
# Listener API credentials that an http:// ``api_base`` would send in cleartext.
_API_CREDENTIALS: Final = ("api_key", "access_token", "bearer_token")
# The variable name suggested in the "needs a key" message, per platform.
_KEY_VARIABLE: Final = {
    "youtube": "YT_STREAM_KEY",
    "facebook": "FB_STREAM_KEY",
    "x": "X_STREAM_KEY",
    "twitch": "TWITCH_STREAM_KEY",
}
RECORDING_SUFFIXES: Final = (".mkv", ".flv", ".mp4", ".ts")
NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_KEYS: Final = (
    "name",
    "platform",
    "url",
    "key",
    "audio_only",
    "verify_tls",
    "ca_file",
    "backup",
    "listeners",
    "ladder",
    "watch_url",
    "via",
)
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SUPPORTED: Final = (
    "rtmp://host/app, rtmps://host/app, icecast://user:password@host:port/mount, a recording "
    f'file path ending {", ".join(RECORDING_SUFFIXES)}, or "hls" (the self-hosted mirror)'
)


def _no_listeners() -> Mapping[str, Any]:
    return types.MappingProxyType({})


@dataclass(frozen=True, slots=True, repr=False)
class DestinationSpec:
    """One output of the program.

    Attributes:
        name: unique id, used in metrics labels and ``/hls/<name>/``.
        platform: the preset it was built from, or ``"custom"``.
        kind: how it is written: ``rtmp`` (FLV over RTMP(S)), ``file`` (a recording),
            ``hls`` (the self-hosted mirror) or ``icecast`` (audio only).
        url: the ingest URL *without* the key and with any password removed (see
            ``password``); the absolute path for ``file``; ``"hls"`` for ``hls``.
        key: the stream key, appended to an RTMP URL as the stream name.
        audio_only: send only the audio (always true for Icecast).
        verify_tls: check the server certificate for rtmps://.
        ca_file: an extra CA certificate (PEM) to trust for this rtmps:// destination.
        password: the password taken out of ``url``'s user info (Icecast's source password).
        listeners: the raw ``[destinations.listeners]`` table (``${VAR}`` already resolved).
        ladder: an HLS mirror's extra renditions (``[destinations.ladder]``), or None for
            the program rendition alone.
        via: the ``[[edges]]`` edge that sends this destination (the studio does not),
            or None for a direct one; ``kind = "edge"`` is the studio's contribution to
            an edge (:mod:`orchestrator.event.edge_spec`).
        watch_url: where listeners reach an HLS mirror's watch page (through its cache or
            CDN), for the text the console and the webhook offer during an outage.
    """

    name: str
    platform: Platform
    kind: Kind
    url: str
    key: Secret | None = None
    audio_only: bool = False
    verify_tls: bool = True
    password: Secret | None = None
    listeners: Mapping[str, Any] = field(default_factory=_no_listeners, hash=False)
    ca_file: str | None = None
    ladder: LadderSpec | None = None
    via: str | None = None
    watch_url: str | None = None

    def target_url(self) -> str:
        """The full URL to open, with key and password revealed: for the muxer only."""
        if self.kind == "hls":
            return ""
        if self.kind == "file":
            return self.url
        url = _with_password(self.url, self.password)
        if self.kind == "rtmp" and self.key is not None:
            return _append_stream(url, self.key.reveal())
        return url

    def safe_url(self) -> str:
        """The URL with key and password masked: for logs, the console and the API."""
        if self.kind in ("hls", "file"):
            return self.url
        url = _with_password(self.url, Secret("***") if self.password else None)
        if self.kind == "rtmp" and self.key is not None:
            url = _append_stream(url, "***")
        return sanitize_url(url)

    def cleartext_warning(self) -> str | None:
        """What a credential of this destination would cross the network unencrypted
        in (a stream key over rtmp://, an Icecast password, a listener API key over
        http://), as a line for the log with every secret masked; None when nothing."""
        what = []
        if self.kind == "rtmp" and _scheme(self.url) == "rtmp":
            if self.key is not None:
                what.append("its stream key goes out in cleartext over rtmp://")
            if self.password is not None:
                what.append("its password goes out in cleartext over rtmp://")
        if self.kind == "edge" and _scheme(self.url) == "http":
            what.append("its contribution key goes out in cleartext over http://")
        if self.kind == "icecast" and self.password is not None:
            what.append("its source password goes out in cleartext over icecast:// (HTTP)")
        api_base = self.listeners.get("api_base")
        if (
            isinstance(api_base, str)
            and api_base.lower().startswith("http://")
            and any(self.listeners.get(name) for name in _API_CREDENTIALS)
        ):
            what.append("its listener API credential goes out in cleartext over http://")
        if not what:
            return None
        return (
            f"destination {self.name} ({self.safe_url()}): {'; '.join(what)}: anyone on "
            "the network path can read it; use rtmps:// or https:// where the server offers it"
        )

    def __repr__(self) -> str:
        return (
            f"DestinationSpec(name={self.name!r}, platform={self.platform!r}, "
            f"kind={self.kind!r}, url={self.safe_url()!r}, key={self.key!r}, "
            f"audio_only={self.audio_only!r}, verify_tls={self.verify_tls!r}, "
            f"password={self.password!r}, listeners={tuple(sorted(self.listeners))!r})"
        )


def parse_destinations(
    tables: Sequence[Table], base_dir: Path, program_height: int | None = None
) -> tuple[DestinationSpec, ...]:
    """Read every ``[[destinations]]`` table; problems go to each table's collector.

    Args:
        tables: the items of ``destinations``, in file order.
        base_dir: the event file's folder, for relative recording paths.
        program_height: the program's picture height, for an HLS ladder's checks.
    """
    first_use: dict[str, str] = {}
    result = []
    for table in tables:
        spec = _parse_one(table, base_dir)
        if spec is not None and table.has("ladder"):
            spec = _with_ladder(table, spec, program_height)
        if spec is not None and table.has("watch_url"):
            spec = _with_watch_url(table, spec)
        name = table.raw("name")
        if isinstance(name, str):
            if name in first_use:
                table.problem(
                    "name",
                    f"{quote(name)} is already used by {first_use[name]}: "
                    "each destination needs its own name",
                )
            else:
                first_use[name] = table.key
        if spec is not None:
            result.append(spec)
            backup = _backup(table, spec, first_use)
            if backup is not None:
                result.append(backup)
    return tuple(result)


def _backup(
    table: Table, spec: DestinationSpec, first_use: dict[str, str]
) -> DestinationSpec | None:
    """YouTube's backup ingest beside the primary, for ``backup = true``."""
    if table.raw("backup") is not True:
        return None
    if spec.platform != "youtube":
        table.problem(
            "backup", 'only YouTube has a backup ingest: use it with platform = "youtube"'
        )
        return None
    name = f"{spec.name}-backup"
    if name in first_use:
        table.problem(
            "backup",
            f"the backup destination would be named {name!r}, which {first_use[name]} already "
            "uses: rename one of them",
        )
        return None
    first_use[name] = table.at("backup")
    return dataclasses.replace(
        spec, name=name, url=YOUTUBE_BACKUP_INGEST, listeners=_no_listeners()
    )


def _with_ladder(
    table: Table, spec: DestinationSpec, program_height: int | None
) -> DestinationSpec:
    """``spec`` with its ``[destinations.ladder]`` (an HLS mirror's only)."""
    if spec.kind != "hls":
        table.problem("ladder", 'only an HLS mirror (url = "hls") has a ladder: remove it here')
        return spec
    if spec.audio_only:
        table.problem("ladder", "an audio-only mirror has no ladder: remove one of them")
        return spec
    return dataclasses.replace(spec, ladder=read_ladder(table.table("ladder"), program_height))


def _with_watch_url(table: Table, spec: DestinationSpec) -> DestinationSpec:
    """``spec`` with the public address of its watch page (an HLS mirror's only)."""
    url = table.string("watch_url")
    if url is None:
        return spec
    if spec.kind != "hls":
        table.problem("watch_url", 'only an HLS mirror (url = "hls") has a watch page: remove it')
        return spec
    if _scheme(url) not in ("http", "https") or not _hostname(url):
        table.problem(
            "watch_url",
            f"{quote(url)} is not a web address: write where listeners open the page, like "
            f'"https://mirror.example.org/watch/{spec.name}"',
        )
        return spec
    return dataclasses.replace(spec, watch_url=url)


def _parse_one(table: Table, base_dir: Path) -> DestinationSpec | None:
    table.check_keys(_KEYS)
    name = table.string("name", required='add name = "yt" (lowercase letters, digits, - and _)')
    if name is not None and not NAME_PATTERN.fullmatch(name):
        table.problem(
            "name",
            f"{quote(name)} is not a valid name: use 1-40 lowercase letters, digits, - and _, "
            'starting with a letter or digit, like "yt" or "fb-backup"',
        )
        name = None
    platform = table.choice("platform", PLATFORMS, "custom")
    key = table.string("key", secret=True)
    if key == "":
        table.problem("key", _empty_key(table.data["key"]))
        key = None
    elif key is not None and any(c.isspace() for c in key):
        table.problem(
            "key", "contains spaces or line breaks: copy the stream key again, without them"
        )
        key = None
    url = table.string("url")
    if url is not None:
        _register_password(table, url)
    audio_only = table.boolean("audio_only", False)
    via = table.string("via")
    verify_tls = table.boolean("verify_tls", True)
    table.boolean("backup", False)
    listeners = table.raw("listeners")
    if listeners is not None and not isinstance(listeners, Mapping):
        table.problem("listeners", f"expected a table, got {quote(listeners)}")
        listeners = None

    if platform is None:
        return None
    if platform == "custom":
        if not table.has("platform") and not table.has("url"):
            table.problem(
                "",
                f"says nowhere to send the program: add platform = one of {one_of(PLATFORMS)} "
                f"(with key), or url = {_SUPPORTED}",
            )
            return None
        target = _custom_target(table, url, key, audio_only, base_dir)
    else:
        target = _preset_target(table, platform, url, key)
    if target is not None or platform != "custom":
        kind, location = target or ("rtmp", "")
        read_listeners(
            Table(listeners or {}, table.at("listeners"), table.problems), platform, kind, location
        )
    if target is None or name is None:
        return None
    kind, location = target
    ca_file = _ca_file(table, location if kind == "rtmp" else None, base_dir)
    stripped, password = (location, None) if kind in ("file", "hls") else _split_password(location)
    return DestinationSpec(
        name=str(name),
        platform=cast(Platform, platform),
        kind=kind,
        url=stripped,
        key=Secret(str(key)) if key is not None else None,
        audio_only=audio_only or kind == "icecast",
        verify_tls=verify_tls,
        password=password,
        listeners=types.MappingProxyType(_plain(listeners or {})),
        ca_file=ca_file,
        via=via,
    )


def _ca_file(table: Table, url: str | None, base_dir: Path) -> str | None:
    text = table.string("ca_file")
    if text is None:
        return None
    if url is None or _scheme(url) != "rtmps":
        table.problem("ca_file", "only applies to an rtmps:// url: remove it here")
        return None
    path = resolve_path(text, base_dir)
    check_readable(table, "ca_file", text, path, "the CA file")
    return str(path)


def _preset_target(
    table: Table, platform: str, url: str | None, key: str | None
) -> tuple[Kind, str] | None:
    if not table.has("key"):
        variable = _KEY_VARIABLE[platform]
        table.problem(
            "key",
            f'is missing: {platform} needs a stream key: add key = "${{{variable}}}" '
            f"and export {variable} with the key from the platform's live dashboard",
        )
    if url is None:
        return ("rtmp", PLATFORM_INGEST[platform]) if key is not None else None
    if _scheme(url) not in ("rtmp", "rtmps") or not _hostname(url):
        table.problem(
            "url",
            f"{_describe_url(url)} cannot override the {platform} ingest: "
            "use the platform's rtmp://host/app or rtmps://host/app ingest URL, "
            "or remove url to use the default",
        )
        return None
    return ("rtmp", url) if key is not None else None


def _custom_target(
    table: Table, url: str | None, key: str | None, audio_only: bool, base_dir: Path
) -> tuple[Kind, str] | None:
    if url is None:
        if not table.has("url"):
            table.problem("url", f"is missing: a custom destination needs url = {_SUPPORTED}")
        return None
    scheme = _scheme(url)
    kind: Kind
    if url.strip().lower() == "hls":
        kind, location = "hls", "hls"
    elif scheme in ("rtmp", "rtmps"):
        kind, location = "rtmp", url
    elif scheme == "icecast":
        kind, location = "icecast", url
        if not _valid_icecast(table, url):
            return None
        if table.has("audio_only") and not audio_only:
            table.problem("audio_only", "Icecast carries audio only: remove audio_only = false")
    elif scheme is not None:
        table.problem("url", f"cannot push to {scheme}:// URLs: use {_SUPPORTED}")
        return None
    elif url.lower().endswith(RECORDING_SUFFIXES):
        kind, location = "file", str(resolve_path(url, base_dir))
    else:
        table.problem("url", f"{quote(url)} is not something we can send to: use {_SUPPORTED}")
        return None
    if kind == "rtmp" and not _hostname(url):
        table.problem("url", f"{_describe_url(url)} has no host: write it like rtmp://host/app")
        return None
    if key is not None and kind != "rtmp":
        table.problem("key", "a key only applies to rtmp:// and rtmps:// URLs: remove it here")
    return kind, location


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # e.g. an unbalanced [ in an IPv6 host
        return None


def _valid_icecast(table: Table, url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        table.problem(
            "url",
            "the host or port cannot be read: write icecast://source:PASSWORD@host:8000/mount",
        )
        return False
    if not parts.hostname or not parts.password or parts.path in ("", "/"):
        table.problem(
            "url",
            f"{_describe_url(url)} is incomplete: write icecast://source:PASSWORD@host:8000/mount "
            "(the source password and a mount point are both required)",
        )
        return False
    return True


def _register_password(table: Table, url: str) -> None:
    """Scrub the password in ``url``'s user info from every message, whatever goes wrong."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        table.problems.secret(password)


def _scheme(url: str) -> str | None:
    match = _SCHEME.match(url.strip())
    return match.group(1).lower() if match else None


def _describe_url(url: str) -> str:
    """A URL for a message: sanitised, or its template when it came from the environment."""
    return quote(url) if isinstance(url, EnvStr) else repr(sanitize_url(url))


def _empty_key(value: Any) -> str:
    where = f" ({quote(value)} is set but empty)" if isinstance(value, EnvStr) else ""
    return f"is empty{where}: put the platform's stream key here"


def _split_password(url: str) -> tuple[str, Secret | None]:
    """``url`` without the password of its user info, and that password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    if ":" not in userinfo:
        return url, None
    user, password = userinfo.split(":", 1)
    netloc = f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), Secret(
        password
    )


def _append_stream(url: str, name: str) -> str:
    """``url`` with the stream name as its last path segment, before any query."""
    base, mark, query = url.partition("?")
    return base.rstrip("/") + "/" + name + mark + query


def _with_password(url: str, password: Secret | None) -> str:
    if password is None:
        return url
    parts = urlsplit(url)
    user, host = parts.netloc.rsplit("@", 1)
    netloc = f"{user}:{password.reveal()}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _plain(value: Any) -> Any:
    """``value`` with every :class:`EnvStr` turned back into a plain ``str``."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
