"""Reading server replies from bytes (RFC 5321 §4.2), exactly as smtp-source does.

No I/O here: feed the bytes you received to a :class:`ReplyReader` and take
:class:`Reply` objects out. The rules (see ``docs/smtp-source.md`` §5.1):

* a line ends at LF; CRs right before the LF are dropped, so bare-LF replies
  are accepted; a line longer than :data:`LINE_LIMIT` bytes is cut there and
  the rest of it is discarded;
* bytes that are neither printable ASCII nor whitespace are replaced by ``?``;
* the code is the run of leading digits if it is exactly three digits long,
  otherwise 0 (the reply is then malformed);
* a ``-`` right after the digits means another line follows; the reply's code
  is the code of its last line;
* the text is what follows the digits, the ``-`` and any whitespace; the texts
  of all lines are joined with ``\\n`` and capped at :data:`TEXT_LIMIT`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import RemoteProtocolError

#: Longest reply line kept, in bytes; the rest of a longer line is discarded.
LINE_LIMIT = 10240
#: Longest reply text kept (all lines joined), in characters.
TEXT_LIMIT = 10240

_SANITIZE = bytes(b if (0x20 <= b <= 0x7E or b in b"\t\n\v\f\r") else ord("?") for b in range(256))
_PRINTABLE = {c: "?" for c in range(0x80) if not 0x20 <= c <= 0x7E}
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")
_DIGITS = b"0123456789"
SEEN_LIMIT = 256
"""Whole one-line replies remembered, as received, with the :class:`Reply` made of them:
those seen twice (constant replies such as ``250 2.1.5 Ok``, read again and again, are
then one dict lookup; a reply carrying a queue id is never seen twice, so it never
takes a place in the table)."""
_SEEN: dict[bytes, Reply] = {}
_SEEN_GROUPS: dict[bytes, tuple[Reply, ...]] = {}
"""The same for reads holding several whole one-line replies, as the answers to a
pipelined group come (``250 2.1.0 Ok`` ``250 2.1.5 Ok`` ``354 ...`` in one read)."""
_GROUPS_SEEN_ONCE: set[bytes] = set()


@dataclass(slots=True)
class Reply:
    """One complete server reply (treat as immutable; not frozen only because frozen
    dataclasses are several times slower to create, and a load test makes millions)."""

    code: int
    """The three-digit code of the last line, or 0 when it is not exactly three digits."""
    text: str
    """The text of every line (code and separator removed), joined with ``\\n``."""
    lines: tuple[str, ...]
    """The lines as received (non-printable bytes shown as ``?``), for logging."""

    @property
    def positive(self) -> bool:
        """True for a 2xx reply."""
        return 200 <= self.code < 300

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code (``"5.1.1"``) of the last line, if it has one
        whose class matches the reply code."""
        last = self.text.rpartition("\n")[2]
        match = _ENHANCED.match(last)
        if match is None or match.group(1) != str(self.code // 100):
            return None
        return match.group(0)

    @property
    def printable_text(self) -> str:
        """The text as smtp-source prints it: line breaks and other non-printables as ``?``."""
        return self.text.translate(_PRINTABLE)

    def __str__(self) -> str:
        return f"{self.code} {self.printable_text}"


def parse_line(line: bytes) -> tuple[int, bool, str, str]:
    """Parse one reply line (without its line end) into (code, more, text, shown line)."""
    line = line.translate(_SANITIZE)
    sep = line[3:4]
    if (sep == b" " or sep == b"-" or sep == b"") and line[:3].isdigit():
        # the common case: three digits, then a space, a dash or nothing
        shown = line.decode("ascii")
        return int(line[:3]), sep == b"-", shown[4:].lstrip(" \t\n\v\f\r"), shown
    n = 0
    size = len(line)
    while n < size and line[n] in _DIGITS:
        n += 1
    code = int(line[:3]) if n == 3 else 0
    more = line[n : n + 1] == b"-"
    rest = line[n + 1 :] if more else line[n:]
    shown = line.decode("ascii")
    return code, more, rest.lstrip(b" \t\n\v\f\r").decode("ascii"), shown


def _final_line_reply(line: bytes) -> Reply | None:
    """``line`` (sanitized, without its line end) as a whole reply if it is one in
    :func:`parse_line`'s first case, a final ``ddd text`` line; else None."""
    if line[3:4] == b" " and line[:3].isdigit():
        shown = line.decode("ascii")
        return Reply(int(line[:3]), shown[4:].lstrip(" \t\n\v\f\r")[:TEXT_LIMIT], (shown,))
    return None


_LINES_SEEN_ONCE: set[bytes] = set()


def _remember(line: bytes, reply: Reply) -> None:
    """Keep ``reply`` in :data:`_SEEN` the second time ``line`` comes: a reply carrying
    a queue id never does, so it never takes the place of one that repeats."""
    if line in _LINES_SEEN_ONCE:
        if len(_SEEN) < SEEN_LIMIT:
            _SEEN[line] = reply
    elif len(_LINES_SEEN_ONCE) < 4 * SEEN_LIMIT:
        _LINES_SEEN_ONCE.add(line)
    else:
        _LINES_SEEN_ONCE.clear()


def _one_line_replies(data: bytes) -> list[Reply] | None:
    """Whole lines that are each a whole one-line reply (``250 2.1.5 Ok\\r\\n``, as
    a pipelined group's replies are), parsed as :meth:`ReplyReader.next_reply` would;
    None if one of them is not (a continuation line, an over-long one, a bad code).

    A line seen a second time is remembered (:func:`_remember`): Postfix's end-of-data
    reply carries a new queue id each time, so a group's bytes never repeat, but its
    other lines (``250 2.1.0 Ok``, ``354 End data with ...``) always do."""
    replies = []
    seen = _SEEN
    start, size = 0, len(data)
    while start < size:
        end = data.index(b"\n", start) + 1
        chunk = data[start:end]
        reply = seen.get(chunk)
        if reply is None:
            if end - start > LINE_LIMIT:
                return None
            reply = _final_line_reply(chunk[:-1].rstrip(b"\r").translate(_SANITIZE))
            if reply is None:
                return None
            _remember(chunk, reply)
        replies.append(reply)
        start = end
    return replies


class ReplyReader:
    """Turns received bytes into :class:`Reply` objects.

    >>> reader = ReplyReader()
    >>> reader.feed(b"250-mx.example\\r\\n250 PIPELINING\\r\\n")
    >>> reader.next_reply()
    Reply(code=250, text='mx.example\\nPIPELINING', lines=('250-mx.example', '250 PIPELINING'))
    """

    __slots__ = (
        "_buffer",
        "_eof",
        "_kept",
        "_lines",
        "_queued",
        "_texts",
        "_truncated",
        "in_reply",
    )

    def __init__(self) -> None:
        self._buffer = b""
        self._lines: list[str] = []
        self._texts: list[str] = []
        self._truncated: bytes | None = None  # kept head of an over-long line
        self._eof = False
        self._kept = 0  # characters of text kept for the reply being read
        self._queued: list[Reply] = []  # whole replies of a read, parsed, not returned yet
        self.in_reply = False
        """True when part of a reply has been received but not returned yet (a plain
        attribute, kept up to date, as every reply of every message reads it)."""

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        if self._buffer:
            self._buffer += data
        else:
            self._buffer = data
        if data:
            self.in_reply = True

    def receive(self, data: bytes) -> Reply | None:
        """:meth:`feed` then :meth:`next_reply`, in one call.

        The common case, one whole single-line reply arriving on its own
        (``250 2.0.0 Ok\\r\\n``), is parsed without going through the line buffer;
        the result is the same as the general path's."""
        if not self.in_reply:
            reply = _SEEN.get(data)
            if reply is not None:  # a server says "250 2.1.0 Ok" again and again
                return reply
            group = _SEEN_GROUPS.get(data)
            if group is not None:  # ... and answers each pipelined group the same way
                self._queued = list(group[1:])
                self.in_reply = True
                return group[0]
            end = data.find(b"\n")
            if 0 <= end <= LINE_LIMIT and end == len(data) - 1:
                line = data[:end].rstrip(b"\r").translate(_SANITIZE)
                reply = _final_line_reply(line)  # "250 text", as nearly every reply is
                if reply is None:
                    code, more, text, shown = parse_line(line)
                    if not more:
                        reply = Reply(code, text[:TEXT_LIMIT], (shown,))
                if reply is not None:
                    _remember(data, reply)
                    return reply
        # (not fresh: the bytes before these are part of the replies)
        if self.in_reply or not data.endswith(b"\n"):
            self.feed(data)
            return self.next_reply()
        replies = _one_line_replies(data)
        if replies is None:  # a reply of several lines among them (EHLO's): the line buffer
            self.feed(data)
            if len(_SEEN_GROUPS) >= SEEN_LIMIT:
                return self.next_reply()
            replies = []
            while (parsed := self.next_reply()) is not None:
                replies.append(parsed)
                if not self.in_reply:
                    break
            if not replies:
                return None
        if (
            not self.in_reply
            and len(replies) > 1
            and len(_SEEN_GROUPS) < SEEN_LIMIT
            and len(replies) == data.count(b"\n")
        ):
            # remembered the second time it is seen: groups carrying a queue id never are
            if data in _GROUPS_SEEN_ONCE:
                _SEEN_GROUPS[data] = tuple(replies)
            elif len(_GROUPS_SEEN_ONCE) < 4 * SEEN_LIMIT:
                _GROUPS_SEEN_ONCE.add(data)
            else:
                _GROUPS_SEEN_ONCE.clear()
        self._queued = replies[1:]
        self.in_reply = bool(self._queued) or self.in_reply
        return replies[0]

    def feed_eof(self) -> None:
        """Note that the peer closed; a partial reply then makes :meth:`next_reply` raise."""
        self._eof = True

    def _next_line(self) -> bytes | None:
        buffer = self._buffer
        end = buffer.find(b"\n")
        if self._truncated is not None:
            if end < 0:
                self._buffer = b""
                return None
            line, self._truncated = self._truncated, None
            self._buffer = buffer[end + 1 :]
            return line
        if end < 0:
            if len(buffer) > LINE_LIMIT:
                self._truncated = buffer[:LINE_LIMIT]
                self._buffer = b""
            return None
        self._buffer = buffer[end + 1 :]
        return buffer[: min(end, LINE_LIMIT)]

    def next_reply(self) -> Reply | None:
        """Return the next complete reply, or None if more bytes are needed.

        Raises :class:`RemoteProtocolError` when the peer closed in the middle of
        a reply (a line cut off without its LF, or a missing last line).
        """
        queued = self._queued
        if queued:
            reply = queued.pop(0)
            self.in_reply = bool(
                queued or self._buffer or self._lines or self._truncated is not None
            )
            return reply
        while True:
            line = self._next_line()
            if line is None:
                in_reply = self.in_reply = bool(
                    self._buffer or self._lines or self._truncated is not None
                )
                if self._eof and in_reply:
                    raise RemoteProtocolError("reply", "connection closed in the middle of a reply")
                return None
            code, more, text, shown = parse_line(line.rstrip(b"\r"))
            if self._kept < TEXT_LIMIT or not more:
                # past the text cap, middle lines cannot change the reply: dropping them
                # bounds the memory a server streaming continuation lines can take
                self._lines.append(shown)
                self._texts.append(text)
                self._kept += len(text) + 1
            if not more:
                lines = tuple(self._lines)
                texts = self._texts
                self._lines = []
                self._texts = []
                self._kept = 0
                joined = texts[0] if len(texts) == 1 else "\n".join(texts)
                self.in_reply = bool(self._buffer or self._truncated is not None)
                return Reply(code, joined[:TEXT_LIMIT], lines)
