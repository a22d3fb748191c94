import base64
import hashlib
import hmac
import os
import pickle
import pwd
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.event import (
    DestinationSpec,
    Event,
    EventError,
    EventInfo,
    Problem,
    ProgramSpec,
    SegmentSpec,
    SpeakerSpec,
    load_event,
    parse_event,
)
from orchestrator.event.destination_spec import PLATFORM_INGEST
from orchestrator.event.event_file import segment_ids
from orchestrator.event.ice_servers import IceServer
from orchestrator.event.secret import Secret

REPO = Path(__file__).resolve().parents[3]
KEY = "yt-SECRET-key-9f8e7d"
VIDEO = "dQw4w9WgXcQ"
PLUS5 = timezone(timedelta(hours=5))
T = TypeVar("T")


def minimal() -> dict[str, Any]:
    return {
        "speakers": [
            {"id": "host", "name": "Stage Secretary", "source": "testsrc"},
            {"id": "guest", "name": "Guest"},
        ],
        "rundown": [
            {"speaker": "host", "duration": "20s"},
            {"speaker": "guest", "duration": "5m"},
        ],
        "destinations": [{"name": "yt", "platform": "youtube", "key": "${YT_STREAM_KEY}"}],
    }


def parse(
    data: Mapping[str, Any],
    base_dir: Path = Path("/srv/event"),
    env: Mapping[str, str] | None = None,
    check_files: bool = False,
) -> Event:
    return parse_event(
        data,
        base_dir=base_dir,
        env={"YT_STREAM_KEY": KEY} if env is None else env,
        check_files=check_files,
    )


def problems_of(data: Mapping[str, Any], **kwargs: Any) -> tuple[Problem, ...]:
    with pytest.raises(EventError) as info:
        parse(data, **kwargs)
    error = info.value
    assert error.path is None
    assert KEY not in str(error)
    return error.problems


def only_problem(data: Mapping[str, Any], key: str, *hints: str, **kwargs: Any) -> Problem:
    """Assert that ``data`` has exactly one problem, at ``key``, mentioning every hint."""
    problems = problems_of(data, **kwargs)
    assert [p.key for p in problems] == [key], problems
    for hint in hints:
        assert hint in problems[0].message, problems[0]
    return problems[0]


def with_(section: str, index: int, **fields: Any) -> dict[str, Any]:
    data = minimal()
    data[section][index].update(fields)
    return data


def dest(**fields: Any) -> dict[str, Any]:
    data = minimal()
    data["destinations"] = [{"name": "out", **fields}]
    return data


# --- a valid event --------------------------------------------------------------------


def test_minimal_event_uses_defaults() -> None:
    event = parse(minimal())
    assert event.info == EventInfo()
    assert event.info.name == "Digital Jalsa" and event.info.on_end == "stop"
    assert event.program == ProgramSpec()
    assert [s.id for s in event.speakers] == ["host", "guest"]
    assert event.rundown == (SegmentSpec("host", 20.0), SegmentSpec("guest", 300.0))
    assert event.base_dir == Path("/srv/event")
    assert event.ice_servers == ()
    assert event.speaker("guest").name == "Guest"


def test_speaker_lookup_of_unknown_id_raises_key_error() -> None:
    with pytest.raises(KeyError):
        parse(minimal()).speaker("nobody")


def test_full_event_and_program() -> None:
    data = minimal()
    data["event"] = {"name": "Rally", "on_end": "slate"}
    data["program"] = {
        "width": 1920,
        "height": 1080,
        "fps": 25,
        "video_bitrate_kbps": 4500,
        "audio_bitrate_kbps": 96,
        "keyframe_seconds": 4,
        "preset": "faster",
    }
    event = parse(data)
    assert event.info == EventInfo("Rally", "slate")
    assert event.program == ProgramSpec(1920, 1080, 25, 4500, 96, 4, "faster")


def test_example_rally_file_is_accepted() -> None:
    path = REPO / "examples" / "rally.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    event = parse(data, base_dir=path.parent, check_files=False)
    kinds = {d.name: d.kind for d in event.destinations}
    assert kinds == {
        "yt": "rtmp",
        "yt-backup": "rtmp",
        "backup-rtmp": "rtmp",
        "radio": "icecast",
        "mirror": "hls",
        "recording": "file",
    }
    assert event.info.on_end == "slate"
    assert any(s.live for s in event.speakers) and any(not s.live for s in event.speakers)
    assert any(seg.start is not None for seg in event.rundown)
    assert event.destinations[0].target_url().endswith("/" + KEY)
    recording = next(d for d in event.destinations if d.kind == "file")
    assert recording.target_url() == str(path.parent / "recordings" / "jalsa.mkv")
    assert len(event.ice_servers) == 2
    assert KEY not in repr(event)
    loaded = load_event(path, env={"YT_STREAM_KEY": KEY}, check_files=False)
    assert loaded == event


def test_example_without_key_names_the_variable() -> None:
    path = REPO / "examples" / "rally.toml"
    with pytest.raises(EventError) as info:
        load_event(path, env={}, check_files=False)
    assert [p.key for p in info.value.problems] == ["destinations[0].key"]


# --- unknown keys and wrong types -----------------------------------------------------


@pytest.mark.parametrize(
    ("section", "index", "typo", "expected", "key"),
    [
        ("speakers", 0, "sorce", "source", "speakers[0].sorce"),
        ("rundown", 1, "duraton", "duration", "rundown[1].duraton"),
        ("destinations", 0, "platfrom", "platform", "destinations[0].platfrom"),
    ],
)
def test_unknown_key_in_array_item_suggests(
    section: str, index: int, typo: str, expected: str, key: str
) -> None:
    only_problem(with_(section, index, **{typo: "x"}), key, f"did you mean {expected!r}?")


