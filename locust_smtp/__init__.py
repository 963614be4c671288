"""SMTP/LMTP load generation for Locust.

The protocol core (replies, commands, content) has no I/O; :class:`SmtpClient`
is a thin gevent loop around it; :class:`SmtpUser` and :class:`LmtpUser` are
Locust users that report every stage of every transaction.
"""

from __future__ import annotations

from . import codes, stages
from ._commands import check_value
from ._content import (
    END_OF_DATA,
    MessageTemplate,
    SourceMessage,
    data_payload,
    dot_stuff,
    dot_unstuff,
    sized_body,
)
from ._errors import (
    ConnectError,
    ConnectionLost,
    LocalProtocolError,
    MalformedReply,
    PermanentReplyError,
    RemoteProtocolError,
    ReplyError,
    SmtpError,
    SmtpTimeout,
    SocketError,
    TransientReplyError,
    UnexpectedReplyError,
)
from ._extensions import Extensions
from ._replies import Reply, ReplyReader
from .address import AddressError, ServerAddress, parse_host, parse_source_address
from .client import MailResult, SmtpClient
from .users import LmtpUser, SmtpUser

__all__ = [
    "END_OF_DATA",
    "AddressError",
    "ConnectError",
    "ConnectionLost",
    "Extensions",
    "LmtpUser",
    "LocalProtocolError",
    "MailResult",
    "MalformedReply",
    "MessageTemplate",
    "PermanentReplyError",
    "RemoteProtocolError",
    "Reply",
    "ReplyError",
    "ReplyReader",
    "ServerAddress",
    "SmtpClient",
    "SmtpError",
    "SmtpTimeout",
    "SmtpUser",
    "SocketError",
    "SourceMessage",
    "TransientReplyError",
    "UnexpectedReplyError",
    "check_value",
    "codes",
    "data_payload",
    "dot_stuff",
    "dot_unstuff",
    "parse_host",
    "parse_source_address",
    "sized_body",
    "stages",
]
