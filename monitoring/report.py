"""``jalsa report``: post-event figures from the samples in the state dir.

:func:`build_report` is pure (records in, :class:`Report` out); :func:`write_report`
writes ``report.md``, ``report.json`` and ``listeners.svg``.

Definitions:

- A *run* is one jalsa process: from its ``start`` record to its ``stop`` record, or to
  its last record if it was killed. Time between runs counts as nobody's.
- *Peak* listeners of a platform: the largest sample, and when it was first reached.
  The *total of peaks* adds the platforms' peaks: the most people watching at once if
  nobody watched on two platforms, taken at different moments — an upper bound of the
  audience at any one time, and a lower bound of the people reached.
- A destination's *uptime*: the time it was ``live`` over the time jalsa ran with it.
- A speaker's *time on air*: the time the program showed their live feed, and their
  recorded fallback separately; ``slate`` is the time a slate was up.
- An *outage window* runs from the outage's start (the classifier's ``since``, the first
  evaluation that saw it) to its clear; one still open when a run ended is marked open.
- *Probe coverage* and the outages *judged again from every round*: see
  :mod:`monitoring.coverage` (pushing agents upload late what they measured while cut
  off; the live windows above are what was flagged at the time, these are what the
  rounds show, by measurement time).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitoring.chart import listeners_svg
from monitoring.coverage import JudgedWindow, VantageCoverage, coverage, reclassify
from monitoring.outage import Outage
from monitoring.outage_watch import describe
from monitoring.samples import Record, read_records


@dataclass(frozen=True, slots=True)
class PlatformPeak:
    platform: str
    peak: int
    at: float


@dataclass(frozen=True, slots=True)
class OutageWindow:
    scope: str
    platform: str
    start: float
    end: float
    open: bool
    cities: tuple[str, ...]
    vantages: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class Uptime:
    destination: str
    platform: str
    live_seconds: float
    observed_seconds: float

    @property
    def ratio(self) -> float:
        return self.live_seconds / self.observed_seconds if self.observed_seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class OnAirTime:
    speaker: str
    live_seconds: float
    recorded_seconds: float


@dataclass(frozen=True, slots=True)
class Report:
    event: str
    start: float
    end: float
    runs: int
    seconds: float
    peaks: tuple[PlatformPeak, ...] = ()
    total_of_peaks: int = 0
    outages: tuple[OutageWindow, ...] = ()
    uptime: tuple[Uptime, ...] = ()
    on_air: tuple[OnAirTime, ...] = ()
    slate_seconds: float = 0.0
    series: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    coverage: tuple[VantageCoverage, ...] = ()
    judged: tuple[JudgedWindow, ...] = ()


class NoSamples(Exception):
    """The state dir has no samples: jalsa never ran with it (or they were deleted)."""


@dataclass
class _Run:
    start: float
    end: float
    records: list[Record]


def _runs(records: Iterable[Record]) -> list[_Run]:
    runs: list[_Run] = []
    for r in sorted(records, key=lambda r: float(r["t"])):
        t = float(r["t"])
        if r.get("type") == "start" or not runs:
            runs.append(_Run(t, t, []))
        run = runs[-1]
        run.records.append(r)
        run.end = max(run.end, t)
    return runs


class _Tally:
    """Totals over the runs; :meth:`add` integrates one run's timeline."""

    def __init__(self) -> None:
        self.event = ""
        self.series: dict[str, list[tuple[float, int]]] = {}
        self.live: dict[str, float] = {}
        self.observed: dict[str, float] = {}
        self.platforms: dict[str, str] = {}
        self.speakers: dict[tuple[str, str], float] = {}
        self.windows: list[OutageWindow] = []
        self._on_air: tuple[str, str] | None = None
        self._states: dict[str, str] = {}
        self._last = 0.0

    def _credit(self, until: float) -> None:
        """Time from the previous record to ``until`` goes to what was on then."""
        dt = max(0.0, until - self._last)
        if self._on_air is not None:
            self.speakers[self._on_air] = self.speakers.get(self._on_air, 0.0) + dt
        for name, state in self._states.items():
            if state == "live":
                self.live[name] = self.live.get(name, 0.0) + dt
        self._last = max(self._last, until)

    def add(self, run: _Run) -> None:
        self._on_air, self._states, self._last = None, {}, run.start
        open_outages: dict[tuple[Any, ...], Record] = {}
        seen: set[str] = set()
        for r in run.records:
            t = float(r["t"])
            self._credit(t)
            kind = r.get("type")
            if kind == "start":
                self.event = str(r.get("event") or self.event)
                for d in r.get("destinations") or []:
                    if isinstance(d, dict) and isinstance(d.get("name"), str):
                        seen.add(d["name"])
                        self.platforms[d["name"]] = str(d.get("platform", ""))
            elif kind == "on_air":
                self._on_air = (str(r.get("speaker")), str(r.get("kind")))
            elif kind == "destination" and isinstance(r.get("name"), str):
                self._states[r["name"]] = str(r.get("state"))
                seen.add(r["name"])
            elif kind == "sample":
                self._sample(r, t, seen)
            elif kind == "outage":
                key = (r.get("scope"), r.get("platform"), tuple(r.get("vantages") or ()))
                if r.get("event") == "started":
                    open_outages[key] = r
                elif r.get("event") == "cleared":
                    started = open_outages.pop(key, r)
                    self.windows.append(_window(started, float(r.get("since", t)), t, False))
        self._credit(run.end)
        for name in seen:
            self.observed[name] = self.observed.get(name, 0.0) + (run.end - run.start)
        for started in open_outages.values():
            since = float(started.get("since", run.start))
            self.windows.append(_window(started, since, run.end, True))

    def _sample(self, r: Record, t: float, seen: set[str]) -> None:
        for platform, n in (r.get("listeners") or {}).items():
            if isinstance(n, int):
                self.series.setdefault(str(platform), []).append((t, n))
        if self._on_air is None and isinstance(r.get("on_air"), str):
            self._on_air = (r["on_air"], str(r.get("on_air_kind")))
        for name, state in (r.get("destinations") or {}).items():
            self._states.setdefault(str(name), str(state))
            seen.add(str(name))


