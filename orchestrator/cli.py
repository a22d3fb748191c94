"""The ``jalsa`` command line.

Each command imports what it needs when it runs: ``jalsa probe`` (a volunteer's agent)
and ``jalsa report`` load no media stack (PyAV, numpy, PIL), ``jalsa check`` only the
event model.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from orchestrator.event import Event, EventError, load_event
from orchestrator.event.address import Address
from orchestrator.event.demo import demo_event
from orchestrator.event.duration import format_duration
from orchestrator.event.secret import SecretError

EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jalsa",
        description="Run a virtual rally: many speakers, one program, every platform.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run an event (no file: the built-in demo)")
    run.add_argument("event", nargs="?", type=Path, help="event file (TOML)")
    run.add_argument(
        "--http",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="console, API, HLS mirror (default 127.0.0.1:8080)",
    )
    run.add_argument(
        "--metrics",
        default="127.0.0.1:9108",
        metavar="HOST:PORT",
        help="Prometheus /metrics (default 127.0.0.1:9108)",
    )
    run.add_argument(
        "--state",
        default=Path("jalsa-state"),
        type=Path,
        metavar="DIR",
        help="state directory (default ./jalsa-state)",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="start the rundown over instead of resuming it from the state directory's "
        "journal (the old journal is kept, moved aside)",
    )

    check = commands.add_parser("check", help="validate an event file (exit 2 on errors)")
    check.add_argument("event", type=Path, help="event file (TOML)")

    links = commands.add_parser("links", help="print each live speaker's join link")
    links.add_argument("event", type=Path, help="event file (TOML)")
    links.add_argument(
        "--base-url", required=True, metavar="URL", help="where speakers reach jalsa (https://...)"
    )
    links.add_argument(
        "--state",
        default=Path("jalsa-state"),
        type=Path,
        metavar="DIR",
        help="state directory holding the link secret (default ./jalsa-state)",
    )
    links.add_argument(
        "--expires-in",
        metavar="DURATION",
        help='how long the links work, like "26h" (default: the rundown\'s end + 1h)',
    )
    links.add_argument(
        "--revoke",
        action="append",
        default=[],
        metavar="ID",
        help="revoke this speaker's earlier links first (repeatable)",
    )

    probe = commands.add_parser("probe", help="a probe agent for one vantage point (city, ISP)")
    probe.add_argument("--vantage", metavar="NAME", help='e.g. "lahore-1" (not with --join)')
    probe.add_argument("--city", metavar="CITY", help='e.g. "Lahore" (not with --join)')
    probe.add_argument("--isp", metavar="ISP", help='e.g. "PTCL" (not with --join)')
    from monitoring.agents_command import add_agents_parser, add_push_arguments  # stdlib only
    from orchestrator.edge.command import add_edge_parser  # stdlib only

    add_edge_parser(commands)

    add_push_arguments(probe)  # --join LINK: push rounds to jalsa instead of serving /metrics
    probe.add_argument(
        "--metrics",
        default="127.0.0.1:9109",
        metavar="HOST:PORT",
        help="serve /metrics here (default 127.0.0.1:9109; 0.0.0.0:9109 for a remote Prometheus)",
    )
    probe.add_argument(
        "--targets", type=Path, metavar="FILE", help="targets file (default: built-in targets)"
    )
    probe.add_argument(
        "--interval", type=float, default=30.0, metavar="SECONDS", help="between rounds (30)"
    )
    probe.add_argument(
        "--control-resolver",
        metavar="IP[:PORT]",
        help='resolver asked directly beside the system one (default 1.1.1.1; "" for none)',
    )
    probe.add_argument(
        "--timeout", type=float, default=5.0, metavar="SECONDS", help="per check (default 5)"
    )
    probe.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="require Authorization: Bearer <the token in FILE> on /metrics "
        "(default: $JALSA_AGENT_TOKEN; neither: no token)",
    )
    probe.add_argument("--once", action="store_true", help="run one round, print it, exit")

    add_agents_parser(commands)  # jalsa agents add|list|revoke

    report = commands.add_parser("report", help="post-event figures from the state dir")
    report.add_argument(
        "--state",
        default=Path("jalsa-state"),
        type=Path,
        metavar="DIR",
        help="state directory (default ./jalsa-state)",
    )
    report.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write it (default <state>/report)"
    )
    return parser


def _load(path: Path) -> Event | None:
    try:
        return load_event(path)
    except EventError as error:
        print(error, file=sys.stderr)
        count = len(error.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found.", file=sys.stderr)
        return None


def _check(path: Path) -> int:
    event = _load(path)
    if event is None:
        return EXIT_INVALID
    if event.monitoring.targets is not None:  # [monitoring] targets: a file of its own
        from monitoring.targets import load_targets

        try:
            load_targets(event.monitoring.targets)
        except EventError as error:
            print(f"{error}\n(from [monitoring] targets in {path})", file=sys.stderr)
            return EXIT_INVALID
    total = sum(segment.duration for segment in event.rundown)
    print(
        f"{path}: ok — {event.info.name!r}: {len(event.speakers)} speakers, "
        f"{len(event.rundown)} rundown items ({format_duration(total)}), "
        f"{len(event.destinations)} destinations"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        http, metrics = Address.parse(args.http), Address.parse(args.metrics)
    except ValueError as error:
        print(f"jalsa run: {error}", file=sys.stderr)
        return EXIT_INVALID
    state_dir: Path = args.state
    loop_rundown = args.event is None
    event = demo_event(state_dir) if loop_rundown else _load(args.event)
    if event is None:
        return EXIT_INVALID
    from orchestrator.rundown_control import ResumeError
    from orchestrator.service import serve

    try:
        return asyncio.run(
            serve(
                event,
                http=http,
                metrics=metrics,
                state_dir=state_dir,
                loop_rundown=loop_rundown,
                fresh=args.fresh,
                event_file=args.event,
            )
        )
    # EventError: a bad [monitoring] targets file; ResumeError: a journal that cannot resume
    except (SecretError, EventError, ResumeError) as error:
        print(f"jalsa run: {error}", file=sys.stderr)
        return EXIT_INVALID


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "check":
        return _check(args.event)
    if args.command == "links":
        from orchestrator.speakers.link_command import print_links

        event = _load(args.event)
        return EXIT_INVALID if event is None else print_links(event, args)
    if args.command == "probe":
        from monitoring.probe_agent import probe_command

        return probe_command(args)
    if args.command == "agents":
        from monitoring.agents_command import agents_command

        return agents_command(args)
    if args.command == "report":
        from monitoring.report import report_command

        return report_command(args)
    # The long-running commands: their threads come and go for hours (see the module).
    from orchestrator.malloc_arenas import limit_malloc_arenas

    limit_malloc_arenas()
    if args.command == "edge":
        from orchestrator.edge.command import edge_command

        return edge_command(args)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
