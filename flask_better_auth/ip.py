"""Client IP addresses as Better Auth reads them: forwarded headers, trusted proxies, IPv6 subnets.

Pure functions over header values (Better Auth's ``core/utils/ip.ts``); :func:`context.client_ip`
and the rate limiter put them to use on the request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.datastructures import Headers

from .config import ConfigError, Keys, as_int, as_list

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The keys of Better Auth's ``advanced.ipAddress`` (and the proxies whose headers are believed).
KEYS = Keys(
    {
        "IP_ADDRESS_HEADERS": ["x-forwarded-for"],
        "DISABLE_IP_TRACKING": False,
        "TRUSTED_PROXIES": [],
        "IPV6_SUBNET": 64,
    },
    owner="ip",
)


def parse_address(text: str) -> Address | None:
    """A valid IP address, IPv4-mapped IPv6 turned into IPv4; ``None`` for anything else."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:  # "fe80::1%eth0" is no client address
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def _parse_network(entry: str) -> Network | None:
    address, slash, prefix = entry.strip().partition("/")
    host = parse_address(address)
    if host is None or (slash and not prefix.isdigit()):
        return None
    try:
        return ipaddress.ip_network(f"{host}/{prefix or host.max_prefixlen}", strict=False)
    except ValueError:  # a prefix longer than the address family allows
        return None


def trusted_proxies(value: Any) -> tuple[Network, ...]:
    """Read ``BETTER_AUTH_TRUSTED_PROXIES``: IP addresses and CIDR ranges.

    :raises ConfigError: an entry is neither (Better Auth drops such entries; a typo here would
        silently make a proxy's address pass for the client's).
    """
    entries = as_list("BETTER_AUTH_TRUSTED_PROXIES", value)
    networks = [_parse_network(entry) for entry in entries]
    invalid = [entry for entry, net in zip(entries, networks, strict=True) if net is None]
    if invalid:
        raise ConfigError(
            f"BETTER_AUTH_TRUSTED_PROXIES has entries that are not IP addresses or CIDR ranges:"
            f" {invalid}."
        )
    return tuple(net for net in networks if net is not None)


def ipv6_subnet(value: Any) -> int:
    """Read ``BETTER_AUTH_IPV6_SUBNET``: a prefix length from 0 to 128."""
    subnet = as_int("BETTER_AUTH_IPV6_SUBNET", value)
    if not 0 <= subnet <= 128:
        raise ConfigError(f"BETTER_AUTH_IPV6_SUBNET must be from 0 to 128, not {subnet}.")
    return subnet


def _is_trusted(address: Address, proxies: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def address_from_header(value: str, proxies: tuple[Network, ...] = ()) -> Address | None:
    """The client address in one forwarded header, or ``None`` when it cannot be trusted.

    With ``proxies``, the comma-separated chain is walked from the right, skipping trusted hops:
    the first untrusted hop is the client (a malformed hop, or only trusted ones, give
    ``None``). Without, only a header holding exactly one valid address is used: the leftmost
    entry of a longer chain is whatever the client wrote.
    """
    hops = [hop.strip() for hop in value.split(",") if hop.strip()]
    if proxies:
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return None
            if not _is_trusted(address, proxies):
                return address
        return None
    return parse_address(hops[0]) if len(hops) == 1 else None


def address_from_headers(
    headers: Headers | Mapping[str, str], names: Iterable[str], proxies: tuple[Network, ...] = ()
) -> Address | None:
    """The first client address found in the headers ``names``, read in order."""
    for name in names:
        value = headers.get(name)
        if value:
            address = address_from_header(value, proxies)
            if address is not None:
                return address
    return None


def is_trusted_proxy(address: Address, proxies: tuple[Network, ...]) -> bool:
    """Whether ``address`` is one of ``BETTER_AUTH_TRUSTED_PROXIES``."""
    return _is_trusted(address, proxies)


def bucket_ip(address: Address, subnet: int) -> str:
    """The address as Better Auth keys rate limits on it.

    IPv4 as is; IPv6 masked to ``subnet`` bits and written out in full, lower case
    (``2001:0db8:0000:0000:0000:0000:0000:0000``), so every spelling of one network shares a key
    (and a JavaScript deployment sharing the storage uses the same one).
    """
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    network = ipaddress.IPv6Network(f"{address}/{subnet}", strict=False)
    return network.network_address.exploded


__all__ = [
    "Address",
    "Network",
    "address_from_header",
    "address_from_headers",
    "bucket_ip",
    "ipv6_subnet",
    "is_trusted_proxy",
    "parse_address",
    "trusted_proxies",
]