def build_report(records: Iterable[Record]) -> Report:
    """Raises:
    NoSamples: there are no records.
    """
    records = list(records)
    runs = _runs(records)
    if not runs:
        raise NoSamples("no samples")
    debounce = {"for_seconds": 60.0, "clear_seconds": 120.0}
    for r in records:
        if r.get("type") == "classifier":
            debounce = {k: float(r.get(k, v)) for k, v in debounce.items()}
    tally = _Tally()
    for run in runs:
        tally.add(run)
    peaks = []
    for platform, values in sorted(tally.series.items()):
        top = max(n for _, n in values)
        peaks.append(PlatformPeak(platform, top, next(t for t, n in values if n == top)))
    on_air_times: dict[str, list[float]] = {}
    slate = 0.0
    for (speaker, kind), seconds in tally.speakers.items():
        if kind == "slate" or speaker == "slate":
            slate += seconds
            continue
        times = on_air_times.setdefault(speaker, [0.0, 0.0])
        times[0 if kind == "speaker" else 1] += seconds
    return Report(
        event=tally.event,
        start=runs[0].start,
        end=runs[-1].end,
        runs=len(runs),
        seconds=sum(run.end - run.start for run in runs),
        peaks=tuple(sorted(peaks, key=lambda p: -p.peak)),
        total_of_peaks=sum(p.peak for p in peaks),
        outages=tuple(sorted(tally.windows, key=lambda w: w.start)),
        uptime=tuple(
            Uptime(name, tally.platforms.get(name, ""), tally.live.get(name, 0.0), seen_for)
            for name, seen_for in sorted(tally.observed.items())
        ),
        on_air=tuple(
            OnAirTime(s, live_s, recorded)
            for s, (live_s, recorded) in sorted(on_air_times.items(), key=lambda i: -sum(i[1]))
        ),
        slate_seconds=slate,
        series=tally.series,
        coverage=coverage(records),
        judged=reclassify(records, **debounce),
    )


def _window(r: Record, start: float, end: float, still_open: bool) -> OutageWindow:
    return OutageWindow(
        scope=str(r.get("scope")),
        platform=str(r.get("platform")),
        start=start,
        end=end,
        open=still_open,
        cities=tuple(str(c) for c in r.get("cities") or ()),
        vantages=tuple(str(v) for v in r.get("vantages") or ()),
    )


