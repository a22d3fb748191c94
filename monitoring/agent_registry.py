"""The enrolled probe agents: ``<state dir>/agents.json``, changed by ``jalsa agents``.

``{"agents": {"<id>": {"city", "isp", "country", "generation", "revoked", "created"}}}``.
An agent's key is derived from jalsa's secret (``JALSA_SECRET`` or ``<state dir>/secret``,
the one speaker links use, under a domain of its own: :func:`monitoring.agent_link.agent_key`),
so the file holds no key. Revoking marks the agent revoked; enrolling the id again raises
its generation, so every older link stays dead. Changes are made under ``flock`` and
replaced atomically, so ``jalsa agents revoke`` beside a running jalsa loses nothing; a
running jalsa re-reads the file when it changes (:meth:`AgentRegistry.refresh`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from monitoring.agent_link import agent_key
from orchestrator.event.durable import replace_atomically
from orchestrator.event.secret import SecretError, private_dir, stored_secret

AGENTS_FILE: Final = "agents.json"
LOCK_FILE: Final = "agents.lock"
SECRET_FILE: Final = "secret"  # shared with speaker links (orchestrator/speakers/links.py)
SECRET_ENV: Final = "JALSA_SECRET"


@dataclass(frozen=True, slots=True)
class EnrolledAgent:
    id: str
    city: str
    isp: str
    country: str
    generation: int
    revoked: bool
    created: float


class RegistryUnreadable(ValueError):
    """agents.json does not parse: no agent is trusted until it is repaired (deleting it
    would forget revocations)."""


def read_agents(state_dir: Path) -> dict[str, EnrolledAgent]:
    """Raises:
    RegistryUnreadable: the file exists but is not a registry.
    """
    path = state_dir / AGENTS_FILE
    try:
        data = json.loads(path.read_bytes())
        table = data["agents"]
        return {
            k: EnrolledAgent(
                k,
                str(v["city"]),
                str(v["isp"]),
                str(v.get("country", "")),
                int(v["generation"]),
                bool(v["revoked"]),
                float(v.get("created", 0.0)),
            )
            for k, v in table.items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise RegistryUnreadable(
            f"{path} cannot be read ({error}): no agent is trusted until it is repaired "
            "(do not delete it: revoked agents would work again)"
        ) from None


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    fd = os.open(private_dir(state_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(state_dir: Path, agents: Mapping[str, EnrolledAgent]) -> None:
    table = {k: {f: v for f, v in asdict(a).items() if f != "id"} for k, a in agents.items()}
    text = json.dumps({"agents": table}, indent=2, sort_keys=True) + "\n"
    replace_atomically(state_dir / AGENTS_FILE, text.encode())


def enrol(state_dir: Path, agent: str, city: str, isp: str, country: str = "") -> EnrolledAgent:
    """Enrol ``agent`` (again: a new generation, the older links revoked)."""
    with _locked(state_dir):
        agents = read_agents(state_dir)
        old = agents.get(agent)
        generation = 0 if old is None else old.generation + 1
        agents[agent] = EnrolledAgent(agent, city, isp, country, generation, False, time.time())
        _write(state_dir, agents)
    return agents[agent]


def revoke(state_dir: Path, agent: str) -> EnrolledAgent:
    """Raises:
    KeyError: no such agent.
    """
    with _locked(state_dir):
        agents = read_agents(state_dir)
        old = agents[agent]
        agents[agent] = EnrolledAgent(
            old.id, old.city, old.isp, old.country, old.generation, True, old.created
        )
        _write(state_dir, agents)
    return agents[agent]


def load_agent_secret(state_dir: Path, env: Mapping[str, str] | None = None) -> bytes:
    secret, _ = stored_secret(state_dir, SECRET_FILE, SECRET_ENV, env)
    return secret.reveal().encode()


class AgentRegistry:
    """The registry as a running jalsa sees it: agents, and their keys derived once.

    The secret is read only once an agent is enrolled, so a jalsa without agents needs
    none; a secret that cannot be read makes the registry unavailable (nobody trusted)."""

    def __init__(self, state_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self._env = env
        self._secret = b""
        self.agents: dict[str, EnrolledAgent] = {}
        self.problem: str | None = None
        self._keys: dict[tuple[str, int], bytes] = {}
        self._seen: tuple[int, int, int] | None = None
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the file if it changed (blocking: call it from a thread)."""
        path = self.state_dir / AGENTS_FILE
        try:
            info = path.stat()
            seen: tuple[int, int, int] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except FileNotFoundError:
            seen = None
        if seen == self._seen and not force:
            return
        try:
            self.agents = read_agents(self.state_dir)
            self.problem = None
            if self.agents and not self._secret:
                self._secret = load_agent_secret(self.state_dir, self._env)
        except (RegistryUnreadable, SecretError) as error:
            self.agents, self.problem = {}, str(error)
        self._seen = seen

    def key(self, agent: str, generation: int) -> bytes:
        found = self._keys.get((agent, generation))
        if found is None:
            found = self._keys[agent, generation] = agent_key(self._secret, agent, generation)
        return found
