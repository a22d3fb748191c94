"""``HOST:PORT``, as the command line takes it (``--http``, ``--metrics``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """``HOST:PORT`` (``[::1]:8080`` for IPv6).

        Raises:
            ValueError: not HOST:PORT, or the port is not 0..65535.
        """
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
        return cls(host.strip("[]"), int(port))

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"
