"""A pushing agent's data on the wire, per round, at local stand-ins (tests/probe_budget_run.py
in a network namespace of its own: every loopback frame counted, headers included).

What holds: the http check is a HEAD (no page body), TLS sessions are resumed after the
first round (no certificate chain), a download asks for 64 KB (``Range``) and runs in one
round of ``--throughput-every`` (20), every round is delivered. And the issue's budget,
under 1 MB an hour while the platforms are reachable: that is when the agent measures at
its calm cadence (``--calm-interval``, 240 s). At the fast cadence (30 s, any failure) it
spends more, and is meant to: that is the moment the measurements are for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.agents_command import CALM_INTERVAL
from monitoring.probe_agent import PUSH_DOWNLOAD_BYTES
from monitoring.targets import DEFAULT_TARGETS

RUN = Path(__file__).resolve().parent.parent / "probe_budget_run.py"
DEFAULT_INTERVAL = 30.0
EVERY = 20  # jalsa probe --join's default --throughput-every


def test_bytes_per_round_of_a_pushing_agent_with_the_default_targets() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("a network namespace of its own needs root, unshare and iproute2")
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(RUN), "--rounds", str(EVERY),
         "--throughput-every", str(EVERY)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["delivered"] == EVERY  # every round measured reached jalsa
    # every stand-in answers: calm from the third round (the cadence the budget is for)
    assert found["next_in"] == [DEFAULT_INTERVAL] * 2 + [CALM_INTERVAL] * (EVERY - 2), found
    light, heavy = found["bytes_light_round_mean"], found["bytes_throughput_round_mean"]
    handshakes = sum(t.scheme in ("https", "tls") for t in DEFAULT_TARGETS.targets)
    assert handshakes == 12
    # No download: one resumed TLS handshake per target (a full one is ~2.9 KB with the
    # stand-in's small certificate), a HEAD where the target is https, a control query,
    # one delivery.
    assert light < handshakes * 2_500, found
    downloads = sum(t.download is not None for t in DEFAULT_TARGETS.targets)
    # The download round: each download ranged to 64 KB (was up to 2 MB each, every round)
    assert heavy - light < downloads * (PUSH_DOWNLOAD_BYTES + 6_000), found
    per_round = (light * (EVERY - 1) + heavy) / EVERY
    calm, fast = per_round * 3600 / CALM_INTERVAL, per_round * 3600 / DEFAULT_INTERVAL
    print(
        f"per round: {light / 1000:.1f} KB, {heavy / 1000:.1f} KB with downloads; "
        f"delivery {found['bytes_per_delivery'][1] / 1000:.1f} KB; an hour: "
        f"{calm / 1e6:.2f} MB calm ({CALM_INTERVAL:g} s), {fast / 1e6:.2f} MB fast (30 s)"
    )
    assert calm < 1e6  # the budget while the platforms are reachable
