"""Where a delivery may go (docs/webhooks.md, "Safety").

In production an endpoint must be `https`, and every address its host resolves to must be
public: no private, loopback, link-local, multicast, reserved or unspecified address. The
check runs on the addresses DNS gives at the time of the attempt, and the attempt then
connects to the address checked (never resolving again), so a name that answers a public
address to the check and a private one to the connection (DNS rebinding) gets nowhere.
Outside production (dev, test) plain http and local receivers are allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (tests inject one; production asks the system).
Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(ValueError):
    """The URL may not be delivered to (the reason is shown in the delivery log)."""


@dataclass(frozen=True)
class Target:
    """A URL pinned to one checked address: the request goes to `address`, with the URL's
    host in `Host` and (for https) in the TLS server name, so the certificate is checked
    against the name."""

    url: str
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        parts = urlsplit(self.url)
        return parts.netloc.rsplit("@", 1)[-1]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


def is_public(address: IpAddress) -> bool:
    """Reachable on the public internet: not private, loopback, link-local, multicast,
    reserved, unspecified or shared (CGNAT); an IPv4-mapped IPv6 address is judged as the
    IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def check_url(url: str, *, production: bool) -> tuple[str, int]:
    """The URL's host and port, if its form is allowed (the scheme; a literal address);
    raises TargetRefused otherwise. Names are judged after resolution (`resolve`)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise TargetRefused("the URL does not parse") from None
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed:
        raise TargetRefused(f"the URL must be {' or '.join(allowed)}")
    if not hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("the URL may not carry a user or password")
    if parts.fragment:
        raise TargetRefused("the URL may not carry a fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the URL's port is not a number from 0 to 65535") from None
    if production:
        try:
            literal = ipaddress.ip_address(hostname)
        except ValueError:
            literal = None
        if literal is not None and not is_public(literal):
            raise TargetRefused("the URL points at a private, loopback or link-local address")
        if hostname.lower() == "localhost" or hostname.lower().endswith(".localhost"):
            raise TargetRefused("the URL points at a loopback address")
    return hostname, port


async def resolve(url: str, resolver: Resolver, *, production: bool) -> Target:
    """The target to connect to: the URL's host resolved, every address checked (one
    private address refuses the whole name, as a rebinding name may answer either), and
    the first address pinned."""
    host, port = check_url(url, production=production)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            answers = await resolver(host, port)
        except OSError as error:
            raise TargetRefused(f"the host did not resolve: {error}") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
    if not addresses:
        raise TargetRefused("the host did not resolve")
    if production and not all(is_public(a) for a in addresses):
        raise TargetRefused("the host resolves to a private, loopback or link-local address")
    return Target(url=url, host=host, address=str(addresses[0]))
