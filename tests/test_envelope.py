from __future__ import annotations

from locust_smtp import Reply
from locust_smtp.protocol._envelope import RecipientNumbers, default_address, source_recipients
from locust_smtp.protocol._extensions import Extensions


def test_default_address() -> None:
    assert default_address("vm") == "foo@vm"
    assert default_address("[192.0.2.1]") == "foo@[192.0.2.1]"


def test_recipients_count_down_and_the_last_is_unnumbered() -> None:
    assert source_recipients("foo@vm", 3) == ["3foo@vm", "2foo@vm", "foo@vm"]
    assert source_recipients("foo@vm", 1) == ["foo@vm"]
    assert source_recipients("<x@y>", 2) == ["2<x@y>", "<x@y>"]


def test_global_numbering_prefixes_every_recipient() -> None:
    numbers = RecipientNumbers()
    assert source_recipients("foo", 2, numbers) == ["1foo", "2foo"]
    assert source_recipients("foo", 1, numbers) == ["3foo"]


def test_ehlo_keywords() -> None:
    reply = Reply(
        250,
        "mx.example\nPIPELINING\nSIZE 10240000\n8BITMIME\nSTARTTLS\nAUTH PLAIN LOGIN\n"
        "AUTH=CRAM-MD5\nCHUNKING\nSMTPUTF8",
        (),
    )
    ext = Extensions.from_reply(reply)
    assert ext.pipelining and ext.eightbitmime and ext.starttls and ext.chunking and ext.smtputf8
    assert ext.size == 10240000
    assert ext.auth == ("PLAIN", "LOGIN")
    assert "pipelining" in ext


def test_old_style_auth_and_missing_keywords() -> None:
    ext = Extensions.from_reply(Reply(250, "mx\nAUTH=LOGIN PLAIN", ()))
    assert ext.auth == ("LOGIN", "PLAIN")
    assert not ext.pipelining and ext.size is None
