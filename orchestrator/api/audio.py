"""Program audio for operators: the levels, and mute and gain per speaker in the mix.

=======  ==============================  ================================================
GET      /api/audio                      ``{"program": {"peak", "rms"}, "speakers": {id:
                                         {"muted", "gain_db", "level_dbfs"}}}``
POST     /api/speakers/{id}/audio        ``{"muted"?: bool, "gain_db"?: number}``: the
                                         speaker's new entry (+ ``"saved"``)
=======  ==============================  ================================================

Levels are dBFS, the peak (and the program's RMS) of the last second, -100 for silence;
a speaker's ``level_dbfs`` is their input before mute and gain, null where nothing is
measured (see :func:`monitoring.show_view.speaker_levels`). Both need the operator
token, checked before the body is read; a body is at most 64 KiB (413), JSON (400) with
only those fields (422 naming the field; a gain outside -20..+20 dB is 422 too); an
unknown speaker is 404.

Settings are applied from the program's next audio block (a 15 ms ramp) and saved to
``<state dir>/audio.json`` (atomically, in a thread); :func:`add_audio_routes` loads
that file when ``jalsa run`` starts, so a restart after a crash keeps every mute and gain.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request, params
from fastapi.responses import JSONResponse

from monitoring.show_view import speaker_levels
from orchestrator.api.body import MAX_JSON_BODY, BodyRefused, read_json
from orchestrator.program.mix import (
    MAX_GAIN_DB,
    MIN_GAIN_DB,
    SETTINGS_FILE,
    UNITY,
    check_gain,
    read_settings,
    write_settings,
)
from orchestrator.show import Show

log = logging.getLogger(__name__)

MAX_AUDIO_BODY: Final = MAX_JSON_BODY
_FIELDS: Final = ("muted", "gain_db")


def audio_state(show: Show) -> dict[str, Any]:
    """The body of ``GET /api/audio`` (also what a console push may send)."""
    snapshot = show.snapshot()
    levels = speaker_levels(snapshot)
    program = snapshot.program
    settings = program.audio_settings
    speakers: dict[str, Any] = {}
    for speaker in snapshot.speakers:
        setting = settings.get(speaker, UNITY)
        speakers[speaker] = {
            "muted": setting.muted,
            "gain_db": setting.gain_db,
            "level_dbfs": levels.get(speaker),
        }
    return {
        "program": {"peak": program.audio_peak_dbfs, "rms": program.audio_rms_dbfs},
        "speakers": speakers,
    }


def _problem(status: int, key: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": [{"key": key, "message": message}]}, status_code=status)


def _parse(data: Any) -> tuple[bool | None, float | None] | JSONResponse:
    """``(muted, gain_db)`` from a request body's JSON, or the error response."""
    if not isinstance(data, dict):
        return _problem(422, "body", 'send a JSON object: {"muted": true} or {"gain_db": -6}')
    for key in data:
        if key not in _FIELDS:
            return _problem(422, str(key), "unknown field: send muted and/or gain_db")
    if not data:
        return _problem(422, "body", "nothing to change: send muted and/or gain_db")
    muted = data.get("muted")
    if "muted" in data and not isinstance(muted, bool):
        return _problem(422, "muted", f"expected true or false, got {json.dumps(muted)}")
    gain = data.get("gain_db")
    if "gain_db" in data:
        if isinstance(gain, bool) or not isinstance(gain, int | float):
            return _problem(422, "gain_db", f"expected a number of dB, got {json.dumps(gain)}")
        try:
            gain = check_gain(float(gain))
        except ValueError:
            return _problem(
                422,
                "gain_db",
                f"must be between {MIN_GAIN_DB:g} and {MAX_GAIN_DB:+g} dB, got {gain!r}",
            )
    return muted, gain


def add_audio_routes(app: FastAPI, show: Show, state_dir: Path, operator: params.Depends) -> None:
    """Load the saved settings into the program and register the routes above."""
    path = state_dir / SETTINGS_FILE
    speakers = {s.id: s for s in show.event.speakers}
    saved = read_settings(path, speakers)
    if saved:
        show.program.load_audio_settings(saved)
        log.info(
            "audio settings restored from %s: %s",
            path,
            ", ".join(
                f"{speaker} {'muted, ' if s.muted else ''}{s.gain_db:+g} dB"
                for speaker, s in sorted(saved.items())
            ),
        )
    writing = asyncio.Lock()

    async def save() -> bool:
        # One write at a time, each of the settings as they are once it may write: the
        # file always ends with the latest.
        async with writing:
            try:
                await asyncio.to_thread(write_settings, path, show.program.audio_settings())
            except OSError:
                log.exception("could not save the audio settings to %s", path)
                return False
            return True

    @app.get("/api/audio", dependencies=[operator])
    async def audio() -> dict[str, Any]:
        return audio_state(show)

    @app.post("/api/speakers/{speaker}/audio", dependencies=[operator])
    async def set_audio(speaker: str, request: Request) -> Any:
        if speaker not in speakers:
            return JSONResponse({"detail": f"no speaker {speaker!r} in the event"}, 404)
        try:
            body = await read_json(request, MAX_AUDIO_BODY, empty={})
        except BodyRefused as refused:
            if refused.status == 413:
                return JSONResponse({"detail": refused.detail}, 413)
            return _problem(refused.status, "body", refused.detail)
        parsed = _parse(body)
        if isinstance(parsed, JSONResponse):
            return parsed
        muted, gain = parsed
        setting = show.program.set_audio(speaker, muted=muted, gain_db=gain)
        log.info(
            "audio: %s %s, gain %+g dB",
            speaker,
            "muted" if setting.muted else "unmuted",
            setting.gain_db,
        )
        stored = await save()
        return {
            **audio_state(show)["speakers"][speaker],
            "speaker": speaker,
            "saved": stored,
        }
