"""Server addresses: smtp-source's operand forms and the URL forms used as a Locust host.

smtp-source forms (``docs/smtp-source.md`` §2), parsed with Postfix's rules
and error texts by :func:`parse_source_address`:

* ``unix:PATH``
* ``[inet:]host``, ``[inet:]host:port``, ``[inet:][host]:port``,
  ``[inet:][ipv6:addr]:port`` (a bare IPv6 address must be bracketed)

URL forms, accepted by :func:`parse_host` as well:

* ``smtp://host[:port]`` (port 25) and ``lmtp://host[:port]`` (port 24),
  ``smtp://[::1]:2525`` for IPv6;
* ``smtps://host[:port]`` (port 465): SMTP over implicit TLS (RFC 8314);
* ``smtp+unix:PATH`` and ``lmtp+unix:PATH`` (``//`` after the colon allowed,
  so ``lmtp+unix:///run/dovecot/lmtp`` works).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

UNIX_PATH_MAX = 108  # sizeof(sockaddr_un.sun_path) on Linux
DEFAULT_PORTS = {"smtp": 25, "lmtp": 24, "smtps": 465}


class AddressError(ValueError):
    """The address is malformed or cannot be resolved; the text is smtp-source's."""


@dataclass(frozen=True)
class ServerAddress:
    """Where to connect: a TCP host and port (service) or a UNIX socket path."""

    host: str | None = None
    port: str = "smtp"
    path: str | None = None
    lmtp: bool | None = None
    """True or False when the form names the protocol (``lmtp://``), else None."""
    display: str = ""
    """The operand as smtp-source shows it in error messages (``inet:`` removed)."""
    tls: bool = False
    """Implicit TLS from the first byte (``smtps://``)."""

    @property
    def is_unix(self) -> bool:
        return self.path is not None

    def resolve(self, family: int = socket.AF_UNSPEC) -> tuple[int, str | tuple[object, ...]]:
        """Return ``(family, sockaddr)`` of the first address found (smtp-source never tries
        another). Raises :class:`AddressError` with the resolver's text."""
        if self.path is not None:
            return socket.AF_UNIX, self.path
        from gevent import socket as gsocket

        try:
            infos = gsocket.getaddrinfo(self.host, self.port, family, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise AddressError(f"{self.display}: {exc.strerror}") from None
        except UnicodeError:
            raise AddressError(f"{self.display}: Name or service not known") from None
        family_found, _type, _proto, _canon, sockaddr = infos[0]
        return family_found, sockaddr

    def __str__(self) -> str:
        return self.display


# -- Postfix's valid_hostname() and valid_hostaddr() ---------------------------------------

HOSTNAME_MAX = 255
LABEL_MAX = 63


def hostname_problem(name: str) -> str | None:
    """Why Postfix's ``valid_hostname()`` would refuse ``name`` (its warning text without
    the ``valid_hostname: `` prefix), or None if the name is valid."""
    if not name:
        return "empty hostname"
    if len(name) > HOSTNAME_MAX:
        return f"bad length {len(name)} for {name[:100]}..."
    raw = name.encode("utf-8", "surrogateescape")  # Postfix looks at bytes
    label = 0
    non_numeric = False
    for i, byte in enumerate(raw):
        ch = chr(byte)
        nxt = raw[i + 1 : i + 2]
        if (ch.isascii() and ch.isalnum()) or ch == "_":
            label += 1
            if label > LABEL_MAX:
                return f"label length {label} > {LABEL_MAX}: {name[:100]}"
            if not ch.isdigit():
                non_numeric = True
        elif ch == ".":
            if label == 0 or not nxt:
                return f"misplaced delimiter: {name[:100]}"
            label = 0
        elif ch == "-":
            non_numeric = True
            label += 1
            if label == 1 or nxt in (b"", b"."):
                return f"misplaced hyphen: {name[:100]}"
        else:
            return f"invalid character {byte}(decimal): {name[:100]}"
    if not non_numeric:
        return f"numeric hostname: {name[:100]}"
    return None


def is_ip_address(text: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or address.version == version


def ipv4_problem(addr: str) -> str | None:
    """Why Postfix's ``valid_ipv4_hostaddr()`` refuses ``addr`` (its warning text), or None."""
    if not addr:
        return "empty address"
    in_byte, byte_count, byte_val = False, 0, 0
    for i, ch in enumerate(addr):
        if "0" <= ch <= "9":
            if not in_byte:
                in_byte, byte_val = True, 0
                byte_count += 1
            byte_val = byte_val * 10 + ord(ch) - ord("0")
            if byte_val > 255:
                return f"invalid octet value: {addr[:100]}"
        elif ch == ".":
            if not in_byte or i + 1 == len(addr):
                return f"misplaced dot: {addr[:100]}"
            if byte_count == 1 and byte_val == 0 and addr.strip("0."):
                return f"bad initial octet value: {addr[:100]}"
            in_byte = False
        else:
            return f"invalid character {ord(ch)}(decimal): {addr[:100]}"
    if byte_count != 4:
        return f"invalid octet count: {addr[:100]}"
    return None


def address_literal_problem(literal: str) -> str | None:
    """Why ``[1.2.3.4]`` / ``[IPv6:...]`` is not a valid address literal (the warning that
    precedes smtp-source's ``bad address literal``), or None."""
    if not (literal.startswith("[") and literal.endswith("]")):
        return "bad address literal"
    inner = literal[1:-1]
    if inner[:5].lower() == "ipv6:":
        return None if is_ip_address(inner[5:], 6) else "valid_ipv6_hostaddr: bad address"
    problem = ipv4_problem(inner)
    return None if problem is None else f"valid_ipv4_hostaddr: {problem}"


# -- smtp-source operand -------------------------------------------------------------------


def _host_port(text: str) -> tuple[str, str]:
    """Postfix ``host_port()`` with no default host and default service ``smtp``."""
    if text.startswith("["):
        rest = text[1:]
        ipv6 = rest[:5].lower() == "ipv6:"
        if ipv6:
            rest = rest[5:]
        host, bracket, after = rest.partition("]")
        if not bracket:
            raise AddressError('missing "]"')
        if after and not after.startswith(":"):
            raise AddressError('garbage after "]"')
        if ipv6 and not is_ip_address(host, 6):
            raise AddressError("malformed IPv6 address")
        port = after[1:] or "smtp"
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            host, port = text, "smtp"
        elif not host:
            raise AddressError("missing host information")
        port = port or "smtp"
    if hostname_problem(host) is not None and not is_ip_address(host):
        raise AddressError("valid hostname or network address required")
    if port[:1].isdigit() and not port.isdigit():
        raise AddressError("garbage after numerical service")
    return host, port


def parse_source_address(operand: str, lmtp: bool | None = None) -> ServerAddress:
    """Parse an smtp-source server operand. Errors read ``ADDR: REASON`` as smtp-source's."""
    if operand.startswith("unix:"):
        path = operand[5:]
        if len(path.encode("utf-8", "surrogateescape")) >= UNIX_PATH_MAX:
            raise AddressError(f"unix-domain name too long: {path}")
        return ServerAddress(path=path, lmtp=lmtp, display=operand)
    display = operand[5:] if operand.startswith("inet:") else operand
    try:
        host, port = _host_port(display)
    except AddressError as exc:
        raise AddressError(f"{display}: {exc}") from None
    return ServerAddress(host=host, port=port, lmtp=lmtp, display=display)


# -- URL forms ------------------------------------------------------------------------------


def parse_host(host: str) -> ServerAddress:
    """Parse a Locust host: a URL form or any smtp-source operand form."""
    scheme, sep, rest = host.partition("://")
    if sep and scheme.lower() in DEFAULT_PORTS:
        lmtp = scheme.lower() == "lmtp"
        tls = scheme.lower() == "smtps"
        rest = rest.rstrip("/")
        if not rest:
            raise AddressError(f"{host}: missing host information")
        if rest.startswith("[") or rest.count(":") <= 1:
            address = parse_source_address(rest, lmtp=lmtp)
            if address.port == "smtp":
                address = ServerAddress(
                    host=address.host, port=str(DEFAULT_PORTS[scheme.lower()]), lmtp=lmtp
                )
            return ServerAddress(address.host, address.port, lmtp=lmtp, display=host, tls=tls)
        raise AddressError(f"{host}: IPv6 addresses must be bracketed")
    for prefix, lmtp in (("smtp+unix:", False), ("lmtp+unix:", True)):
        if host.lower().startswith(prefix):
            path = host[len(prefix) :]
            if path.startswith("//"):
                path = path[2:]
            if not path:
                raise AddressError(f"{host}: missing socket path")
            return parse_source_address("unix:" + path, lmtp=lmtp)
    return parse_source_address(host)
