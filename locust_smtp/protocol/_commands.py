"""Encoding client commands (RFC 5321 §4.1, RFC 2033 for LHLO).

Every function returns the exact bytes to send, CRLF included. Arguments are
used verbatim (smtp-source never quotes or normalises an address), encoded as
UTF-8 with ``surrogateescape`` so that bytes that came in through ``argv``
go out unchanged. An argument containing CR, LF or NUL would inject a second
command, so it is refused with :class:`LocalProtocolError` and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from ._errors import LocalProtocolError


def check_value(what: str, value: str) -> str:
    """Return ``value`` unchanged, or raise if it contains CR, LF or NUL."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise LocalProtocolError(f"{what} contains CR, LF or NUL: {value!r}")
    return value


def encode(value: str) -> bytes:
    """The wire form of a command argument."""
    return value.encode("utf-8", "surrogateescape")


def _command(verb: bytes, what: str, value: str, tail: bytes = b"") -> bytes:
    return verb + encode(check_value(what, value)) + tail + b"\r\n"


def _params(params: Iterable[str]) -> bytes:
    if not params:
        return b""
    return b"".join(b" " + encode(check_value("parameter", p)) for p in params)


@lru_cache(maxsize=256)  # a session's name, encoded once for all its connections
def helo(name: str) -> bytes:
    return _command(b"HELO ", "HELO name", name)


@lru_cache(maxsize=256)  # a session's name, encoded once for all its connections
def ehlo(name: str) -> bytes:
    return _command(b"EHLO ", "EHLO name", name)


@lru_cache(maxsize=256)  # a session's name, encoded once for all its connections
def lhlo(name: str) -> bytes:
    return _command(b"LHLO ", "LHLO name", name)


def mail_from(sender: str, params: Iterable[str] = ()) -> bytes:
    """``MAIL FROM:<sender>`` (no space after the colon, as smtp-source), then any ESMTP
    parameters such as ``SIZE=1000``."""
    if not params:
        return _plain_mail_from(sender)
    return _command(b"MAIL FROM:<", "sender address", sender, b">" + _params(params))


def rcpt_to(recipient: str, params: Iterable[str] = ()) -> bytes:
    if not params:
        return _plain_rcpt_to(recipient)
    return _command(b"RCPT TO:<", "recipient address", recipient, b">" + _params(params))


# a load test sends the same few envelopes again and again: encode each once
@lru_cache(maxsize=4096)
def _plain_mail_from(sender: str) -> bytes:
    return _command(b"MAIL FROM:<", "sender address", sender, b">")


@lru_cache(maxsize=4096)
def _plain_rcpt_to(recipient: str) -> bytes:
    return _command(b"RCPT TO:<", "recipient address", recipient, b">")


DATA = b"DATA\r\n"
RSET = b"RSET\r\n"
NOOP = b"NOOP\r\n"
STARTTLS = b"STARTTLS\r\n"
QUIT = b"QUIT\r\n"


def bdat(size: int, last: bool) -> bytes:
    """``BDAT size`` (RFC 3030), ``LAST`` on the final chunk; the chunk's bytes follow."""
    return b"BDAT %d LAST\r\n" % size if last else b"BDAT %d\r\n" % size


def xtext(value: str) -> str:
    """RFC 3461 §4's xtext: ``+``, ``=``, controls and non-ASCII as ``+XX`` (UTF-8 bytes)."""
    out = []
    for byte in value.encode("utf-8", "surrogateescape"):
        if 33 <= byte <= 126 and byte not in (43, 61):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def xclient(attributes: Iterable[tuple[str, str]]) -> bytes:
    """``XCLIENT NAME=value ...`` (Postfix), values in xtext."""
    return _attribute_command(b"XCLIENT", attributes)


def xforward(attributes: Iterable[tuple[str, str]]) -> bytes:
    """``XFORWARD NAME=value ...`` (Postfix), values in xtext."""
    return _attribute_command(b"XFORWARD", attributes)


def _attribute_command(verb: bytes, attributes: Iterable[tuple[str, str]]) -> bytes:
    words = b"".join(
        b" " + encode(name) + b"=" + encode(xtext(check_value(name, value)))
        for name, value in attributes
    )
    return verb + words + b"\r\n"
