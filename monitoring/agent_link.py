"""Enrolment links of pushing probe agents, and the signature of what they send.

Sans-I/O: no clock, no files, no sockets. Used by both sides: ``jalsa agents add``
makes a link (:func:`make_link`), ``jalsa probe --join`` reads it (:func:`parse_link`)
and signs each round (:func:`sign_body`), and jalsa checks it (:func:`verify_body`).

A link is ``<base URL>/agents/<id>#g=<generation>&k=<key>&city=…&isp=…&country=…``:

- ``id``: the agent's id, which is also its ``vantage`` label;
- ``generation``: raised when the agent is revoked, so an older link's key is another;
- ``key``: the agent's own HMAC key, :func:`agent_key` of jalsa's secret, the id and the
  generation (jalsa keeps no per-agent key: it derives it again to check);
- the labels the agent reports with (jalsa checks them against its registry).

The fragment is never sent in a request: the agent only parses the link.

A round is sent as ``POST <base URL>/agents/<id>/rounds`` with a JSON body and the
header ``X-Jalsa-Signature: v1=<base64url HMAC-SHA-256 of the domain and the body>``.
The body carries the agent id, the generation, a per-agent sequence number (the replay
guard) and the agent's clock when sending (the clock-skew measure), so the signature
covers all of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from orchestrator.event.monitoring_spec import LABEL_PATTERN
from orchestrator.event.secret import Secret

AGENT_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
COUNTRY: Final = re.compile(r"[A-Z]{2}|")
SIGNATURE_HEADER: Final = "X-Jalsa-Signature"
_KEY_DOMAIN: Final = b"jalsa-agent-key/1|"
_BODY_DOMAIN: Final = b"jalsa-round/1\n"
_KEY: Final = re.compile(r"[A-Za-z0-9_-]{43}")


class LinkError(ValueError):
    """Not an agent link (the message says what is wrong, never the key)."""


@dataclass(frozen=True, slots=True)
class AgentLink:
    """What a volunteer's link holds."""

    base_url: str
    agent: str
    generation: int
    key: Secret
    city: str
    isp: str
    country: str = ""

    @property
    def rounds_url(self) -> str:
        return f"{self.base_url}/agents/{self.agent}/rounds"


def agent_key(secret: bytes, agent: str, generation: int) -> bytes:
    """The agent's HMAC key (32 bytes), derived from jalsa's secret."""
    message = _KEY_DOMAIN + agent.encode() + b"|" + str(generation).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_link(
    base_url: str, agent: str, generation: int, key: bytes, city: str, isp: str, country: str = ""
) -> str:
    fragment = urlencode(
        {"g": generation, "k": _b64(key), "city": city, "isp": isp, "country": country},
        quote_via=quote,
    )
    return f"{base_url.rstrip('/')}/agents/{agent}#{fragment}"


def parse_link(link: str) -> AgentLink:
    """Raises:
    LinkError: not a link made by ``jalsa agents add``.
    """
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        raise LinkError("not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError("the link must start with https:// (or http://)")
    head, _, agent = parts.path.rstrip("/").rpartition("/agents/")
    if not AGENT_ID.fullmatch(agent):
        raise LinkError("the link has no agent id (…/agents/<id>#…)")
    fields = {k: v[0] for k, v in parse_qs(parts.fragment, keep_blank_values=True).items()}
    generation, key = fields.get("g", ""), fields.get("k", "")
    city, isp, country = fields.get("city", ""), fields.get("isp", ""), fields.get("country", "")
    if not generation.isdigit() or not _KEY.fullmatch(key):
        raise LinkError("the link is cut short: copy all of it, including what follows '#'")
    if not (LABEL_PATTERN.fullmatch(city) and LABEL_PATTERN.fullmatch(isp)):
        raise LinkError("the link's city or ISP is not a valid label")
    if not COUNTRY.fullmatch(country):
        raise LinkError("the link's country is not a two-letter code")
    key_bytes = base64.urlsafe_b64decode(key + "=")
    base = f"{parts.scheme}://{parts.netloc}{head}"
    return AgentLink(base, agent, int(generation), Secret(key_bytes.hex()), city, isp, country)


def body_signature(key: bytes, body: bytes) -> str:
    """The ``X-Jalsa-Signature`` value of ``body`` under the agent's key."""
    return "v1=" + _b64(hmac.new(key, _BODY_DOMAIN + body, hashlib.sha256).digest())


def sign_body(link: AgentLink, body: bytes) -> str:
    return body_signature(bytes.fromhex(link.key.reveal()), body)


def verify_body(key: bytes, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is ``body``'s under ``key`` (constant time)."""
    return hmac.compare_digest(body_signature(key, body).encode(), signature.encode())