def test_unknown_top_level_key_suggests() -> None:
    data = minimal()
    data["destination"] = []
    only_problem(data, "destination", "did you mean 'destinations'?", "'ice_servers'")


def test_unknown_key_in_program_and_event() -> None:
    data = minimal()
    data["program"] = {"fsp": 30}
    data["event"] = {"nme": "x"}
    problems = problems_of(data)
    assert [p.key for p in problems] == ["program.fsp", "event.nme"]
    assert "did you mean 'fps'?" in problems[0].message
    assert "did you mean 'name'?" in problems[1].message


def test_unknown_key_without_close_match_lists_allowed() -> None:
    data = minimal()
    data["program"] = {"zzz": 1}
    only_problem(data, "program.zzz", "unknown key", "'keyframe_seconds'")


def test_wrong_type_integer() -> None:
    data = minimal()
    data["program"] = {"fps": "thirty"}
    problem = only_problem(data, "program.fps")
    assert str(problem) == "program.fps: expected an integer, got 'thirty': write it like 30"


@pytest.mark.parametrize("value", [True, 29.97, [30]])
def test_integer_fields_reject_bool_float_array(value: Any) -> None:
    data = minimal()
    data["program"] = {"fps": value}
    only_problem(data, "program.fps", "expected an integer")


def test_wrong_type_boolean_and_string() -> None:
    data = dest(platform="youtube", key="k-123456", audio_only="yes")
    data["speakers"][1]["name"] = 42
    problems = problems_of(data)
    assert {p.key: p.message for p in problems} == {
        "speakers[1].name": "expected a string, got 42: put the value in quotes",
        "destinations[0].audio_only": "expected true or false, got 'yes'",
    }


def test_table_written_with_single_brackets() -> None:
    data = minimal()
    data["speakers"] = {"id": "host", "name": "Host"}
    problems = problems_of(data)
    assert problems[0].key == "speakers" and "[[speakers]]" in problems[0].message


def test_section_of_the_wrong_type() -> None:
    data = minimal()
    data["program"] = "fast"
    only_problem(data, "program", "expected a table", "[program]")
    data = minimal()
    data["rundown"].append("host")
    only_problem(data, "rundown[2]", "expected a table")


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("width", 1281, "even number"),
        ("height", 721, "even number"),
        ("width", 158, "from 160 to 3840"),
        ("width", 4096, "from 160 to 3840"),
        ("height", 2200, "from 120 to 2160"),
        ("fps", 0, "from 1 to 60"),
        ("fps", 120, "from 1 to 60"),
        ("video_bitrate_kbps", 50, "from 100 to 20000"),
        ("audio_bitrate_kbps", 500, "from 32 to 320"),
        ("keyframe_seconds", 0, "from 1 to 10"),
        ("keyframe_seconds", 11, "from 1 to 10"),
        ("preset", "veryfsat", "did you mean 'veryfast'?"),
        ("preset", "", "'placebo'"),
    ],
)
def test_program_ranges(field: str, value: Any, hint: str) -> None:
    data = minimal()
    data["program"] = {field: value}
    only_problem(data, f"program.{field}", hint)


def test_program_spec_validates_on_construction() -> None:
    with pytest.raises(ValueError, match="width"):
        ProgramSpec(width=1281)
    with pytest.raises(ValueError, match="preset"):
        ProgramSpec(preset="quick")


def test_event_section_values() -> None:
    data = minimal()
    data["event"] = {"name": " ", "on_end": "loop"}
    problems = problems_of(data)
    assert [p.key for p in problems] == ["event.name", "event.on_end"]
    assert "'stop', 'slate'" in problems[1].message


# --- speakers -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Host", "-host", "", "a" * 41, "host speaker", "hôst"])
def test_invalid_speaker_id(bad: str) -> None:
    data = with_("speakers", 0, id=bad)
    data["rundown"] = [{"speaker": "guest", "duration": "5m"}]
    only_problem(data, "speakers[0].id", "lowercase letters")


def test_duplicate_speaker_id() -> None:
    data = with_("speakers", 1, id="host")
    data["rundown"] = [{"speaker": "host", "duration": "5m"}]
    only_problem(data, "speakers[1].id", "already used by speakers[0]", "its own id")


def test_speaker_needs_id_and_name() -> None:
    data = minimal()
    data["speakers"].append({"title": "x"})
    problems = problems_of(data)
    assert [p.key for p in problems] == ["speakers[2].id", "speakers[2].name"]
    assert 'add id = "host"' in problems[0].message
    assert "add name" in problems[1].message


def test_no_speakers() -> None:
    data = minimal()
    del data["speakers"]
    problems = problems_of(data)
    # the rundown's references are not reported again: the missing speakers are the cause
    assert [p.key for p in problems] == ["speakers"]
    assert "[[speakers]]" in problems[0].message


def test_source_kinds(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"x")
    data = minimal()
    data["speakers"] = [
        {"id": "t", "name": "T", "source": "testsrc"},
        {"id": "f", "name": "F", "source": "clips/a.mp4"},
        {"id": "abs", "name": "A", "source": str(tmp_path / "clips" / "a.mp4")},
        {"id": "dots", "name": "D", "source": "./clips/../clips/a.mp4"},
        {"id": "l", "name": "L"},
    ] + [
        {"id": scheme, "name": scheme, "source": f"{scheme}://host/live/x"}
        for scheme in ("rtmp", "rtmps", "rtsp", "http", "https")
    ]
    data["rundown"] = [{"speaker": "t", "duration": "1m"}]
    event = parse(data, base_dir=tmp_path, check_files=True)
    by_id = {s.id: s for s in event.speakers}
    clip = str(tmp_path / "clips" / "a.mp4")
    assert by_id["t"].source == "testsrc"
    assert by_id["f"].source == clip and by_id["abs"].source == clip
    assert by_id["dots"].source == clip
    assert by_id["l"].live and by_id["l"].source is None
    assert not by_id["t"].live
    assert by_id["rtsp"].source == "rtsp://host/live/x"


