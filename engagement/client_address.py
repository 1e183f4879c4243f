"""Which address a request came from: `REMOTE_ADDR`, or X-Forwarded-For behind trusted proxies.

X-Forwarded-For is believed only when the connection itself comes from a proxy
listed in `PULSE_TRUSTED_PROXIES` (IP addresses or CIDR networks). Each proxy
appends the address it saw on the right, so the client is the right-most entry
that is not itself a trusted proxy; anything left of it was written by the
client and may be forged. A malformed entry stops the walk: the last proxy we
reached is answered instead, so a garbled header can never pick an address of
its choosing.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: HttpRequest) -> str | None:
    """The client's address as text, or None when the server did not give one."""
    remote = parse_address(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return None
    networks = trusted_networks(tuple(settings.PULSE_TRUSTED_PROXIES))
    if not _trusted(remote, networks):
        return str(remote)
    return str(_walk_forwarded(remote, request.META.get("HTTP_X_FORWARDED_FOR", ""), networks))


def _walk_forwarded(remote: Address, header: str, networks: tuple[Network, ...]) -> Address:
    nearest = remote
    for entry in reversed(header.split(",") if header.strip() else []):
        address = parse_address(entry)
        if address is None:
            return nearest
        if not _trusted(address, networks):
            return address
        nearest = address
    return nearest


def parse_address(value: str) -> Address | None:
    """An IP address from text, accepting `a.b.c.d:port` and `[v6]:port`; None when not one."""
    text = (value or "").strip()
    if len(text) > 64:
        return None
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse PULSE_TRUSTED_PROXIES once; a bad entry is a configuration error, not a silent skip."""
    networks = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"PULSE_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)
