"""Join links: signed, bound to speaker and event, expiring, revocable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.event import parse_event
from orchestrator.speakers.links import (
    Claims,
    LinkProblem,
    LinkRefused,
    Links,
    SecretError,
    check,
    default_expiry,
    event_tag,
    load_secret,
    read_generations,
    revoke,
    sign,
)

KEY = b"k" * 32
TAG = event_tag("Test Jalsa")
NOW = 1_766_000_000.0
SPEAKERS = frozenset({"guest", "ameer"})

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,39}", fullmatch=True)


def _check(token: str, *, now: float = NOW, generations: dict[str, int] | None = None) -> Claims:
    return check(token, KEY, event=TAG, speakers=SPEAKERS, now=now, generations=generations or {})


def _refused(token: str, **kwargs: object) -> LinkProblem:
    with pytest.raises(LinkRefused) as info:
        _check(token, **kwargs)  # type: ignore[arg-type]
    return info.value.problem


def test_a_good_token_checks_out() -> None:
    claims = Claims("guest", TAG, int(NOW) + 60, 0)
    assert _check(sign(claims, KEY)) == claims


def test_expired_revoked_other_event_unknown_speaker() -> None:
    assert _refused(sign(Claims("guest", TAG, int(NOW)), KEY)) is LinkProblem.EXPIRED
    assert (
        _refused(sign(Claims("guest", TAG, int(NOW) + 60), KEY), generations={"guest": 1})
        is LinkProblem.REVOKED
    )
    other = sign(Claims("guest", event_tag("Another Jalsa"), int(NOW) + 60), KEY)
    assert _refused(other) is LinkProblem.OTHER_EVENT
    assert _refused(sign(Claims("host", TAG, int(NOW) + 60), KEY)) is LinkProblem.UNKNOWN_SPEAKER


def test_a_newer_generation_survives_revocation_of_older_ones() -> None:
    token = sign(Claims("guest", TAG, int(NOW) + 60, 2), KEY)
    assert _check(token, generations={"guest": 2}).generation == 2


def test_statuses_and_advice() -> None:
    assert LinkProblem.FORGED.status == 401
    assert LinkProblem.UNAVAILABLE.status == 503  # the revocation list is unreadable
    others = {LinkProblem.FORGED, LinkProblem.UNAVAILABLE}
    assert {p.status for p in LinkProblem if p not in others} == {403}
    assert all(p.advice.endswith(".") for p in LinkProblem)


@given(speaker=ids, expires=st.integers(0, 10**11), generation=st.integers(0, 999))
def test_every_token_round_trips(speaker: str, expires: int, generation: int) -> None:
    claims = Claims(speaker, TAG, expires, generation)
    token = sign(claims, KEY)
    got = check(
        token,
        KEY,
        event=TAG,
        speakers=frozenset({speaker}),
        now=expires - 1,
        generations={speaker: generation},
    )
    assert got == claims


@given(
    speaker=ids,
    position=st.integers(min_value=0),
    replacement=st.characters(codec="ascii"),
)
def test_any_changed_character_is_refused(speaker: str, position: int, replacement: str) -> None:
    token = sign(Claims(speaker, TAG, int(NOW) + 60, 0), KEY)
    index = position % len(token)
    forged = token[:index] + replacement + token[index + 1 :]
    if forged == token:
        return
    with pytest.raises(LinkRefused) as info:
        check(forged, KEY, event=TAG, speakers=frozenset({speaker}), now=NOW, generations={})
    # Changing the speaker could at most make it another speaker's token, changing the
    # event tag another event's: still refused.
    assert info.value.problem in (
        LinkProblem.FORGED,
        LinkProblem.UNKNOWN_SPEAKER,
        LinkProblem.OTHER_EVENT,
    )


@given(st.text(max_size=300))
def test_arbitrary_text_is_forged(text: str) -> None:
    assert _refused(text) is LinkProblem.FORGED


@given(speaker=ids, other_key=st.binary(min_size=1, max_size=64))
def test_another_secret_is_forged(speaker: str, other_key: bytes) -> None:
    if other_key == KEY:
        return
    token = sign(Claims(speaker, TAG, int(NOW) + 60), other_key)
    with pytest.raises(LinkRefused) as info:
        check(token, KEY, event=TAG, speakers=frozenset({speaker}), now=NOW, generations={})
    assert info.value.problem is LinkProblem.FORGED


# -- the I/O shell --------------------------------------------------------------------------


def _event(rundown: str = 'duration = "10m"') -> object:
    import tomllib

    text = f"""
        [event]
        name = "Test Jalsa"
        [[speakers]]
        id = "host"
        name = "Host"
        source = "testsrc"
        [[speakers]]
        id = "guest"
        name = "Guest"
        [[rundown]]
        speaker = "host"
        duration = "20m"
        [[rundown]]
        speaker = "guest"
        {rundown}
    """
    return parse_event(tomllib.loads(text), base_dir=Path("/"), env={})


def test_default_expiry_is_the_rundown_end_plus_an_hour() -> None:
    event = _event()
    assert default_expiry(event, NOW) == int(NOW + 30 * 60 + 3600)  # type: ignore[arg-type]
    hard = _event('duration = "10m"\nstart = 2026-12-17T20:30:00+05:00')
    end = 1_797_521_400 + 600  # 2026-12-17T15:30Z + 10 min
    assert default_expiry(hard, NOW - 10**6) == end + 3600  # type: ignore[arg-type]


def test_the_secret_is_made_once_private(tmp_path: Path) -> None:
    first = load_secret(tmp_path / "state", env={})
    assert load_secret(tmp_path / "state", env={}) == first
    mode = stat.S_IMODE(os.stat(tmp_path / "state" / "secret").st_mode)
    assert mode == 0o600
    assert str(first) == "***"
    assert load_secret(tmp_path, env={"JALSA_SECRET": "x" * 20}).reveal() == "x" * 20
    with pytest.raises(SecretError):
        load_secret(tmp_path, env={"JALSA_SECRET": "short"})


def test_links_issue_check_and_revoke(tmp_path: Path) -> None:
    event = _event()
    links = Links(event, tmp_path, env={})  # type: ignore[arg-type]
    assert links.speakers == {"guest"}  # host has a source: no link
    with pytest.raises(KeyError):
        links.issue("host", int(NOW) + 60)
    token = links.issue("guest", int(NOW) + 60)
    assert links.check(token, NOW).speaker == "guest"
    assert revoke(tmp_path, "guest") == 1
    assert read_generations(tmp_path) == {"guest": 1}
    os.utime(tmp_path / "revoked-links.json", (NOW, NOW))  # a visibly new mtime
    links.refresh()
    with pytest.raises(LinkRefused) as info:
        links.check(token, NOW)
    assert info.value.problem is LinkProblem.REVOKED
    fresh = links.issue("guest", int(NOW) + 60)
    assert links.check(fresh, NOW).generation == 1
    # Ending a session needs only an authentic token: expired is fine.
    assert links.authentic(links.issue("guest", int(NOW) - 10)).speaker == "guest"
    # Another state dir is another event (its own random event id): its links are refused
    # here, whatever secret it has.
    elsewhere = Links(event, tmp_path / "other", env={})  # type: ignore[arg-type]
    with pytest.raises(LinkRefused) as info:
        links.check(elsewhere.issue("guest", int(NOW) + 60), NOW)
    assert info.value.problem is LinkProblem.OTHER_EVENT