@pytest.mark.parametrize("url", ["srt://host:9000", "udp://239.0.0.1:1234", "file:///x.mp4"])
def test_source_with_unsupported_scheme(url: str) -> None:
    only_problem(
        with_("speakers", 0, source=url), "speakers[0].source", "rtmp://", "rtsp://", "testsrc"
    )


def test_empty_source_says_to_omit_it() -> None:
    only_problem(with_("speakers", 1, source=""), "speakers[1].source", "omit source")


def test_missing_files_give_resolved_path(tmp_path: Path) -> None:
    data = with_(
        "speakers", 1, source="clips/talk.mp4", fallback="rec.mp4", photo="/nonexistent/p.png"
    )
    problems = problems_of(data, base_dir=tmp_path, check_files=True)
    assert [p.key for p in problems] == [
        "speakers[1].source",
        "speakers[1].fallback",
        "speakers[1].photo",
    ]
    assert str(tmp_path / "clips" / "talk.mp4") in problems[0].message
    assert str(tmp_path / "rec.mp4") in problems[1].message
    assert "/nonexistent/p.png" in problems[2].message
    assert all("does not exist" in p.message and "check the path" in p.message for p in problems)


def test_files_not_checked_when_check_files_is_false(tmp_path: Path) -> None:
    event = parse(with_("speakers", 1, fallback="nope.mp4"), base_dir=tmp_path)
    assert event.speakers[1].fallback == str(tmp_path / "nope.mp4")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    only_problem(
        with_("speakers", 1, fallback="clips"),
        "speakers[1].fallback",
        str(tmp_path / "clips"),
        "not a file",
        base_dir=tmp_path,
        check_files=True,
    )


def unprivileged(work: Callable[[], T]) -> T:
    """``work()`` as a user who is not root (root reads any file): when the tests run as
    root (CI does), in a forked child that became ``nobody``; its result is pickled back,
    and whatever it raised is raised here as an AssertionError."""
    if os.geteuid() != 0:
        return work()
    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            payload = pickle.dumps((True, work()))
        except BaseException as error:
            payload = pickle.dumps((False, f"{type(error).__name__}: {error}"))
        with os.fdopen(write, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        data = answer.read()
    os.waitpid(pid, 0)
    assert data, "the unprivileged child died without an answer"
    done, result = pickle.loads(data)
    if not done:
        raise AssertionError(f"as nobody: {result}")
    return result  # type: ignore[no-any-return]


def test_unreadable_file() -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        base.chmod(0o755)  # nobody may look in, not read the clip
        clip = base / "a.mp4"
        clip.write_bytes(b"x")
        clip.chmod(0)
        problem = unprivileged(
            lambda: only_problem(
                with_("speakers", 1, source="a.mp4"),
                "speakers[1].source",
                "not readable",
                "permissions",
                base_dir=base,
                check_files=True,
            )
        )
    assert problem.key == "speakers[1].source"


def test_photo_must_be_an_image_and_fallback_a_file() -> None:
    data = with_("speakers", 1, fallback="http://x/y.mp4", photo="me.gif")
    problems = problems_of(data)
    assert [p.key for p in problems] == ["speakers[1].fallback", "speakers[1].photo"]
    assert "local file" in problems[0].message and ".png" in problems[1].message


def test_speaker_repr_masks_source_credentials() -> None:
    data = with_("speakers", 1, source="rtsp://admin:cam-Pa55word@10.0.0.2/stream")
    speaker = parse(data).speakers[1]
    assert speaker.source == "rtsp://admin:cam-Pa55word@10.0.0.2/stream"
    assert "cam-Pa55word" not in repr(speaker)
    assert speaker.safe_source() == "rtsp://admin:***@10.0.0.2/stream"
    assert SpeakerSpec("a", "A").safe_source() is None


# --- rundown --------------------------------------------------------------------------


def test_unknown_speaker_in_rundown_suggests_and_lists() -> None:
    problem = only_problem(
        with_("rundown", 1, speaker="hots"),
        "rundown[1].speaker",
        "'hots'",
        "did you mean 'host'?",
        "'host', 'guest'",
        "[[speakers]]",
    )
    assert problem.message.count("did you mean") == 1


def test_speaker_used_by_no_rundown_item_is_fine() -> None:
    data = minimal()
    data["speakers"].append({"id": "spare", "name": "Spare"})
    assert len(parse(data).speakers) == 3


@pytest.mark.parametrize("rundown", [[], None])
def test_empty_rundown(rundown: list[Any] | None) -> None:
    data = minimal()
    if rundown is None:
        del data["rundown"]
    else:
        data["rundown"] = rundown
    only_problem(data, "rundown", "is empty", "[[rundown]]")


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("5 minutes", '"1h30m"'),
        ("90", "needs a unit"),
        (90, '"90s"'),
        ("0s", "more than 0s"),
        ("25h", "at most 24h"),
        (True, "expected a string"),
    ],
)
def test_bad_duration(value: Any, hint: str) -> None:
    only_problem(with_("rundown", 0, duration=value), "rundown[0].duration", hint)