# -- output ------------------------------------------------------------------------------------
def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def _span(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def to_markdown(report: Report, chart: str | None = "listeners.svg") -> str:
    title = report.event or "jalsa"
    runs = f"{report.runs} run{'s' if report.runs != 1 else ''}"
    lines = [
        f"# {title}: report",
        "",
        f"From {_when(report.start)} to {_when(report.end)}: jalsa ran for "
        f"{_span(report.seconds)} ({runs}).",
        "",
        "## Listeners",
        "",
    ]
    if report.peaks:
        lines += ["| platform | peak concurrent | at (UTC) |", "| --- | ---: | --- |"]
        lines += [f"| {p.platform} | {p.peak:,} | {_clock(p.at)} |" for p in report.peaks]
        lines += [
            "",
            f"**Total of peaks: {report.total_of_peaks:,}** (each platform's own peak, added:"
            " the platforms peaked at different times).",
        ]
    else:
        lines.append("No listener counts were sampled.")
    if chart:
        lines += ["", f"![Listeners per platform over time]({chart})"]
    lines += ["", "## Outages", ""]
    if report.outages:
        lines += ["| outage | from | to | lasted |", "| --- | --- | --- | ---: |"]
        for w in report.outages:
            text = describe(
                Outage(w.scope, w.platform, frozenset(w.vantages), frozenset(w.cities), w.start)  # type: ignore[arg-type]
            )
            end = "(still open when jalsa stopped)" if w.open else _clock(w.end)
            lines.append(f"| {text} | {_clock(w.start)} | {end} | {_span(w.seconds)} |")
    else:
        lines.append("No outage was flagged.")
    lines += _coverage_markdown(report)
    lines += ["", "## Destinations", ""]
    if report.uptime:
        lines += ["| destination | platform | uptime | live for |", "| --- | --- | ---: | ---: |"]
        lines += [
            f"| {u.destination} | {u.platform} | {u.ratio:.1%} | {_span(u.live_seconds)} |"
            for u in report.uptime
        ]
    else:
        lines.append("No destination was sampled.")
    lines += ["", "## Speakers on air", ""]
    if report.on_air or report.slate_seconds:
        lines += ["| speaker | live | recorded | total |", "| --- | ---: | ---: | ---: |"]
        for s in report.on_air:
            total = s.live_seconds + s.recorded_seconds
            lines.append(
                f"| {s.speaker} | {_span(s.live_seconds)} | {_span(s.recorded_seconds)} "
                f"| {_span(total)} |"
            )
        lines.append(f"| (slate) | | | {_span(report.slate_seconds)} |")
    else:
        lines.append("Nothing was on air.")
    return "\n".join(lines) + "\n"


def _coverage_markdown(report: Report) -> list[str]:
    if not report.coverage:
        return []
    lines = ["", "## Probe coverage", ""]
    lines += ["| vantage | city | ISP | rounds | uploaded late | measuring (UTC) |"]
    lines += ["| --- | --- | --- | ---: | ---: | --- |"]
    for c in report.coverage:
        spans = ", ".join(f"{_clock(a)}–{_clock(b)}" for a, b in c.measuring)
        lines.append(f"| {c.vantage} | {c.city} | {c.isp} | {c.rounds} | {c.late} | {spans} |")
    lines += [
        "",
        "A vantage is evidence only while it was measuring: outside its spans it said nothing.",
        "",
        "### Outages judged again from every round (late uploads included)",
        "",
    ]
    if not report.judged:
        return [*lines, "None."]
    lines += ["| outage | from | to | lasted |", "| --- | --- | --- | ---: |"]
    for w in report.judged:
        text = describe(
            Outage(w.scope, w.platform, frozenset(w.vantages), frozenset(w.cities), w.start)  # type: ignore[arg-type]
        )
        end = "(still present at the last round)" if w.open else _clock(w.end)
        lines.append(f"| {text} | {_clock(w.start)} | {end} | {_span(w.end - w.start)} |")
    return lines


def to_json(report: Report) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    data["start_utc"] = _when(report.start)
    data["end_utc"] = _when(report.end)
    for peak in data["peaks"]:
        peak["at_utc"] = _when(peak["at"])
    for window, w in zip(data["outages"], report.outages, strict=True):
        window["seconds"] = w.seconds
    for entry, u in zip(data["uptime"], report.uptime, strict=True):
        entry["ratio"] = round(u.ratio, 4)
    return data


def write_report(state_dir: Path, out_dir: Path) -> Report:
    """Build the report from ``state_dir/samples`` and write it into ``out_dir``.

    Raises:
        NoSamples: there is nothing to report on.
    """
    report = build_report(read_records(state_dir / "samples"))
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"Listeners per platform: {report.event}" if report.event else "Listeners"
    (out_dir / "listeners.svg").write_text(listeners_svg(report.series, title=title))
    (out_dir / "report.md").write_text(to_markdown(report))
    (out_dir / "report.json").write_text(json.dumps(to_json(report), indent=2) + "\n")
    return report


def report_command(args: argparse.Namespace) -> int:
    """``jalsa report``: exit 0, or 2 when the state dir has no samples."""
    state_dir: Path = args.state
    out_dir: Path = args.out or state_dir / "report"
    try:
        report = write_report(state_dir, out_dir)
    except NoSamples:
        print(
            f"jalsa report: no samples in {state_dir / 'samples'}: run the event with "
            f"--state {state_dir} first",
            file=sys.stderr,
        )
        return 2
    print(to_markdown(report, chart=None), end="")
    print(
        f"\nwritten: {out_dir / 'report.md'}, {out_dir / 'report.json'}, "
        f"{out_dir / 'listeners.svg'}"
    )
    return 0
