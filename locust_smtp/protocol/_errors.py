"""Exceptions raised by the protocol core and the client.

Two families, as in h11: :class:`LocalProtocolError` means *we* were asked to
send something illegal (a CR in an address); everything under
:class:`SmtpError` describes what happened on the wire, always with the
stage it happened in.

Locust groups failures by ``repr(exception)``, so every ``repr`` here is short
and stable: it names the stage and the reply codes, never the reply text, a
queue id or an address.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._replies import Reply


class LocalProtocolError(ValueError):
    """A command or header we were asked to send is malformed; nothing was sent."""


class SmtpError(Exception):
    """Base class of everything that went wrong talking to a server."""

    stage: str

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stage!r})"


class ConnectError(SmtpError, ConnectionError):
    """The connection could not be set up (refused, unreachable, no such socket); also a
    :class:`ConnectionError`."""

    def __init__(self, stage: str, message: str, errno: int | None = None) -> None:
        super().__init__(stage, message)
        self.errno = errno

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stage!r}, errno={self.errno})"


class SocketError(ConnectError):
    """No socket could be made (out of file descriptors, ...): smtp-source's ``socket:``
    error, fatal at once (``-C`` does not retry it)."""


class ConnectionLost(SmtpError, ConnectionError):
    """The server closed the connection (or it broke) in the middle of a stage; also a
    :class:`ConnectionError`."""


class SmtpTimeout(SmtpError, TimeoutError):
    """A reply, a write or a connect did not complete within the timeout; also a
    :class:`TimeoutError`."""


class TlsError(SmtpError):
    """The TLS handshake failed (stage ``TLS handshake``). :attr:`kind` says why:
    ``"certificate"`` (the server's certificate did not verify: its name, its issuer,
    its dates), ``"protocol"`` (the peer does not speak TLS there: a plaintext server on
    the port, a TLS version or cipher the two do not share) or ``"handshake"`` (anything
    else the TLS library refused)."""

    def __init__(self, stage: str, message: str, kind: str) -> None:
        super().__init__(stage, message)
        self.kind = kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stage!r}, {self.kind!r})"


class NotOffered(SmtpError):
    """Something required is missing from the server's EHLO reply (``STARTTLS`` when
    ``starttls = "required"``): the stage it was needed for, and the keyword."""

    def __init__(self, stage: str, keyword: str, message: str) -> None:
        super().__init__(stage, message)
        self.keyword = keyword

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stage!r}, {self.keyword!r})"


class ReplyError(SmtpError):
    """The server answered with something other than the expected positive reply.

    Use :class:`TransientReplyError` (4xx), :class:`PermanentReplyError` (5xx)
    or :class:`MalformedReply` (no three-digit code) to tell them apart.
    """

    def __init__(self, stage: str, reply: Reply, message: str | None = None) -> None:
        super().__init__(stage, message or f"{stage} rejected: {reply.code} {reply.printable_text}")
        self.reply = reply

    @property
    def code(self) -> int:
        return self.reply.code

    @property
    def enhanced(self) -> str | None:
        return self.reply.enhanced

    def __repr__(self) -> str:
        enhanced = f", {self.reply.enhanced!r}" if self.reply.enhanced else ""
        return f"{type(self).__name__}({self.stage!r}, {self.reply.code}{enhanced})"


class TransientReplyError(ReplyError):
    """A 4xx reply: the server may accept the same request later."""


class PermanentReplyError(ReplyError):
    """A 5xx reply: the server refused for good."""


class UnexpectedReplyError(ReplyError):
    """A well-formed reply that is neither 4xx nor 5xx but still not what the stage expects
    (for example 250 to DATA, where only 354 will do)."""


class RemoteProtocolError(SmtpError):
    """The server broke the protocol (a reply we cannot parse)."""


class MalformedReply(ReplyError, RemoteProtocolError):
    """A reply whose code is not exactly three digits (smtp-source reads its code as 0)."""


def reply_error(stage: str, reply: Reply, message: str | None = None) -> ReplyError:
    """Return the right :class:`ReplyError` subclass for a non-positive ``reply``."""
    code = reply.code
    cls: type[ReplyError]
    if code == 0:
        cls = MalformedReply
    elif 400 <= code < 500:
        cls = TransientReplyError
    elif 500 <= code < 600:
        cls = PermanentReplyError
    else:
        cls = UnexpectedReplyError
    return cls(stage, reply, message)


# Locust groups failures by repr(exception), and a worker sends its master that text, not
# the exception: the reprs above are the failure keys, written and read here only.
_KEY = re.compile(r"(\w+)\('([^']*)'(?:, (\d+))?(?:, '([^']+)')?")


def failure_key(error: object) -> str:
    """The text a failure is grouped by: the error's repr (a text stays as it is)."""
    return error if isinstance(error, str) else repr(error)


def read_failure_key(error: object) -> tuple[str, str]:
    """(kind, ``"STAGE CODE ENHANCED"``) of a failure: ``("PermanentReplyError",
    "RCPT 550 5.1.1")``; ``Kind('text')`` gives ``(Kind, text)``; any other key, itself
    twice."""
    key = failure_key(error)
    match = _KEY.match(key)
    if match is None:
        return key, key
    kind, stage, code, enhanced = match.groups()
    return kind, " ".join(part for part in (stage, code, enhanced) if part)