def test_missing_rundown_fields() -> None:
    data = minimal()
    data["rundown"][0] = {}
    problems = problems_of(data)
    assert [p.key for p in problems] == ["rundown[0].speaker", "rundown[0].duration"]
    assert all("is missing" in p.message for p in problems)


def test_hard_start_accepts_toml_datetime_and_string() -> None:
    data = with_("rundown", 0, start=datetime(2026, 12, 17, 20, 30, tzinfo=PLUS5))
    data["rundown"][1]["start"] = "2026-12-17T16:00:00Z"
    event = parse(data)
    assert event.rundown[0].start == datetime(2026, 12, 17, 15, 30, tzinfo=UTC)
    assert event.rundown[1].start == datetime(2026, 12, 17, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [datetime(2026, 12, 17, 20, 30), "2026-12-17T20:30:00", "2026-12-17 20:30"],
)
def test_naive_hard_start(value: Any) -> None:
    only_problem(
        with_("rundown", 0, start=value), "rundown[0].start", "add a UTC offset like +05:00"
    )


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (date(2026, 12, 17), "both a date and a time"),
        ("tonight", "RFC 3339"),
        (1766000000, "expected a date-time"),
    ],
)
def test_bad_hard_start(value: Any, hint: str) -> None:
    only_problem(with_("rundown", 0, start=value), "rundown[0].start", hint, "+05:00")


@pytest.mark.parametrize("second", ["2026-12-17T20:00:00+05:00", "2026-12-17T15:30:00Z"])
def test_hard_starts_out_of_order(second: str) -> None:
    data = minimal()
    data["rundown"] = [
        {"speaker": "host", "duration": "1m", "start": "2026-12-17T20:30:00+05:00"},
        {"speaker": "guest", "duration": "1m"},
        {"speaker": "host", "duration": "1m", "start": second},
    ]
    only_problem(data, "rundown[2].start", "rundown[0].start", "reorder")


def test_segment_spec_validates_on_construction() -> None:
    with pytest.raises(ValueError):
        SegmentSpec("host", 0)
    with pytest.raises(ValueError):
        SegmentSpec("host", 25 * 3600)
    with pytest.raises(ValueError):
        SegmentSpec("host", 60, datetime(2026, 1, 1))


# --- rundown item ids ------------------------------------------------------------------


def rundown_of(*items: dict[str, Any]) -> dict[str, Any]:
    data = minimal()
    data["speakers"].append({"id": "host-2", "name": "Second Host"})
    data["rundown"] = [{"duration": "1m", **item} for item in items]
    return data


def test_item_ids_default_to_the_speaker_then_a_count() -> None:
    event = parse(rundown_of({"speaker": "host"}, {"speaker": "guest"}, {"speaker": "host"}))
    assert [segment.id for segment in event.rundown] == [None, None, None]
    assert segment_ids(event.rundown) == ("host", "guest", "host-2")


def test_an_item_id_is_kept_and_renames_no_other_item() -> None:
    event = parse(
        rundown_of(
            {"speaker": "host", "id": "host-opening"},
            {"speaker": "guest", "id": "keynote_1"},
            {"speaker": "host"},
        )
    )
    assert [segment.id for segment in event.rundown] == ["host-opening", "keynote_1", None]
    # host's second item stays "host-2" whether or not the first one has an id
    assert segment_ids(event.rundown) == ("host-opening", "keynote_1", "host-2")


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("", "not a valid id"),
        ("Host", "lowercase"),
        ("host opening", "not a valid id"),
        ("x" * 41, "1-40"),
        (7, "expected a string"),
    ],
)
def test_invalid_item_id(value: Any, hint: str) -> None:
    only_problem(with_("rundown", 0, id=value), "rundown[0].id", hint)


def test_an_id_given_twice() -> None:
    data = rundown_of({"speaker": "host", "id": "talk"}, {"speaker": "guest", "id": "talk"})
    only_problem(data, "rundown[1].id", "'talk' is already the id of rundown[0]")


def test_an_id_that_is_another_items_default() -> None:
    earlier = rundown_of({"speaker": "host"}, {"speaker": "guest", "id": "host"})
    only_problem(earlier, "rundown[1].id", "'host' is the default id of rundown[0]")
    later = rundown_of(
        {"speaker": "guest", "id": "host-2"}, {"speaker": "host"}, {"speaker": "host"}
    )
    only_problem(later, "rundown[0].id", "'host-2' is the default id of rundown[2]")


def test_two_default_ids_that_clash_ask_for_an_id() -> None:
    # host's second item and speaker "host-2"'s first would both be "host-2"
    data = rundown_of({"speaker": "host"}, {"speaker": "host"}, {"speaker": "host-2"})
    only_problem(data, "rundown[2].id", "is missing", "rundown[1]", "'host-2'")
    data["rundown"][2]["id"] = "second-host"
    assert segment_ids(parse(data).rundown) == ("host", "host-2", "second-host")


def test_an_invalid_id_still_counts_as_its_speakers_item() -> None:
    # the second host item is "host-2" once the first one's id is fixed: that clash is real
    data = rundown_of({"speaker": "host", "id": "BAD"}, {"speaker": "host"}, {"speaker": "host-2"})
    problems = problems_of(data)
    assert [p.key for p in problems] == ["rundown[0].id", "rundown[2].id"]
    assert "'host-2'" in problems[1].message


