"""The error family: one base, the built-in meanings, stable failure keys."""

from __future__ import annotations

import pytest

from locust_smtp import (
    ConnectError,
    ConnectionLost,
    PermanentReplyError,
    Reply,
    SmtpError,
    SmtpTimeout,
    SocketError,
)
from locust_smtp.protocol._errors import failure_key, read_failure_key, reply_error


def test_built_in_meanings_for_everyone_elses_except() -> None:
    timeout = SmtpTimeout("banner", "timeout while reading server greeting")
    lost = ConnectionLost("DATA", "lost connection while sending DATA command")
    refused = ConnectError("connect", "connect: Connection refused", 111)
    assert isinstance(timeout, TimeoutError) and isinstance(timeout, SmtpError)
    assert isinstance(lost, ConnectionError) and isinstance(refused, ConnectionError)
    assert isinstance(SocketError("connect", "socket: Too many open files", 24), ConnectError)
    # the message is smtp-source's text, not OSError's "[Errno ...]" form
    assert str(timeout) == "timeout while reading server greeting"
    assert str(refused) == "connect: Connection refused" and refused.errno == 111
    with pytest.raises(TimeoutError):
        raise timeout


@pytest.mark.parametrize(
    ("error", "key", "read"),
    [
        (
            reply_error("RCPT", Reply(550, "5.1.1 no such user", ("550 5.1.1 no such user",))),
            "PermanentReplyError('RCPT', 550, '5.1.1')",
            ("PermanentReplyError", "RCPT 550 5.1.1"),
        ),
        (
            reply_error("MAIL", Reply(450, "try later", ("450 try later",))),
            "TransientReplyError('MAIL', 450)",
            ("TransientReplyError", "MAIL 450"),
        ),
        (
            SmtpTimeout("banner", "x"),
            "SmtpTimeout('banner')",
            ("SmtpTimeout", "banner"),
        ),
        (
            ConnectError("connect", "x", 111),
            "ConnectError('connect', errno=111)",
            ("ConnectError", "connect"),
        ),
        (ValueError("a bug"), "ValueError('a bug')", ("ValueError", "a bug")),
        (KeyError(3), "KeyError(3)", ("KeyError(3)", "KeyError(3)")),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_failure_keys_are_written_and_read_by_one_pair(
    error: BaseException, key: str, read: tuple[str, str]
) -> None:
    assert failure_key(error) == key
    assert read_failure_key(key) == read_failure_key(error)
    assert read_failure_key(key) == read
    assert isinstance(error, PermanentReplyError) == (read[0] == "PermanentReplyError")
