"""``jalsa edge EDGE_FILE``: the command's arguments (stdlib only) and its entry point.

The media and web stacks are imported only when the command runs, so that registering
it costs the other commands nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from orchestrator.event import EventError
from orchestrator.event.address import Address
from orchestrator.event.edge_spec import load_edge_file

EXIT_INVALID = 2


def add_edge_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = commands.add_parser(
        "edge", help="a cloud edge: take one studio's contribution, fan it out"
    )
    edge.add_argument("edge_file", type=Path, metavar="EDGE_FILE", help="edge file (TOML)")
    edge.add_argument(
        "--listen",
        default="127.0.0.1:8443",
        metavar="HOST:PORT",
        help="contribution route and /healthz (default 127.0.0.1:8443)",
    )
    edge.add_argument(
        "--metrics",
        default="127.0.0.1:9110",
        metavar="HOST:PORT",
        help="Prometheus /metrics (default 127.0.0.1:9110)",
    )
    edge.add_argument(
        "--state",
        default=Path("jalsa-edge-state"),
        type=Path,
        metavar="DIR",
        help="state directory: recordings, HLS (default ./jalsa-edge-state)",
    )


def edge_command(args: argparse.Namespace) -> int:
    try:
        listen, metrics = Address.parse(args.listen), Address.parse(args.metrics)
    except ValueError as error:
        print(f"jalsa edge: {error}", file=sys.stderr)
        return EXIT_INVALID
    try:
        edge = load_edge_file(args.edge_file)
    except EventError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    from orchestrator.edge.server import serve_edge  # the media and web stacks

    args.state.mkdir(parents=True, exist_ok=True)
    return asyncio.run(serve_edge(edge, listen=listen, metrics=metrics, state_dir=args.state))
