"""Message content: dot-stuffing, the end-of-data line and smtp-source's message builder.

Content is built once and reused for every message; only the Message-Id
changes from one message to the next (see :class:`MessageTemplate`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ._commands import check_value, encode

END_OF_DATA = b".\r\n"
DEFAULT_BODY = b"".join(b"La de da de da %d.\r\n" % i for i in range(1, 5))

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def dot_stuff(data: bytes) -> bytes:
    """Double a leading ``.`` on every line (RFC 5321 §4.5.2)."""
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\n.", b"\n..")


def dot_unstuff(data: bytes) -> bytes:
    """Undo :func:`dot_stuff` (what a server does with the lines it receives)."""
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\n..", b"\n.")


def data_payload(message: bytes) -> bytes:
    """A whole message as it goes on the wire after DATA: dot-stuffed, ending in CRLF,
    then the ``.`` line."""
    stuffed = dot_stuff(message)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + END_OF_DATA


def sized_body(length: int) -> bytes:
    """smtp-source's ``-l length`` body: ``length`` bytes of ``X`` with a CRLF every 80
    bytes and a digit at the start of each full line, then one more CRLF."""
    if length <= 0:
        raise ValueError(f"bad message length: {length}")
    buf = bytearray(b"X" * length)
    for i in range(80, length, 80):
        buf[i - 80] = ord("0") + (i // 80) % 10
        buf[i - 2 : i] = b"\r\n"
    return bytes(buf) + b"\r\n"


def file_body(data: bytes) -> bytes | None:
    """smtp-source's ``-F file`` content: each LF-terminated line given a CRLF (a CR
    before the LF is kept), then one extra CRLF; the writer dot-stuffs it as any other
    content. None for an empty file, which smtp-source replaces with the default body."""
    if not data:
        return None
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def rfc2822_date(when: float | None = None) -> str:
    """smtp-source's Date header value: ``Wed,  5 Nov 2026 12:47:27 +0000 (UTC)``
    (local time, ``%e`` space-padded day, C-locale names)."""
    tm = time.localtime(when)
    offset = tm.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return (
        f"{_DAYS[tm.tm_wday]}, {tm.tm_mday:2d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} "
        f"{sign}{hours:02d}{minutes:02d} ({tm.tm_zone})"
    )


_process_date: str | None = None


def process_date() -> str:
    """The Date value, computed once per process at first use (as smtp-source does)."""
    global _process_date
    if _process_date is None:
        _process_date = rfc2822_date()
    return _process_date


def hex4(value: int) -> str:
    """C's ``printf("%04x", int)``: negative values print as 32-bit two's complement."""
    return f"{value & 0xFFFFFFFF:04x}"


@dataclass(frozen=True)
class MessageTemplate:
    """Encoded message content: everything but the Message-Id value is built once.

    ``render(message_id)`` returns the message itself, not framed for any way of
    sending it: a writer (:data:`~._writers.DATA_WRITER`) frames it, or frames the
    template once (:meth:`~._writers.DataWriter.frame_template`) so that every
    rendering is ready to send.
    """

    head: bytes
    """Bytes before the Message-Id value (empty when there are no generated headers)."""
    tail: bytes
    """Bytes after it, to the end of the message."""
    has_message_id: bool = True

    def render(self, message_id: str = "") -> bytes:
        if not self.has_message_id:
            return self.tail
        return self.head + message_id.encode("utf-8", "surrogateescape") + self.tail


@dataclass(frozen=True)
class SourceMessage:
    """The message smtp-source sends, built from its options.

    ``From``, ``To``, ``Date``, ``Message-Id`` and optionally ``Subject`` headers, then
    the default four-line body, a ``length``-byte body (``-l``) or a file's content
    (``-F``, which drops the generated headers). ``headers=False`` is ``-o``.
    """

    sender: str
    recipient: str
    myhostname: str
    subject: str | None = None
    length: int | None = None
    file_content: bytes | None = None
    headers: bool = True
    date: str | None = field(default=None, compare=False)

    def template(self) -> MessageTemplate:
        for what, value in (
            ("sender address", self.sender),
            ("recipient address", self.recipient),
            ("hostname", self.myhostname),
            ("subject", self.subject or ""),
        ):
            check_value(what, value)
        body = DEFAULT_BODY
        headers = self.headers
        if self.file_content is not None:
            headers = False
            body = file_body(self.file_content) or DEFAULT_BODY
        elif self.length is not None:
            body = sized_body(self.length)
        if not headers:
            return MessageTemplate(b"", body, has_message_id=False)
        head = (
            b"From: <" + encode(self.sender) + b">\r\n"
            b"To: <" + encode(self.recipient) + b">\r\n"
            b"Date: " + encode(self.date or process_date()) + b"\r\n"
            b"Message-Id: <"
        )
        subject = b"" if self.subject is None else b"Subject: " + encode(self.subject) + b"\r\n"
        tail = b"@" + encode(self.myhostname) + b">\r\n" + subject + b"\r\n" + body
        return MessageTemplate(head, tail)


def message_id_prefix(pid: int, fd: int) -> str:
    """``PPPP.FFFF.``: the fields of smtp-source's Message-Id that change only with the
    process and the connection."""
    return f"{hex4(pid)}.{hex4(fd)}."


def message_id_local(pid: int, fd: int, counter: int) -> str:
    """The part of smtp-source's Message-Id before the ``@``: ``PPPP.FFFF.CCCC``."""
    return message_id_prefix(pid, fd) + hex4(counter)


def unstuffed(payload: bytes) -> bytes:
    """The message a DATA payload carries (:func:`data_payload` undone): without the
    ``.`` line and with the dots added at line starts taken out; for BDAT, which sends it
    as it is."""
    if payload.endswith(END_OF_DATA):
        payload = payload[: -len(END_OF_DATA)]
    return dot_unstuff(payload)


def message_size(payload: bytes) -> int:
    """The size SIZE= declares for a DATA payload (RFC 1870 §3): the message's octets,
    without the ``.`` line and without the dots stuffing added."""
    stuffed = payload.count(b"\n..") + (1 if payload.startswith(b"..") else 0)
    return len(payload) - len(END_OF_DATA) - stuffed
