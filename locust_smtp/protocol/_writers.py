"""Content framing: how a message's bytes go on the wire after the envelope.

A message (:class:`~._content.MessageTemplate` renders one) is plain content;
a *writer* frames it for one way of sending. :data:`DATA_WRITER` is RFC 5321's
DATA: the command, a 354, then the content dot-stuffed and ended by the ``.``
line. :class:`BdatWriter` is RFC 3030's CHUNKING: the content as it is, in
``BDAT n`` chunks, the last one ``BDAT n LAST``; no 354 and no dot-stuffing.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import stages
from ._commands import DATA, bdat
from ._content import END_OF_DATA, MessageTemplate, data_payload, dot_stuff
from .codes import START_MAIL_INPUT


@dataclass(frozen=True)
class DataWriter:
    """DATA framing: ``DATA``, which must be answered 354, then the dot-stuffed content
    and the ``.`` line, answered once (SMTP) or once per accepted recipient (LMTP)."""

    command: bytes = DATA
    """The command that asks to send content."""
    stage: str = stages.DATA
    expect: int = START_MAIL_INPUT
    """The exact reply code that lets the content go."""
    chunked = False
    """Content goes in BDAT chunks, not after a 354."""

    def frame(self, message: bytes) -> bytes:
        """One message's content as it goes on the wire after the 354."""
        return data_payload(message)

    def frame_template(self, template: MessageTemplate) -> MessageTemplate:
        """``template`` framed once, so that rendering a framed message costs no more than
        rendering a plain one: the head is stuffed as the start of the message, the tail
        as the middle of a line (a Message-Id value never holds a line break)."""
        if not template.has_message_id:
            return MessageTemplate(b"", self.frame(template.tail), has_message_id=False)
        tail = template.tail.replace(b"\n.", b"\n..")
        if not tail.endswith(b"\r\n"):
            tail += b"\r\n"
        return MessageTemplate(dot_stuff(template.head), tail + END_OF_DATA)


DATA_WRITER = DataWriter()
"""The writer every transaction uses unless told otherwise."""


@dataclass(frozen=True)
class BdatWriter:
    """CHUNKING (RFC 3030): the content unchanged, cut into ``BDAT n`` chunks of
    ``chunk_size`` bytes (0: the whole message as one ``BDAT n LAST``), each chunk
    answered 250, the last one's reply being the end-of-data reply (LMTP: one per
    accepted recipient). Carries BINARYMIME content as it is."""

    chunk_size: int = 0
    command: bytes = b""
    stage: str = stages.BDAT
    expect: int = 250
    chunked = True

    def frame(self, message: bytes) -> bytes:
        return message

    def frame_template(self, template: MessageTemplate) -> MessageTemplate:
        return template

    def chunks(self, message: bytes) -> list[bytes]:
        """The chunks as they go on the wire, each with its BDAT command."""
        size = self.chunk_size
        if size <= 0 or len(message) <= size:
            return [bdat(len(message), True) + message]
        out = []
        for start in range(0, len(message), size):
            piece = message[start : start + size]
            out.append(bdat(len(piece), start + size >= len(message)) + piece)
        return out
