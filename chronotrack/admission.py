"""Who may open a connection to the CTP01 port: pure policy, no I/O.

The factory asks ``admit`` in ``buildProtocol``, before the connection's first byte is
read; returning None from ``buildProtocol`` makes Twisted close the socket at once. The
protocol calls ``release`` when an admitted connection ends.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_PENALIZED_ADDRESSES = 10_000  # the oldest penalty is forgotten past this many

EVERYWHERE: tuple[IPNetwork, ...] = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def parse_allow_list(text: str) -> tuple[IPNetwork, ...]:
    """``10.0.0.0/8, 2001:db8::/32, 192.0.2.7``: CIDR ranges or single addresses, IPv4 or IPv6.

    Host bits set in a range (``10.1.2.3/8``) are a ValueError: probably a typo.
    """
    networks = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=True))
        except ValueError as error:
            raise ValueError(f"{part!r} is not a CIDR range or address ({error})") from None
    if not networks:
        raise ValueError("needs at least one CIDR range")
    return tuple(networks)


def address_of(address: IAddress) -> str | None:
    """The peer's IP address text, or None for a non-IP address (a UNIX socket)."""
    if isinstance(address, (IPv4Address, IPv6Address)):
        return address.host
    return None


def _ip(host: str):
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:192.0.2.7 on a dual-stack socket is 192.0.2.7
    return ip


@dataclass(frozen=True)
class AdmissionLimits:
    max_connections: int = 1000
    max_connections_per_address: int = 50
    allow: tuple[IPNetwork, ...] = EVERYWHERE
    garbage_penalty: float = 10.0  # seconds an address is refused after a connection closed for garbage


class AdmissionPolicy:
    """Counts open connections per address and in total, and refuses past the limits."""

    def __init__(self, limits: AdmissionLimits | None = None) -> None:
        self.limits = limits or AdmissionLimits()
        self._penalized: OrderedDict[str, float] = OrderedDict()  # key -> refused until
        self.open_total = 0
        self.open_by_address: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def admit(self, address: IAddress, now: float = 0.0) -> tuple[str | None, str]:
        """(None, key) when admitted (call ``release(key)`` later), else (reason kind, message)."""
        host = address_of(address)
        key = host or "local"
        if host is not None and not self._allowed(host):
            return self._refuse("not_allowed", f"{host} is outside --allow")
        until = self._penalized.get(key)
        if until is not None:
            if now < until:
                return self._refuse("garbage_penalty",
                                    f"{key} sent garbage; refused for {until - now:.0f} s more")
            del self._penalized[key]
        if self.open_total >= self.limits.max_connections:
            return self._refuse("max_connections",
                                f"{self.limits.max_connections} connections already open")
        if self.open_by_address[key] >= self.limits.max_connections_per_address:
            return self._refuse("max_connections_per_address",
                                f"{self.limits.max_connections_per_address} connections already "
                                f"open from {key}")
        self.open_total += 1
        self.open_by_address[key] += 1
        return None, key

    def penalize(self, key: str, now: float) -> None:
        """Refuse the address for a while: its connection was closed for sending garbage.

        A flood that reconnects at once would otherwise cost a new connection's set-up,
        its database rows and its sample of rejected lines, again and again.
        """
        if self.limits.garbage_penalty <= 0 or key == "local":
            return
        self._penalized.pop(key, None)
        self._penalized[key] = now + self.limits.garbage_penalty
        while len(self._penalized) > MAX_PENALIZED_ADDRESSES:
            self._penalized.popitem(last=False)

    def release(self, key: str) -> None:
        self.open_total = max(0, self.open_total - 1)
        self.open_by_address[key] -= 1
        if self.open_by_address[key] <= 0:
            del self.open_by_address[key]

    def _allowed(self, host: str) -> bool:
        if self.limits.allow == EVERYWHERE:
            return True
        ip = _ip(host)
        return ip is not None and any(ip.version == network.version and ip in network
                                      for network in self.limits.allow)

    def _refuse(self, kind: str, message: str) -> tuple[str, str]:
        self.refused[kind] += 1
        return kind, message

    def figures(self) -> dict[str, Any]:
        return {"connections_refused": dict(sorted(self.refused.items())),
                "addresses_connected": len(self.open_by_address)}


def admission_from_config(values: dict[str, Any]) -> AdmissionLimits:
    chosen: dict[str, Any] = {}
    for name in ("max_connections", "max_connections_per_address", "allow", "garbage_penalty"):
        if values.get(name) is not None:
            chosen[name] = values[name]
    return AdmissionLimits(**chosen)


def describe_allow_list(networks: Iterable[IPNetwork]) -> str:
    return ", ".join(str(network) for network in networks)
