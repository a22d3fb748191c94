"""``jalsa agents add|list|revoke``: enrol the volunteers' pushing probe agents.

``add`` prints one line, the link to send the volunteer (it holds the agent's key: send
it privately); ``list`` shows each agent without its key; ``revoke`` ends an agent's
link at once (a running jalsa re-reads the registry within seconds).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from monitoring.agent_link import AGENT_ID, COUNTRY, make_link
from monitoring.agent_registry import (
    RegistryUnreadable,
    enrol,
    load_agent_secret,
    read_agents,
    revoke,
)
from orchestrator.event.monitoring_spec import LABEL_PATTERN
from orchestrator.event.secret import SecretError


def add_agents_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agents = commands.add_parser("agents", help="enrol, list and revoke pushing probe agents")
    actions = agents.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="enrol an agent; prints the link to send its volunteer")
    add.add_argument("--vantage", required=True, metavar="ID", help='the agent\'s id, "lahore-1"')
    add.add_argument("--city", required=True, metavar="CITY")
    add.add_argument("--isp", required=True, metavar="ISP")
    add.add_argument("--country", default="", metavar="CC", help='two letters, e.g. "PK"')
    add.add_argument(
        "--base-url", required=True, metavar="URL", help="where agents reach jalsa (https://...)"
    )
    listing = actions.add_parser("list", help="the enrolled agents (no keys)")
    gone = actions.add_parser("revoke", help="end an agent's link now")
    gone.add_argument("vantage", metavar="ID")
    for parser in (add, listing, gone):
        parser.add_argument("--state", default="jalsa-state", metavar="DIR", help="(./jalsa-state)")


CALM_INTERVAL = 240.0  # a volunteer's 1 MB an hour: docs/monitoring.md, "Data"


def add_push_arguments(probe: argparse.ArgumentParser) -> None:
    """``jalsa probe``'s push mode: the link, where the backlog is kept, the context."""
    probe.add_argument(
        "--join",
        metavar="LINK",
        help="the link from `jalsa agents add`: push each round to jalsa (no open port)",
    )
    probe.add_argument(
        "--backlog",
        metavar="DIR",
        help="with --join: rounds not yet delivered are kept here, 24 h at most "
        "(default ~/.local/state/jalsa-probe/<id>)",
    )
    probe.add_argument(
        "--network",
        choices=("mobile", "fixed", "unknown"),
        default="unknown",
        help="with --join: what kind of link this machine is on, as you know it",
    )
    probe.add_argument(
        "--asn", type=int, metavar="N", help="with --join: your public IP's AS number, if known"
    )
    probe.add_argument(
        "--calm-interval",
        type=float,
        default=CALM_INTERVAL,
        metavar="SECONDS",
        help="with --join: between rounds once every check has passed 3 rounds in a row "
        f"(default {CALM_INTERVAL:g}; any failure: back to --interval; --interval or less: off)",
    )
    probe.add_argument(
        "--throughput-every",
        type=int,
        default=20,
        metavar="N",
        help="with --join: download (64 KB per target, for throughput) in one round of N "
        "(default 20: every 10 minutes at the default interval; the data budget)",
    )


def agents_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    state = Path(args.state)

    def fail(message: str) -> int:
        print(f"jalsa agents {args.action}: {message}", file=sys.stderr)
        return 2

    try:
        if args.action == "add":
            if not AGENT_ID.fullmatch(args.vantage):
                return fail("--vantage: 1-40 of a-z, 0-9, _ and -, starting with a letter or digit")
            for name in ("city", "isp"):
                if not LABEL_PATTERN.fullmatch(getattr(args, name)):
                    return fail(f"--{name}: use 1-40 letters, digits, spaces, . _ and -")
            if not COUNTRY.fullmatch(args.country):
                return fail("--country: two capital letters (ISO 3166), e.g. PK")
            if not args.base_url.startswith(("https://", "http://")):
                return fail("--base-url must start with https:// (or http:// on a test network)")
            secret = load_agent_secret(state)
            agent = enrol(state, args.vantage, args.city, args.isp, args.country)
            from monitoring.agent_link import agent_key

            key = agent_key(secret, agent.id, agent.generation)
            print(
                make_link(
                    args.base_url, agent.id, agent.generation, key, agent.city, agent.isp,
                    agent.country,
                )
            )  # fmt: skip
            if agent.generation:
                print(f"(earlier links of {agent.id} no longer work)", file=sys.stderr)
            return 0
        if args.action == "revoke":
            try:
                revoke(state, args.vantage)
            except KeyError:
                return fail(f"no agent {args.vantage!r} in {state}")
            print(f"{args.vantage}: revoked")
            return 0
        for a in sorted(read_agents(state).values(), key=lambda a: a.id):
            made = datetime.fromtimestamp(a.created, UTC).strftime("%Y-%m-%d %H:%M UTC")
            status = "revoked" if a.revoked else "active"
            fields = (a.id, a.city, a.isp, a.country or "-", status, f"g{a.generation}", made)
            print("\t".join(fields))
        return 0
    except (SecretError, RegistryUnreadable) as error:
        return fail(str(error))