def test_segment_ids_of_segments_built_in_code() -> None:
    assert segment_ids([SegmentSpec("a", 1), SegmentSpec("a", 1, id="x")]) == ("a", "x")
    with pytest.raises(ValueError, match="'a'"):
        segment_ids([SegmentSpec("a", 1), SegmentSpec("b", 1, id="a")])
    with pytest.raises(ValueError, match="id"):
        SegmentSpec("host", 60, id="Host")


# --- environment variables -------------------------------------------------------------


def test_missing_environment_variable() -> None:
    problem = only_problem(minimal(), "destinations[0].key", env={})
    assert problem.message == (
        "environment variable YT_STREAM_KEY is not set: export it before running, "
        "or put the value in the file"
    )


def test_substitution_applies_to_every_string() -> None:
    data = minimal()
    data["event"] = {"name": "${CITY} rally"}
    data["speakers"][1]["title"] = "From ${CITY}"
    data["destinations"][0]["listeners"] = {"video_id": "${VID}", "api_key": "${YT_API}"}
    data["ice_servers"] = [{"urls": ["stun:${STUN}:3478"]}]
    env = {"YT_STREAM_KEY": KEY, "CITY": "Lahore", "YT_API": "tok", "VID": VIDEO, "STUN": "s"}
    event = parse(data, env=env)
    assert event.info.name == "Lahore rally"
    assert event.speakers[1].title == "From Lahore"
    assert event.destinations[0].listeners == {"video_id": VIDEO, "api_key": "tok"}
    assert event.ice_servers[0].urls == ("stun:s:3478",)
    assert type(event.info.name) is str


def test_missing_variable_inside_listeners() -> None:
    data = minimal()
    data["destinations"][0]["listeners"] = {"video_id": VIDEO, "api_key": "${YT_API}"}
    only_problem(data, "destinations[0].listeners.api_key", "YT_API is not set")


@pytest.mark.parametrize(
    ("written", "value"),
    [("costs $${PRICE}", "costs ${PRICE}"), ("a$${b", "a${b"), ("$$5 and $X", "$$5 and $X")],
)
def test_literal_dollar_brace(written: str, value: str) -> None:
    assert parse(with_("speakers", 1, title=written)).speakers[1].title == value


@pytest.mark.parametrize("written", ["${1st}", "pa${ss", "${}", "${A-B}"])
def test_malformed_reference_is_not_quoted(written: str) -> None:
    problem = only_problem(
        dest(platform="youtube", key=written), "destinations[0].key", "malformed", "$${"
    )
    assert written not in problem.message


def test_empty_key_from_environment() -> None:
    only_problem(
        minimal(), "destinations[0].key", "'${YT_STREAM_KEY}'", "empty", env={"YT_STREAM_KEY": ""}
    )


def test_environment_values_never_appear_in_messages() -> None:
    data = minimal()
    data["speakers"][0]["source"] = "${CAM_URL}"
    data["rundown"][0]["duration"] = "${SLOT}"
    data["rundown"][0]["start"] = "${START}"
    data["destinations"].append({"name": "b", "url": "${BACKUP_URL}"})
    env = {
        "YT_STREAM_KEY": KEY,
        "CAM_URL": "srt://cam-token-1234@host",
        "SLOT": "forever-5678",
        "START": "2026-12-17T20:30:00-hidden",
        "BACKUP_URL": "udp://backup-secret-91",
    }
    problems = problems_of(data, env=env)
    assert [p.key for p in problems] == [
        "speakers[0].source",
        "rundown[0].duration",
        "rundown[0].start",
        "destinations[1].url",
    ]
    text = "\n".join(str(p) for p in problems)
    for value in env.values():
        assert value not in text
    assert "'${SLOT}' (from the environment)" in problems[1].message
    assert "'${START}' (from the environment)" in problems[2].message


# --- destinations ---------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["youtube", "facebook", "x", "twitch"])
def test_platform_presets(platform: str) -> None:
    spec = parse(dest(platform=platform, key=KEY)).destinations[0]
    assert spec.kind == "rtmp" and spec.platform == platform
    assert spec.url == PLATFORM_INGEST[platform]
    assert spec.target_url() == PLATFORM_INGEST[platform] + "/" + KEY
    assert spec.safe_url() == PLATFORM_INGEST[platform] + "/***"
    assert KEY not in repr(spec) and KEY not in str(spec) and KEY not in spec.safe_url()


def test_preset_ingest_urls() -> None:
    # RTMPS everywhere: each platform documents an RTMPS ingest (Twitch: the secure
    # template of https://ingest.twitch.tv/ingests).
    assert PLATFORM_INGEST == {
        "youtube": "rtmps://a.rtmps.youtube.com:443/live2",
        "facebook": "rtmps://live-api-s.facebook.com:443/rtmp",
        "x": "rtmps://va.pscp.tv:443/x",
        "twitch": "rtmps://ingest.global-contribute.live-video.net:443/app",
    }


@pytest.mark.parametrize("platform", ["youtube", "facebook", "x", "twitch"])
def test_presets_send_no_key_in_cleartext(platform: str) -> None:
    spec = parse(dest(platform=platform, key=KEY)).destinations[0]
    assert spec.url.startswith("rtmps://")
    assert spec.cleartext_warning() is None


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"platform": "youtube", "key": KEY, "url": "rtmp://a.rtmp.youtube.com/live2"}, "key"),
        ({"url": "rtmp://ingest.example/app", "key": KEY}, "stream key"),
        ({"url": f"icecast://source:{KEY}@ice.example:8000/live.aac"}, "source password"),
        (
            {
                "platform": "youtube",
                "key": KEY,
                "listeners": {"video_id": "dQw4w9WgXcQ", "api_key": KEY,
                              "api_base": "http://yt.example/youtube/v3"},
            },
            "listener API credential",
        ),
    ],
)  # fmt: skip
def test_cleartext_credentials_are_warned_with_the_secret_masked(
    table: dict[str, object], says: str
) -> None:
    spec = parse(dest(**table)).destinations[0]
    warning = spec.cleartext_warning()
    assert warning is not None and says in warning and "cleartext" in warning
    assert spec.name in warning and KEY not in warning and "***" in warning


