"""``jalsa links EVENT.toml --base-url URL``: one ``<id> <join URL>`` line per live speaker."""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from datetime import datetime
from urllib.parse import urlsplit

from orchestrator.event import Event
from orchestrator.event.duration import format_duration, parse_duration
from orchestrator.speakers.links import (
    MAX_EXPIRY_SECONDS,
    Links,
    SecretError,
    default_expiry,
    revoke,
)

EXIT_INVALID = 2


def join_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/join/{token}"


def insecure_warning(base_url: str) -> str | None:
    """Why speakers cannot join by ``base_url``, or None: browsers give the camera and
    the microphone only to secure pages (https, or http on this machine's loopback)."""
    parts = urlsplit(base_url)
    if parts.scheme != "http":
        return None
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"--base-url {base_url!r} is plain http on {host!r}: browsers refuse the camera "
        "and microphone to such a page, so speakers cannot join by these links; give an "
        "https:// address (TLS in front of jalsa) unless every speaker is on this machine"
    )


def _fail(message: str) -> int:
    print(f"jalsa links: {message}", file=sys.stderr)
    return EXIT_INVALID


def print_links(event: Event, args: argparse.Namespace) -> int:
    """Print the links (stdout) and when they expire (stderr). Returns the exit code."""
    base_url: str = args.base_url
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        return _fail(
            f"--base-url {base_url!r} is not an http(s) URL: give the address speakers open, "
            "like https://jalsa.example.org"
        )
    if warning := insecure_warning(base_url):
        print(f"jalsa links: warning: {warning}", file=sys.stderr)
    live = [s.id for s in event.speakers if s.live]
    for speaker in args.revoke:
        if speaker not in live:
            return _fail(
                f"--revoke {speaker!r}: no live speaker has that id "
                f"(live speakers: {', '.join(live) or 'none'})"
            )
    now = time.time()
    cap = format_duration(MAX_EXPIRY_SECONDS)
    if args.expires_in is not None:
        try:
            seconds = parse_duration(args.expires_in)
        except ValueError as error:
            return _fail(f"--expires-in: {error}")
        if seconds > MAX_EXPIRY_SECONDS:
            return _fail(
                f"--expires-in {args.expires_in}: links last at most {cap} (7 days); "
                "make them closer to the event"
            )
        expires = int(now + seconds)
    else:
        expires = default_expiry(event, now)
        if expires > now + MAX_EXPIRY_SECONDS:
            return _fail(
                f"the rundown ends more than {cap} (7 days) from now, the longest a link "
                "lasts: make the links within a week of the event, or give --expires-in"
            )
    try:
        for speaker in args.revoke:
            revoke(args.state, speaker)
        links = Links(event, args.state)
        urls = [(speaker, join_url(base_url, links.issue(speaker, expires))) for speaker in live]
    except (SecretError, ValueError, OSError) as error:
        return _fail(str(error))
    if not live:
        print(
            "jalsa links: no live speakers (every speaker has a source); nothing to print",
            file=sys.stderr,
        )
        return 0
    for speaker, url in urls:
        print(f"{speaker} {url}")
    until = datetime.fromtimestamp(expires).astimezone().isoformat(timespec="minutes")
    print(
        f"jalsa links: valid until {until} (change with --expires-in); "
        f"the secret is in {args.state}/secret unless JALSA_SECRET is set, and the links "
        f"work only with the event id in {args.state}/event-id — `jalsa run` must use the "
        "same state dir",
        file=sys.stderr,
    )
    if args.revoke:
        print(f"jalsa links: earlier links revoked for {', '.join(args.revoke)}", file=sys.stderr)
    return 0
