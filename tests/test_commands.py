from __future__ import annotations

import pytest

from locust_smtp import LocalProtocolError
from locust_smtp.protocol import _commands as commands


def test_commands_are_encoded_as_smtp_source_sends_them() -> None:
    assert commands.helo("vm") == b"HELO vm\r\n"
    assert commands.ehlo("vm") == b"EHLO vm\r\n"
    assert commands.lhlo("vm") == b"LHLO vm\r\n"
    assert commands.mail_from("foo@vm") == b"MAIL FROM:<foo@vm>\r\n"
    assert commands.rcpt_to("foo@vm") == b"RCPT TO:<foo@vm>\r\n"
    assert commands.DATA == b"DATA\r\n"
    assert commands.RSET == b"RSET\r\n"
    assert commands.NOOP == b"NOOP\r\n"
    assert commands.QUIT == b"QUIT\r\n"


def test_addresses_are_used_verbatim() -> None:
    assert commands.mail_from("") == b"MAIL FROM:<>\r\n"
    assert commands.mail_from("<a@b>") == b"MAIL FROM:<<a@b>>\r\n"
    assert commands.rcpt_to("2<x@y>") == b"RCPT TO:<2<x@y>>\r\n"


def test_esmtp_parameters_follow_the_address() -> None:
    assert commands.mail_from("a@b", ["SIZE=100", "BODY=8BITMIME"]) == (
        b"MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME\r\n"
    )


def test_undecodable_argv_bytes_go_out_unchanged() -> None:
    raw = b"\xe9t\xe9@x".decode("utf-8", "surrogateescape")
    assert commands.mail_from(raw) == b"MAIL FROM:<\xe9t\xe9@x>\r\n"


@pytest.mark.parametrize("bad", ["a\r\nRCPT TO:<x>", "a\nb", "a\rb", "a\0b"])
@pytest.mark.parametrize("encoder", [commands.helo, commands.mail_from, commands.rcpt_to])
def test_cr_lf_or_nul_is_refused_never_sent(bad: str, encoder: object) -> None:
    with pytest.raises(LocalProtocolError, match="CR, LF or NUL"):
        encoder(bad)  # type: ignore[operator]


def test_cr_in_a_parameter_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        commands.mail_from("a@b", ["SIZE=1\r\nRSET"])