def test_no_warning_without_a_credential_in_cleartext() -> None:
    for table in ({"url": "rtmps://ingest.example/app", "key": KEY}, {"url": "hls"}):
        assert parse(dest(**table)).destinations[0].cleartext_warning() is None


def test_url_overrides_preset_ingest() -> None:
    spec = parse(dest(platform="youtube", key=KEY, url="rtmp://b.rtmp.youtube.com/live2/"))
    assert spec.destinations[0].target_url() == "rtmp://b.rtmp.youtube.com/live2/" + KEY


def test_preset_override_must_be_rtmp() -> None:
    only_problem(
        dest(platform="twitch", key=KEY, url="https://ingest.example/app"),
        "destinations[0].url",
        "rtmp://host/app",
        "remove url",
    )


@pytest.mark.parametrize(
    ("platform", "variable"), [("youtube", "YT_STREAM_KEY"), ("twitch", "TWITCH_STREAM_KEY")]
)
def test_preset_without_key(platform: str, variable: str) -> None:
    only_problem(
        dest(platform=platform), "destinations[0].key", f"{platform} needs a stream key", variable
    )


def test_custom_rtmp_with_and_without_key() -> None:
    with_key = parse(dest(url="rtmps://relay.example:443/live", key=KEY)).destinations[0]
    assert with_key.platform == "custom" and with_key.kind == "rtmp"
    assert with_key.target_url() == "rtmps://relay.example:443/live/" + KEY
    assert KEY not in with_key.safe_url()
    bare = parse(dest(platform="custom", url="rtmp://relay.example/live/stream1")).destinations[0]
    assert bare.target_url() == "rtmp://relay.example/live/stream1"
    assert bare.key is None


def test_rtmp_url_without_app_still_masks_key() -> None:
    spec = parse(dest(url="rtmp://relay.example", key=KEY)).destinations[0]
    assert spec.target_url() == "rtmp://relay.example/" + KEY
    assert KEY not in spec.safe_url() and KEY not in repr(spec)


@pytest.mark.parametrize(
    "url", ["srt://host:9000", "http://host/ingest", "https://host/x", "udp://h:1"]
)
def test_destination_scheme_we_cannot_push_to(url: str) -> None:
    scheme = url.split(":")[0]
    only_problem(
        dest(url=url),
        "destinations[0].url",
        f"cannot push to {scheme}://",
        "rtmp://",
        "rtmps://",
        "icecast://",
        ".mkv",
        '"hls"',
    )


@pytest.mark.parametrize("suffix", [".mkv", ".flv", ".mp4", ".ts"])
def test_recording_file(suffix: str) -> None:
    spec = parse(dest(url=f"recordings/jalsa{suffix}")).destinations[0]
    assert spec.kind == "file"
    assert spec.url == spec.target_url() == f"/srv/event/recordings/jalsa{suffix}"
    assert spec.safe_url() == spec.url


def test_recording_with_unknown_suffix() -> None:
    only_problem(dest(url="recordings/jalsa.avi"), "destinations[0].url", ".mkv", "rtmp://")


def test_icecast_is_audio_only_and_hides_password() -> None:
    url = "icecast://source:ice-Pa55word@radio.example:8000/live.mp3"
    spec = parse(dest(url=url)).destinations[0]
    assert spec.kind == "icecast" and spec.audio_only
    assert spec.target_url() == url
    assert spec.safe_url() == "icecast://source:***@radio.example:8000/live.mp3"
    assert "ice-Pa55word" not in repr(spec) and "ice-Pa55word" not in spec.url
    assert spec.password == Secret("ice-Pa55word")


@pytest.mark.parametrize(
    "url",
    [
        "icecast://radio.example:8000/live",
        "icecast://source:pw@radio.example:8000/",
        "icecast://source:pw@radio.example:port/live",
    ],
)
def test_incomplete_icecast_url(url: str) -> None:
    problem = only_problem(dest(url=url), "destinations[0].url", "icecast://source:")
    assert ":pw@" not in problem.message


def test_icecast_cannot_carry_video_or_key() -> None:
    data = dest(url="icecast://source:pw12@radio.example:8000/a", audio_only=False, key="k")
    problems = problems_of(data)
    assert [p.key for p in problems] == ["destinations[0].audio_only", "destinations[0].key"]


def test_hls_destination() -> None:
    spec = parse(dest(url="hls")).destinations[0]
    assert spec.kind == "hls" and spec.target_url() == "" and spec.safe_url() == "hls"


def test_key_only_for_rtmp() -> None:
    only_problem(dest(url="hls", key="abc"), "destinations[0].key", "remove it")


def test_rtmp_credentials_in_url_are_secret() -> None:
    spec = parse(dest(url="rtmp://pub:rtmp-Pa55@relay.example/live", key=KEY)).destinations[0]
    assert spec.target_url() == f"rtmp://pub:rtmp-Pa55@relay.example/live/{KEY}"
    assert "rtmp-Pa55" not in repr(spec) and "rtmp-Pa55" not in spec.safe_url()


def test_destination_options() -> None:
    spec = parse(dest(platform="facebook", key=KEY, audio_only=True, verify_tls=False))
    assert spec.destinations[0].audio_only and not spec.destinations[0].verify_tls


