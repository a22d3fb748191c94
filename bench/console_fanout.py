"""What 20 consoles on the live channel (``/api/live``) cost jalsa, in % of one core.

One ``jalsa run`` (two test-pattern speakers, the HLS mirror, a small program: the encode
is the same in both phases, so only the channel's cost differs). Phases alternate: no
console, then ``--consoles`` WebSocket clients that each send the token and read every
frame; in both, the rundown is changed every 5 s (an upcoming item's duration), so the
pushes of a rundown change are part of what is measured. jalsa's CPU comes from
``/proc/PID/stat``; each phase's figure is its CPU seconds over its wall seconds, and the
cost is the median of (consoles − the idle phases around it). Exits 1 if it is over the
budget (2 % of a core).

    python bench/console_fanout.py [--consoles 20] [--seconds 20] [--repeats 3] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import _proc_cpu_seconds, free_port, jalsa_argv, log, machine, median, tree, workdir
from benchlib import write_json as save
from websockets.asyncio.client import connect

BUDGET_PERCENT = 2.0
EVENT = """\
[event]
name = "Fan-out"
on_end = "slate"
[program]
width = 320
height = 180
fps = 15
preset = "ultrafast"
[[speakers]]
id = "host"
name = "Host"
source = "testsrc"
[[speakers]]
id = "blue"
name = "Blue"
source = "testsrc"
[[rundown]]
speaker = "host"
duration = "1h"
[[rundown]]
speaker = "blue"
duration = "1h"
[[destinations]]
name = "mirror"
platform = "custom"
url = "hls"
"""


def _call(port: int, token: str, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def _changes(port: int, token: str, stop: asyncio.Event) -> int:
    """Change the rundown every 5 s until ``stop``; how many changes were made."""
    made = 0
    minutes = 60
    while not stop.is_set():
        rundown = await asyncio.to_thread(_call, port, token, "GET", "/api/rundown")
        assert isinstance(rundown, dict)
        minutes = 61 if minutes == 60 else 60
        body = {"version": rundown["version"], "duration": f"{minutes}m"}
        await asyncio.to_thread(_call, port, token, "PATCH", "/api/rundown/items/blue", body)
        made += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5)
    return made


async def _console(port: int, token: str, stop: asyncio.Event, frames: list[int]) -> None:
    async with connect(f"ws://127.0.0.1:{port}/api/live") as ws:
        await ws.send(json.dumps({"token": token}))
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
                frames[0] += 1


async def _phase(
    pid: int, port: int, token: str, consoles: int, seconds: float
) -> dict[str, float]:
    stop = asyncio.Event()
    frames = [0]
    clients = [asyncio.create_task(_console(port, token, stop, frames)) for _ in range(consoles)]
    changes = asyncio.create_task(_changes(port, token, stop))
    await asyncio.sleep(1.0)  # connected and past the first burst of frames
    cpu0, wall0, frames0 = _proc_cpu_seconds(pid), time.monotonic(), frames[0]
    await asyncio.sleep(seconds)
    cpu1, wall1, frames1 = _proc_cpu_seconds(pid), time.monotonic(), frames[0]
    stop.set()
    await asyncio.gather(*clients, changes)
    assert cpu0 is not None and cpu1 is not None, "jalsa exited"
    return {
        "consoles": consoles,
        "cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "frames_per_second": (frames1 - frames0) / (wall1 - wall0),
    }


async def _session(
    pid: int, port: int, token: str, args: argparse.Namespace
) -> list[dict[str, float]]:
    phases = [await _phase(pid, port, token, 0, args.seconds)]
    for _ in range(args.repeats):
        phases.append(await _phase(pid, port, token, args.consoles, args.seconds))
        phases.append(await _phase(pid, port, token, 0, args.seconds))
        idle, busy, after = (p["cpu_percent"] for p in phases[-3:])
        log(f"idle {idle:.1f} %, {args.consoles} consoles {busy:.1f} %, idle {after:.1f} %")
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consoles", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = workdir("jalsa-fanout-")
    event = work / "event.toml"
    event.write_text(EVENT)
    port = free_port()
    started_tree = tree()
    process = subprocess.Popen(
        jalsa_argv(event, work / "state", port),
        stdout=(work / "jalsa.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        token_file = work / "state" / "operator-token"
        deadline = time.monotonic() + 60
        while True:
            try:
                token = token_file.read_text().strip()
                _call(port, token, "GET", "/api/rundown")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        time.sleep(3)  # past the start
        phases = asyncio.run(_session(process.pid, port, token, args))
    finally:
        process.terminate()
        process.wait(20)
    costs = [
        phases[i]["cpu_percent"] - (phases[i - 1]["cpu_percent"] + phases[i + 1]["cpu_percent"]) / 2
        for i in range(1, len(phases), 2)
    ]
    cost = median(costs)
    assert cost is not None
    fps = median([p["frames_per_second"] for p in phases if p["consoles"]])
    print(
        f"{args.consoles} consoles on /api/live: +{cost:.2f} % of a core (median of {len(costs)}; "
        f"each {costs}), {fps:.0f} frames/s sent in all; budget {BUDGET_PERCENT} %"
    )
    path = save(
        "console_fanout",
        {"args": vars(args), "phases": phases, "costs": costs, "cost_percent": cost,
         "machine": machine(), "tree": {"start": started_tree, "end": tree()}},
    )  # fmt: skip
    log(f"results: {path}")
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if cost <= BUDGET_PERCENT else 1


if __name__ == "__main__":
    sys.exit(main())
