"""The SMTP/LMTP protocol without I/O: no sockets, no gevent, no Locust.

Bytes in, objects out, and back: :class:`ReplyReader` parses replies as
smtp-source does, the command encoders refuse what must not reach the wire,
:class:`SourceMessage` builds smtp-source's message, :func:`data_payload`
dot-stuffs content, :class:`Extensions` reads an EHLO/LHLO reply,
:mod:`.address` parses server operands, :mod:`.stages` names the stages and
:mod:`.codes` the reply codes. Importing this package imports neither gevent
nor Locust (``tests/test_layers.py`` checks it), so it serves the client, the
bundled sink, tests and fuzzers alike.
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
    NotOffered,
    PermanentReplyError,
    RemoteProtocolError,
    ReplyError,
    SmtpError,
    SmtpTimeout,
    SocketError,
    TlsError,
    TransientReplyError,
    UnexpectedReplyError,
)
from ._extensions import Extensions
from ._replies import Reply, ReplyReader
from .address import AddressError, ServerAddress, parse_host, parse_source_address

__all__ = [
    "END_OF_DATA",
    "AddressError",
    "ConnectError",
    "ConnectionLost",
    "Extensions",
    "LocalProtocolError",
    "MalformedReply",
    "MessageTemplate",
    "NotOffered",
    "PermanentReplyError",
    "RemoteProtocolError",
    "Reply",
    "ReplyError",
    "ReplyReader",
    "ServerAddress",
    "SmtpError",
    "SmtpTimeout",
    "SocketError",
    "SourceMessage",
    "TlsError",
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