def test_duplicate_destination_names() -> None:
    data = minimal()
    data["destinations"].append({"name": "yt", "url": "hls"})
    only_problem(data, "destinations[1].name", "already used by destinations[0]")


def test_invalid_destination_name_and_platform() -> None:
    data = dest(platform="youtub", key=KEY)
    data["destinations"][0]["name"] = "YT"
    problems = problems_of(data)
    assert [p.key for p in problems] == ["destinations[0].name", "destinations[0].platform"]
    assert "did you mean 'youtube'?" in problems[1].message


def test_destination_needs_somewhere_to_go() -> None:
    only_problem(dest(), "destinations[0]", "platform", "url")
    only_problem(dest(platform="custom"), "destinations[0].url", "is missing")


def test_listeners_must_be_a_table() -> None:
    only_problem(dest(url="hls", listeners="yes"), "destinations[0].listeners", "table")


def test_destination_repr_hides_listener_values() -> None:
    listeners = {"video_id": VIDEO, "api_key": "listen-Secret-1"}
    data = dest(platform="youtube", key=KEY, listeners=listeners)
    spec = parse(data).destinations[0]
    assert spec.listeners["api_key"] == "listen-Secret-1"
    assert "listen-Secret-1" not in repr(spec)
    with pytest.raises(TypeError):
        spec.listeners["api_key"] = "x"  # type: ignore[index]


def test_key_value_never_in_errors_even_as_wrong_type() -> None:
    data = dest(platform="youtube", key=98765432)
    problem = only_problem(data, "destinations[0].key", "expected a string, got an integer")
    assert "98765432" not in problem.message


def test_literal_key_is_scrubbed_from_every_message() -> None:
    data = dest(platform="youtube", key="lit-KEY-5566")
    data["speakers"][1]["name"] = ["lit-KEY-5566"]  # a mistake that would echo it
    with pytest.raises(EventError) as info:
        parse(data)
    assert "lit-KEY-5566" not in str(info.value)


def test_destination_spec_is_hashable_and_comparable() -> None:
    a = DestinationSpec("yt", "youtube", "rtmp", PLATFORM_INGEST["youtube"], Secret(KEY))
    b = DestinationSpec("yt", "youtube", "rtmp", PLATFORM_INGEST["youtube"], Secret(KEY))
    assert a == b and hash(a) == hash(b)
    assert KEY not in repr(a)


# --- ICE servers ----------------------------------------------------------------------


def test_ice_servers() -> None:
    data = minimal()
    data["ice_servers"] = [
        {"urls": "stun:stun.example:3478"},
        {
            "urls": ["turn:t.example:3478", "turns:t.example:5349"],
            "username": "u",
            "credential": "turn-Secret-77",
        },
        {"urls": "turn:t2.example:3478", "secret": "shared-Secret-0123456789", "ttl": "2h"},
    ]
    event = parse(data)
    stun, fixed, minted = event.ice_servers
    assert stun == IceServer(("stun:stun.example:3478",))
    assert stun.login("ameer", 1000.0) is None
    assert fixed.login("ameer", 1000.0) == ("u", "turn-Secret-77")
    assert minted.ttl == 7200 and minted.login("ameer", 1000.0)[0] == "8200:ameer"  # type: ignore[index]
    assert "turn-Secret-77" not in repr(event) and "shared-Secret" not in repr(event)


def test_a_turn_secret_makes_each_speaker_a_login_that_expires() -> None:
    server = IceServer(("turn:t.example:3478",), secret=Secret("shared-Secret-0123456789"))
    login = server.login("ameer", 1_800_000_000.9)
    assert login is not None
    username, password = login
    # The TURN REST API convention (coturn's use-auth-secret): "<expiry>:<who>", and
    # base64(HMAC-SHA1(secret, username)).
    assert username == f"{1_800_000_000 + 12 * 3600}:ameer"
    digest = hmac.new(b"shared-Secret-0123456789", username.encode(), hashlib.sha1).digest()
    assert password == base64.b64encode(digest).decode()
    assert server.login("sana", 1_800_000_000.9) != login  # one per speaker


@pytest.mark.parametrize(
    ("server", "key", "hint"),
    [
        ({"urls": "http://stun.example"}, "ice_servers[0].urls", "stun:host:port"),
        ({"urls": []}, "ice_servers[0].urls", "is empty"),
        ({"urls": 3}, "ice_servers[0].urls", "array of strings"),
        ({}, "ice_servers[0].urls", "is missing"),
        ({"urls": "turn:t.example"}, "ice_servers[0]", "secret = "),
        (
            {"urls": "turn:t", "secret": "0123456789abcdef", "username": "u", "credential": "c"},
            "ice_servers[0].secret",
            "not both",
        ),
        ({"urls": "stun:s", "secret": "0123456789abcdef"}, "ice_servers[0].secret", "TURN"),
        ({"urls": "turn:t", "secret": "short"}, "ice_servers[0].secret", "at least 16"),
        (
            {"urls": "turn:t", "secret": "0123456789abcdef", "ttl": "1m"},
            "ice_servers[0].ttl",
            "between 10m and 168h",
        ),
        (
            {"urls": "turn:t", "secret": "0123456789abcdef", "ttl": "soon"},
            "ice_servers[0].ttl",
            "soon",
        ),
        (
            {"urls": "turn:t", "username": "u", "credential": "c", "ttl": "1h"},
            "ice_servers[0].ttl",
            "only applies with secret",
        ),
    ],
)
def test_bad_ice_servers(server: dict[str, Any], key: str, hint: str) -> None:
    data = minimal()
    data["ice_servers"] = [server]
    only_problem(data, key, hint)


