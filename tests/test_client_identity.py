"""One machine as many clients: synthetic addresses from a CIDR block, told to the server
by XCLIENT, XFORWARD or a PROXY protocol header (v1, v2)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from servers import LOCUST_SMTP, our_sink, run_users, stage_rows

from locust_smtp.protocol.client_identity import (
    AddressPool,
    parse_proxy_header,
    proxy_header,
    xclient_command,
    xforward_command,
)


def test_an_address_pool_numbers_its_hosts_and_wraps_around() -> None:
    pool = AddressPool.parse("10.1.2.0/30")
    assert [pool.address(n) for n in range(3)] == ["10.1.2.1", "10.1.2.2", "10.1.2.1"]
    six = AddressPool.parse("2001:db8::/64")
    assert six.address(0) == "2001:db8::1" and six.address(0xFFFF) == "2001:db8::1:0"
    assert AddressPool.parse("192.0.2.7/32").address(5) == "192.0.2.7"
    with pytest.raises(ValueError, match="client address pool 'ten/8'"):
        AddressPool.parse("ten/8")


def test_xclient_and_xforward_lines() -> None:
    assert xclient_command("198.18.0.1", "me.example") == (
        b"XCLIENT ADDR=198.18.0.1 NAME=[UNAVAILABLE] HELO=me.example PROTO=ESMTP\r\n"
    )
    assert xforward_command("2001:db8::1", "me") == (
        b"XFORWARD ADDR=IPV6:2001:db8::1 NAME=[UNAVAILABLE] HELO=me PROTO=ESMTP\r\n"
    )


def test_proxy_headers_as_haproxy_writes_them() -> None:
    v1 = proxy_header(1, "198.18.0.1", 4000, "127.0.0.1", 25)
    assert v1 == b"PROXY TCP4 198.18.0.1 127.0.0.1 4000 25\r\n"
    v2 = proxy_header(2, "198.18.0.1", 4000, "127.0.0.1", 25)
    assert v2 == (
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"
        + bytes([198, 18, 0, 1, 127, 0, 0, 1])
        + (4000).to_bytes(2, "big")
        + (25).to_bytes(2, "big")
    )
    mixed = proxy_header(1, "198.18.0.1", 4000, "::1", 25)
    assert mixed == b"PROXY TCP6 ::ffff:c612:1 ::1 4000 25\r\n"
    for header in (v1, v2, proxy_header(2, "2001:db8::5", 7, "::1", 25)):
        address, port, length = parse_proxy_header(header + b"220 rest")  # type: ignore[misc]
        assert length == len(header) and port in (4000, 7)
        assert address in ("198.18.0.1", "2001:db8::5")
    assert parse_proxy_header(v2[:10]) is None and parse_proxy_header(v1[:12]) is None
    with pytest.raises(ValueError):
        parse_proxy_header(b"EHLO me\r\n")


def _command(*args: str) -> Any:
    return subprocess.run([*LOCUST_SMTP, *args], capture_output=True, text=True, timeout=60)


def test_xclient_per_session_and_per_connection(tmp_path: Path) -> None:
    record = tmp_path / "record"
    with our_sink(record=record) as sink:
        sessions = _command("--xclient", "-s", "3", "-d", "-m", "9", sink.address)
    assert sessions.returncode == 0, sessions.stderr
    assert (sink.counts["messages"], sink.counts["clients"]) == (9, 3)
    first = (record / "000001.client").read_bytes()
    assert first.startswith(b"EHLO ")
    assert b"\r\nXCLIENT ADDR=198.18.0." in first
    assert first.split(b"\r\n")[2].startswith(b"EHLO ")  # the session again, as that client
    with our_sink() as sink:
        connections = _command("--xclient", "--address-per-connection",
                               "--client-addresses", "2001:db8::/120", "-s", "2", "-m", "7",
                               sink.address)  # fmt: skip
    assert connections.returncode == 0, connections.stderr
    assert (sink.counts["messages"], sink.counts["clients"]) == (7, 7)


def test_xforward_before_each_mail(tmp_path: Path) -> None:
    record = tmp_path / "record"
    with our_sink(record=record) as sink:
        proc = _command("--xforward", "-d", "-m", "3", "--client-addresses", "10.9.0.0/16",
                        sink.address)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sent = (record / "000001.client").read_bytes()
    assert sent.count(b"XFORWARD ADDR=10.9.0.1 NAME=[UNAVAILABLE] HELO=") == 3
    assert sent.index(b"XFORWARD") < sent.index(b"MAIL FROM")
    assert (sink.counts["messages"], sink.counts["clients"]) == (3, 1)


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("smtps", [False, True])
def test_proxy_protocol_headers_reach_the_sink(version: str, smtps: bool) -> None:
    tls = ("--smtps",) if smtps else ()
    with our_sink("--proxy-protocol", *tls) as sink:
        proc = _command("--proxy-protocol", version, *tls, *(("--tls-no-verify",) if smtps else ()),
                        "--address-per-connection", "-s", "2", "-m", "6", sink.address)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (sink.counts["messages"], sink.counts["clients"]) == (6, 6)


def test_xclient_not_offered_is_named() -> None:
    with our_sink("--hide", "XCLIENT") as sink:
        proc = _command("--xclient", "-m", "2", sink.address)
    assert proc.returncode == 1
    assert "fatal: XCLIENT not offered by the server (Postfix: list this client in " in proc.stderr
    assert sink.counts["messages"] == 0


def test_a_user_with_xclient_from_an_ipv6_pool() -> None:

    from locust_smtp import SmtpUser

    with our_sink() as sink:

        class Many(SmtpUser):
            host = sink.address
            client_identity = "xclient"
            client_addresses = "2001:db8:1::/64"
            client_address_per = "connection"

        environment = run_users(Many, 2, 5)
    rows = stage_rows(environment)
    assert rows["XCLIENT"] == (5, 0) and rows["EHLO"] == (10, 0)
    assert (sink.counts["messages"], sink.counts["clients"]) == (5, 5)


def test_the_sink_takes_long_and_refuses_broken_proxy_headers() -> None:
    """A v2 header with 300 bytes of TLVs is read whole; a v2 header whose address block
    is too short, and a v1 line that is no header, are refused (the connection closed,
    the sink going on); a LOCAL header names no client."""
    import socket
    import struct

    from locust_smtp.protocol.client_identity import PROXY_V2_SIGNATURE

    def greeting(header: bytes) -> bytes:
        with socket.create_connection(sink_address, timeout=10) as s:
            s.sendall(header)
            return s.recv(100)

    long_v2 = proxy_header(2, "198.18.0.9", 1, "127.0.0.1", 25)
    long_v2 = long_v2[:14] + struct.pack("!H", 12 + 300) + long_v2[16:] + b"\x00" * 300
    short_v2 = PROXY_V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x01\x02\x03\x04"
    local_v2 = PROXY_V2_SIGNATURE + b"\x20\x00\x00\x00"
    with our_sink("--proxy-protocol") as sink:
        host, port = sink.address.rsplit(":", 1)
        sink_address = (host, int(port))
        assert greeting(long_v2).startswith(b"220 ")
        assert greeting(short_v2) == b""
        assert greeting(b"EHLO me\r\n") == b""
        assert greeting(local_v2).startswith(b"220 ")
        assert greeting(proxy_header(1, "198.18.0.10", 1, "127.0.0.1", 25)).startswith(b"220 ")
    assert sink.counts["clients"] == 2  # .9 and .10; LOCAL names none
    with pytest.raises(ValueError):
        parse_proxy_header(short_v2)
