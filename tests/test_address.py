"""Server address forms and smtp-source's error texts (reference §2)."""

from __future__ import annotations

import socket

import pytest

from locust_smtp import AddressError, parse_host, parse_source_address
from locust_smtp.protocol.address import address_literal_problem, hostname_problem


@pytest.mark.parametrize(
    ("operand", "host", "port"),
    [
        ("127.0.0.1", "127.0.0.1", "smtp"),
        ("127.0.0.1:2525", "127.0.0.1", "2525"),
        ("inet:127.0.0.1:2525", "127.0.0.1", "2525"),
        ("localhost:", "localhost", "smtp"),
        ("[::1]:2525", "::1", "2525"),
        ("[ipv6:::1]:2525", "::1", "2525"),
        ("[IPV6:::1]", "::1", "smtp"),
        ("127.0.0.1:smtp", "127.0.0.1", "smtp"),
    ],
)
def test_smtp_source_tcp_forms(operand: str, host: str, port: str) -> None:
    address = parse_source_address(operand)
    assert (address.host, address.port, address.path) == (host, port, None)


@pytest.mark.parametrize(
    ("operand", "error"),
    [
        ("::1", "::1: valid hostname or network address required"),
        (":25", ":25: missing host information"),
        ("[::1", '[::1: missing "]"'),
        ("[::1]x", '[::1]x: garbage after "]"'),
        ("[ipv6:1.2.3.4]:25", "[ipv6:1.2.3.4]:25: malformed IPv6 address"),
        ("host:25x", "host:25x: garbage after numerical service"),
        ("inet:bad_host!:25", "bad_host!:25: valid hostname or network address required"),
        ("INET:127.0.0.1:25", "INET:127.0.0.1:25: valid hostname or network address required"),
    ],
)
def test_smtp_source_address_errors(operand: str, error: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_source_address(operand)
    assert str(info.value) == error


def test_unix_form_and_its_length_limit() -> None:
    assert parse_source_address("unix:/tmp/s").path == "/tmp/s"
    with pytest.raises(AddressError, match="unix-domain name too long: /"):
        parse_source_address("unix:/" + "x" * 107)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("smtp://127.0.0.1", ("127.0.0.1", "25", None, False)),
        ("smtp://127.0.0.1:2525/", ("127.0.0.1", "2525", None, False)),
        ("lmtp://localhost", ("localhost", "24", None, True)),
        ("smtp://[::1]:2525", ("::1", "2525", None, False)),
        ("lmtp+unix:///run/lmtp", (None, "smtp", "/run/lmtp", True)),
        ("smtp+unix:/tmp/s", (None, "smtp", "/tmp/s", False)),
        ("unix:/tmp/s", (None, "smtp", "/tmp/s", None)),
        ("127.0.0.1:2525", ("127.0.0.1", "2525", None, None)),
    ],
)
def test_locust_host_forms(host: str, expected: tuple[object, ...]) -> None:
    address = parse_host(host)
    assert (address.host, address.port, address.path, address.lmtp) == expected


def test_resolution_errors_use_the_resolver_text() -> None:
    with pytest.raises(AddressError, match=r"^no-such-host\.invalid:25: "):
        parse_source_address("no-such-host.invalid:25").resolve()
    with pytest.raises(AddressError, match="Address family for hostname not supported"):
        parse_source_address("[::1]:25").resolve(socket.AF_INET)


def test_only_the_first_address_is_used() -> None:
    family, sockaddr = parse_source_address("127.0.0.1:2525").resolve()
    assert family == socket.AF_INET and sockaddr == ("127.0.0.1", 2525)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("vm", None),
        ("mail.example.com", None),
        ("a_b", None),
        ("", "empty hostname"),
        ("a..b", "misplaced delimiter: a..b"),
        ("a.", "misplaced delimiter: a."),
        ("-a", "misplaced hyphen: -a"),
        ("a-.b", "misplaced hyphen: a-.b"),
        ("a b", "invalid character 32(decimal): a b"),
        ("1.2.3", "numeric hostname: 1.2.3"),
        ("x" * 64, f"label length 64 > 63: {'x' * 64}"),
    ],
)
def test_postfix_valid_hostname(name: str, problem: str | None) -> None:
    assert hostname_problem(name) == problem


@pytest.mark.parametrize(
    ("literal", "ok"),
    [("[192.0.2.1]", True), ("[IPv6:::1]", True), ("[::1]", False), ("[1.2.3]", False)],
)
def test_address_literals(literal: str, ok: bool) -> None:
    assert (address_literal_problem(literal) is None) is ok