# --- reporting ------------------------------------------------------------------------


def test_all_problems_reported_at_once_in_file_order() -> None:
    data = {"program": {"fps": "thirty"}, **minimal()}  # 1: wrong type
    data["speakers"][1]["sorce"] = "x"  # 2: unknown key
    data["rundown"][0]["speaker"] = "hots"  # 3: unknown speaker
    data["rundown"][1]["duration"] = "5 mins"  # 4: bad duration
    data["destinations"].append({"name": "srt", "url": "srt://h:1"})  # 5: bad scheme
    problems = problems_of(data, env={})  # 6: YT_STREAM_KEY unset
    assert [p.key for p in problems] == [
        "program.fps",
        "speakers[1].sorce",
        "rundown[0].speaker",
        "rundown[1].duration",
        "destinations[0].key",
        "destinations[1].url",
    ]


FIVE_MISTAKES = """
[event]
on_end = "loop"                 # 1: not stop/slate

[program]
width = 1281                    # 2: odd

[[speakers]]
id = "host"
name = "Host"
source = "srt://camera:9000"    # 3: cannot pull srt://

[[rundown]]
speaker = "hots"                # 4: no such speaker
duration = "5m"

[[destinations]]
name = "yt"
platform = "youtube"            # 5: no key
"""


def test_a_file_with_five_mistakes_reports_five_problems(tmp_path: Path) -> None:
    path = tmp_path / "rally.toml"
    path.write_text(FIVE_MISTAKES, encoding="utf-8")
    with pytest.raises(EventError) as info:
        load_event(path, env={})
    assert [p.key for p in info.value.problems] == [
        "event.on_end",
        "program.width",
        "speakers[0].source",
        "rundown[0].speaker",
        "destinations[0].key",
    ]
    assert len(str(info.value).splitlines()) == 5


def test_problem_and_error_strings(tmp_path: Path) -> None:
    assert str(Problem("program.fps", "bad")) == "program.fps: bad"
    path = tmp_path / "rally.toml"
    error = EventError([Problem("a", "one"), Problem("b", "two")], path)
    assert str(error) == f"{path}: a: one\n{path}: b: two"
    assert str(EventError([Problem("a", "one")])) == "a: one"


def test_load_event_attaches_the_path(tmp_path: Path) -> None:
    path = tmp_path / "rally.toml"
    path.write_text('[program]\nfps = "thirty"\n', encoding="utf-8")
    with pytest.raises(EventError) as info:
        load_event(path, env={})
    assert info.value.path == path
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: program.fps: expected an integer, got 'thirty': write it like 30"
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_load_event_resolves_paths_from_the_file_folder(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"x")
    path = tmp_path / "rally.toml"
    path.write_text(
        '[[speakers]]\nid = "a"\nname = "A"\nsource = "clip.mp4"\n'
        '[[rundown]]\nspeaker = "a"\nduration = "1m"\n',
        encoding="utf-8",
    )
    event = load_event(path, env={})
    assert event.base_dir == tmp_path
    assert event.speakers[0].source == str(tmp_path / "clip.mp4")


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "rally.toml"
    path.write_text('[event]\nname = "unterminated\n', encoding="utf-8")
    with pytest.raises(EventError) as info:
        load_event(path, env={})
    (problem,) = info.value.problems
    assert problem.key == "<file>"
    assert "line 2" in problem.message and "column" in problem.message
    assert info.value.path == path


@pytest.mark.parametrize(
    ("setup", "hint"),
    [("missing", "does not exist"), ("folder", "is a folder"), ("latin1", "UTF-8")],
)
def test_unreadable_event_file(tmp_path: Path, setup: str, hint: str) -> None:
    path = tmp_path / "rally.toml"
    if setup == "folder":
        path.mkdir()
    elif setup == "latin1":
        path.write_bytes('[event]\nname = "Jalsa Salána"\n'.encode("latin-1"))
    with pytest.raises(EventError) as info:
        load_event(path, env={})
    (problem,) = info.value.problems
    assert problem.key == "<file>" and hint in problem.message and str(path) in problem.message


def test_choice_of_the_wrong_type_does_not_cascade() -> None:
    only_problem(dest(platform=5, key=KEY), "destinations[0].platform", "expected a string")


def test_empty_speakers_array() -> None:
    data = minimal()
    data["speakers"] = []
    only_problem(data, "speakers", "none defined")


def test_rundown_of_the_wrong_type_is_reported_once() -> None:
    data = minimal()
    data["rundown"] = "host"
    only_problem(data, "rundown", "expected an array of tables")


@pytest.mark.parametrize("url", ["rtmp://[::1/live", "icecast://source:pw99@[::1:8000/m"])
def test_unparseable_url_is_a_problem_not_a_crash(url: str) -> None:
    problem = only_problem(dest(url=url), "destinations[0].url")
    assert "pw99" not in problem.message


def test_event_error_pickles() -> None:
    import pickle

    error = EventError([Problem("a", "b")], Path("/x.toml"))
    clone = pickle.loads(pickle.dumps(error))
    assert clone.problems == error.problems and clone.path == error.path
    assert str(clone) == str(error)


def test_destination_name_of_the_wrong_type_is_reported_once() -> None:
    only_problem(dest(url="hls", name=5), "destinations[0].name", "expected a string")


def test_key_with_whitespace() -> None:
    problem = only_problem(
        minimal(), "destinations[0].key", "line breaks", env={"YT_STREAM_KEY": "abcd-efgh\n"}
    )
    assert "abcd-efgh" not in problem.message
