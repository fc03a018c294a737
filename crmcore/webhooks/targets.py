"""Which URLs a webhook may be sent to: public http(s) hosts, or hosts the admin allow-listed.

A webhook is a request the server makes on an admin's say-so, so a target inside the network
(the cloud metadata service at 169.254.169.254, the database host, localhost) would let anyone
who can add a subscription reach what only the server can reach (SSRF). The rule is checked
twice: when a subscription is added (the URL as written) and at every delivery, after DNS
resolution; the delivery then connects to the address that was checked (the host name is kept
in ``Host`` and in TLS SNI), so a name that resolves elsewhere a second later (DNS rebinding)
cannot slip through.

Configured in ``crm.toml``::

    [webhooks]
    allow_hosts = ["127.0.0.1", "hooks.internal", "10.20.0.0/16"]   # names, addresses, networks
"""
from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crmcore.errors import ConfigError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2000
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
Resolver = Callable[[str, int], Sequence[str]]


class WebhookSettings(BaseModel):
    """``[webhooks]`` in crm.toml."""

    model_config = ConfigDict(extra="forbid")

    allow_hosts: list[str] = Field(default_factory=list, max_length=1000,
                                   description="host names, IP addresses or networks that may be targets though not public")

    @field_validator("allow_hosts")
    @classmethod
    def _entries(cls, v: list[str]) -> list[str]:
        for entry in v:
            if _network(entry) is None and _hostname(entry.strip().lower().rstrip(".")) is None:
                raise ValueError(f"{entry!r} is neither a host name nor an IP address or network")
        return v


@dataclass(frozen=True)
class Policy:
    """The allow-list, parsed: exact host names, and networks (an address is a /32 or /128)."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def allows_name(self, host: str) -> bool:
        return host in self.names

    def allows_address(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)


def policy(config: Mapping[str, Any] | None) -> Policy:
    """The policy of a CRM's ``[webhooks]`` table; a bad table is one :class:`ConfigError` line."""
    table = (config or {}).get("webhooks", {})
    if not isinstance(table, Mapping):
        raise ConfigError("crm.toml [webhooks] must be a table, e.g. allow_hosts = [\"127.0.0.1\"]")
    try:
        s = WebhookSettings.model_validate(table)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"crm.toml [webhooks] {loc}: {err['msg'].removeprefix('Value error, ')}") from None
    names = {_hostname(e.strip().lower().rstrip(".")) for e in s.allow_hosts if _network(e) is None}
    return Policy(frozenset(n for n in names if n), tuple(n for n in (_network(e) for e in s.allow_hosts) if n is not None))


def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry.strip().strip("[]"), strict=False)
    except ValueError:
        return None


def _hostname(host: str) -> str | None:
    """``host`` as an ASCII DNS name (IDNA for Unicode names), or None when it is not one."""
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    labels = ascii_host.split(".")
    if not 1 <= len(ascii_host) <= 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return ascii_host


def _legacy_ipv4(host: str) -> IPAddress | None:
    """``2130706433``, ``0x7f.1``, ``127.1``: forms that resolvers read as IPv4 addresses."""
    last = host.rsplit(".", 1)[-1]
    if not (host.isascii() and (last.isdigit() or last.startswith("0x"))):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        raise InvalidInput(f"invalid webhook URL: {host!r} is not a host name or an IP address") from None


def is_public(ip: IPAddress) -> bool:
    """Reachable on the public internet: not private, loopback, link-local, reserved or multicast."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:  # an IPv4 address inside an IPv6 one is judged as that IPv4 address
            return is_public(embedded)
    return ip.is_global and not ip.is_multicast


def _refuse(what: str) -> InvalidInput:
    return InvalidInput(f"invalid webhook URL: {what}; name it in crm.toml [webhooks] allow_hosts to allow it")


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL:
        raise InvalidInput(f"invalid webhook URL: must be an http(s) URL of at most {MAX_URL} characters")
    bad = next((ch for ch in url if unicodedata.category(ch)[0] in "CZ" or ch == "\\"), None)
    if bad is not None:
        raise InvalidInput(f"invalid webhook URL: contains {bad!r} (control characters, spaces and backslashes are refused)")
    try:
        parts = urlsplit(url)
        if parts.port == 0:  # raises ValueError for a port that is not a number in range
            raise ValueError("port 0")
    except ValueError as e:
        raise InvalidInput(f"invalid webhook URL: {e}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"invalid webhook URL: must be an http(s) URL, got {url[:60]!r}")
    if "@" in parts.netloc:
        raise InvalidInput("invalid webhook URL: user names and passwords in the URL are refused (use the signature)")
    if not parts.hostname:
        raise InvalidInput(f"invalid webhook URL: no host in {url[:60]!r}")
    return parts


def check_url(url: str, allow: Policy) -> str:
    """``url`` if it may be a webhook target as written (before DNS), else one InvalidInput line.

    A literal address must be public or allow-listed; a name must be a valid DNS name, and
    ``localhost`` and its sub-names count as loopback. The address a name resolves to is
    checked at each delivery (:func:`pin`).
    """
    host, ip = _host(_split(url))
    if allow.allows_name(host):
        return url
    if ip is not None:
        if not (is_public(ip) or allow.allows_address(ip)):
            raise _refuse(f"{ip} is not a public address")
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise _refuse(f"{host} is a loopback name")
    return url


def _host(parts: SplitResult) -> tuple[str, IPAddress | None]:
    """The URL's host as an ASCII name or an address, and the address when it is one.

    A Unicode name is judged by its ASCII (IDNA) form, which is what a resolver is asked:
    ``１２７.０.０.１`` in full-width digits is the address 127.0.0.1.
    """
    raw = (parts.hostname or "").rstrip(".")
    ip = _literal(raw)
    if ip is None:
        name = _hostname(raw)
        if name is None:
            raise InvalidInput(f"invalid webhook URL: {raw[:80]!r} is not a host name or an IP address")
        ip = _literal(name)
        if ip is None:
            return name, None
    return str(ip), ip


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _legacy_ipv4(host)


@dataclass(frozen=True)
class Target:
    """Where a delivery connects: the checked address, with the URL's host for ``Host`` and TLS SNI."""

    url: str  # the URL as subscribed
    address: str  # the IP address the request connects to
    host: str  # the URL's host name (for Host and SNI)


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def pin(url: str, allow: Policy, resolve: Resolver | None = None) -> Target:
    """Check ``url`` again and resolve its host: every address must be public or allow-listed.

    Raises InvalidInput for a refused target and OSError when the name does not resolve.
    """
    check_url(url, allow)
    parts = _split(url)
    host, literal = _host(parts)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    if literal is not None:
        return Target(url, str(literal), host)
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in (resolve or _system_resolver)(host, port)]
    if not addresses:
        raise OSError(f"{host} has no address")
    if not allow.allows_name(host):
        for ip in addresses:
            if not (is_public(ip) or allow.allows_address(ip)):
                raise _refuse(f"{host} resolves to {ip}, which is not a public address")
    return Target(url, str(addresses[0]), host)
