"""Synthetic client addresses, and how a server is told about them (no I/O).

One machine can look like thousands of SMTP clients to a server that trusts it to say
who the client is: Postfix's ``XCLIENT`` (the session then is the named client's, for
postscreen-less smtpd restrictions, anvil limits, RBL checks ...) and ``XFORWARD``
(the next transaction is logged as the named client's), or the PROXY protocol header
that a load balancer (HAProxy) writes before the first SMTP byte, version 1 (text)
or 2 (binary).

:class:`AddressPool` numbers the addresses of a CIDR block, IPv4 or IPv6: address
``n`` is the ``n``-th host of the block (wrapping around), never its network or
broadcast address.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ._commands import xclient, xforward

IDENTITIES = ("xclient", "xforward", "proxy-v1", "proxy-v2")
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


@dataclass(frozen=True)
class AddressPool:
    """The host addresses of a CIDR block, numbered from 0."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    @classmethod
    def parse(cls, cidr: str) -> AddressPool:
        """``10.0.0.0/8``, ``2001:db8::/64``; raises ValueError naming the problem."""
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"client address pool {cidr!r}: {exc}") from None
        return cls(network)

    @property
    def size(self) -> int:
        """How many addresses are handed out before they repeat."""
        total = self.network.num_addresses
        return total - 2 if total > 2 else total

    def address(self, n: int) -> str:
        first = 1 if self.network.num_addresses > 2 else 0
        return str(self.network.network_address + first + n % self.size)


def xclient_command(address: str, helo: str, name: str | None = None) -> bytes:
    """``XCLIENT ADDR=... NAME=... HELO=... PROTO=ESMTP``: the server starts the session
    again (a 220 greeting) as if ``address`` had connected; IPv6 as ``IPV6:...``."""
    return xclient(_attributes(address, helo, name))


def xforward_command(address: str, helo: str, name: str | None = None) -> bytes:
    """``XFORWARD ADDR=... NAME=... HELO=... PROTO=ESMTP``: the next transaction is
    logged as ``address``'s (250)."""
    return xforward(_attributes(address, helo, name))


def _attributes(address: str, helo: str, name: str | None) -> list[tuple[str, str]]:
    """What XCLIENT and XFORWARD both say of the client."""
    return [
        ("ADDR", _postfix_address(address)),
        ("NAME", name or "[UNAVAILABLE]"),
        ("HELO", helo),
        ("PROTO", "ESMTP"),
    ]


def _postfix_address(address: str) -> str:
    return f"IPV6:{address}" if ":" in address else address


def proxy_header(
    version: int, source: str, source_port: int, destination: str, destination_port: int
) -> bytes:
    """The PROXY protocol header (HAProxy's proxy-protocol.txt) saying a TCP connection
    came from ``source:source_port`` to ``destination:destination_port``. Both
    addresses must be of one family: an IPv6 destination with an IPv4 source is
    written with the source mapped into IPv6."""
    src = ipaddress.ip_address(source)
    dst = ipaddress.ip_address(destination)
    if src.version != dst.version:
        if src.version == 4:
            src = ipaddress.IPv6Address(f"::ffff:{src}")
        else:
            dst = ipaddress.IPv6Address(f"::ffff:{dst}")
    if version == 1:
        name = "TCP4" if src.version == 4 else "TCP6"
        return f"PROXY {name} {src} {dst} {source_port} {destination_port}\r\n".encode()
    if version != 2:
        raise ValueError(f"PROXY protocol version {version} (1 or 2)")
    addresses = src.packed + dst.packed + struct.pack("!HH", source_port, destination_port)
    family = 0x11 if src.version == 4 else 0x21  # TCP over IPv4 / IPv6
    return PROXY_V2_SIGNATURE + struct.pack("!BBH", 0x21, family, len(addresses)) + addresses


def parse_proxy_header(data: bytes) -> tuple[str, int, int] | None:
    """(source address, source port, header length) of a PROXY v1 or v2 header at the
    start of ``data``; None when more bytes are needed. Raises ValueError when ``data``
    does not start with one (for a server: the bundled sink)."""
    if data.startswith(PROXY_V2_SIGNATURE[: len(data)]) and len(data) < 16:
        return None
    if data.startswith(PROXY_V2_SIGNATURE):
        command, family, length = struct.unpack("!BBH", data[12:16])
        if len(data) < 16 + length:
            return None
        body = data[16 : 16 + length]
        end = 16 + length
        if command >> 4 != 2:
            raise ValueError("PROXY v2 header of another version")
        if command & 0x0F == 0:  # LOCAL: the proxy's own connection, no client
            return "", 0, end
        if family == 0x11 and length >= 12:
            return str(ipaddress.IPv4Address(body[:4])), struct.unpack("!H", body[8:10])[0], end
        if family == 0x21 and length >= 36:
            return str(ipaddress.IPv6Address(body[:16])), struct.unpack("!H", body[32:34])[0], end
        if family in (0x11, 0x21):
            raise ValueError("PROXY v2 address block too short")
        return "", 0, end  # UNSPEC or another family: no address
    if b"PROXY ".startswith(data[:6]) and b"\n" not in data:
        if len(data) > 107:
            raise ValueError("PROXY v1 header too long")
        return None
    end = data.find(b"\r\n")
    words = data[:end].split(b" ") if end >= 0 else []
    if len(words) == 6 and words[0] == b"PROXY" and words[1] in (b"TCP4", b"TCP6"):
        return words[2].decode("ascii"), int(words[4]), end + 2
    if len(words) >= 2 and words[0] == b"PROXY" and words[1] == b"UNKNOWN":
        return "", 0, end + 2
    raise ValueError("no PROXY protocol header")
