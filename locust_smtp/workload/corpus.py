"""Messages to send: sources on disk, a weighted mix of them, and per-message changes.

A :class:`MessageSource` indexes a corpus once (where each message is, and how
big it is) and reads one message from disk each time it is asked for, so that a
corpus of any size costs memory only for its index. :func:`open_source` tells
the kinds apart: a Maildir, a directory tree of ``.eml`` files, an mbox file or
a single message file. :class:`MessageMix` chooses between several sources by
weight.

The rest works on one message's bytes: :func:`rewrite_headers` puts the run's
envelope into the header, :func:`render_template` fills a text template's
``{fields}``, :func:`pad_to_size` grows a message to an exact size and
:func:`with_attachments` turns it into ``multipart/mixed`` with attachments of
given sizes. Nothing here does network I/O or needs gevent; randomness always
comes from the caller's :class:`random.Random`, so a seed reproduces a run.
"""

from __future__ import annotations

import base64
import bisect
import mmap
import os
import re
import stat
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from ._units import parse_count, parse_size, parse_weight

if TYPE_CHECKING:
    import random

__all__ = [
    "FileSource",
    "MboxSource",
    "MessageMix",
    "MessageSource",
    "Template",
    "open_source",
    "pad_to_size",
    "parse_mix",
    "render_template",
    "rewrite_headers",
    "to_crlf",
    "with_attachments",
]

CRLF = b"\r\n"


def to_crlf(data: bytes) -> bytes:
    """``data`` with every lone LF made CRLF; CRLF pairs and lone CRs are kept.

    >>> to_crlf(b"a\\nb\\r\\nc\\r")
    b'a\\r\\nb\\r\\nc\\r'
    """
    if data.count(b"\n") == data.count(b"\r\n"):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --------------------------------------------------------------------------- sources


class MessageSource:
    """An index of the messages of one corpus, not their contents.

    Indexes are built by :func:`open_source`. Message ``i`` (from 0 to
    ``len(source) - 1``) is read from disk by :meth:`message` every time it is
    asked for, so a file changed after indexing is sent as it is now; its
    :meth:`size` is the one the index recorded. Reading a message that has
    since disappeared raises :class:`OSError`.
    """

    path: str
    """The path the source was opened with."""
    kind: str
    """``"maildir"``, ``"eml"`` (a directory of .eml files), ``"mbox"`` or ``"file"``."""

    def __init__(self, path: str, kind: str, sizes: Iterable[int]) -> None:
        self.path = path
        self.kind = kind
        self._sizes = array("q", sizes)

    def __len__(self) -> int:
        return len(self._sizes)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.path!r}: {len(self)} messages>"

    def size(self, i: int) -> int:
        """Message ``i``'s size on disk when it was indexed (before any LF became CRLF)."""
        return self._sizes[i]

    def sizes(self) -> list[int]:
        """Every message's :meth:`size`, in index order: the corpus's empirical sizes."""
        return self._sizes.tolist()

    def name(self, i: int) -> str:
        """Where message ``i`` comes from, for reports: a file path or ``PATH#N``."""
        raise NotImplementedError

    def raw(self, i: int) -> bytes:
        """Message ``i`` as stored (for an mbox: unescaped, without its ``From `` line)."""
        raise NotImplementedError

    def message(self, i: int) -> bytes:
        """Message ``i`` read from disk now, as it would be sent: lone LFs made CRLF."""
        return to_crlf(self.raw(i))


class FileSource(MessageSource):
    """Messages that are one file each: a Maildir, a tree of .eml files or one file."""

    def __init__(self, path: str, kind: str, files: Sequence[str], sizes: Iterable[int]) -> None:
        super().__init__(path, kind, sizes)
        self._root = path if kind != "file" else ""
        self._files = list(files)
        """Paths relative to the source's directory (the path itself for a single file)."""

    def name(self, i: int) -> str:
        return os.path.join(self._root, self._files[i]) if self._root else self._files[i]

    def raw(self, i: int) -> bytes:
        with open(self.name(i), "rb") as f:
            return f.read()


#: mboxrd quoting: a body line ``>From ``, ``>>From ``... lost one ``>`` when written.
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


class MboxSource(MessageSource):
    """The messages of one mbox file (mboxrd), each indexed as (offset, length).

    The offset is that of the message's first header line, after its ``From ``
    separator line; the length runs to the next separator, less the one empty
    line that precedes it. ``>From `` lines are unescaped when read (mboxrd: one
    ``>`` comes off any line of ``>``s followed by ``From ``).
    """

    def __init__(self, path: str, offsets: Iterable[int], sizes: Iterable[int]) -> None:
        super().__init__(path, "mbox", sizes)
        self._offsets = array("q", offsets)

    def name(self, i: int) -> str:
        """``PATH#N``, N counting the mbox's messages from 1 (message 0 is ``PATH#1``)."""
        if not 0 <= i < len(self):
            raise IndexError(f"message index out of range: {i}")
        return f"{self.path}#{i + 1}"

    def raw(self, i: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(self._offsets[i])
            data = f.read(self._sizes[i])
        return _QUOTED_FROM.sub(rb"\1", data)


def _index_mbox(path: str) -> MboxSource:
    """Find every ``From `` separator line of an mbox; only offsets and lengths stay.

    The file is mapped, not read: searching it costs no memory of ours.
    """
    offsets = array("q")
    sizes = array("q")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = 0  # the file starts with "From ": open_source checked
        while start < len(data):
            separator = data.find(b"\nFrom ", start)
            stop = len(data) if separator < 0 else separator + 1
            newline = data.find(b"\n", start, stop)
            first = stop if newline < 0 else newline + 1
            end = stop
            # the empty line before the next "From " belongs to the separator
            if end - first >= 4 and data[end - 4 : end] == b"\r\n\r\n":
                end -= 2
            elif end - first >= 2 and data[end - 2 : end] == b"\n\n":
                end -= 1
            offsets.append(first)
            sizes.append(end - first)
            start = stop
    return MboxSource(path, offsets, sizes)


def _scan(directory: str, names: Iterable[str]) -> Iterator[tuple[str, int]]:
    """(name, size) of the regular, non-empty files among ``names`` in ``directory``,
    sorted by name; names starting with a dot are skipped (the Maildir rule)."""
    for name in sorted(names):
        if name.startswith("."):
            continue
        try:
            st = os.stat(os.path.join(directory, name))
        except FileNotFoundError:  # delivered or moved while we looked
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            yield name, st.st_size


def _index_files(root: str, kind: str, found: Iterable[tuple[str, int]]) -> FileSource:
    files: list[str] = []
    sizes: list[int] = []
    for rel, size in found:
        files.append(rel)
        sizes.append(size)
    return FileSource(root, kind, files, sizes)


def _maildir_files(root: str) -> Iterator[tuple[str, int]]:
    for sub in ("cur", "new"):
        directory = os.path.join(root, sub)
        for name, size in _scan(directory, os.listdir(directory)):
            yield os.path.join(sub, name), size


def _eml_files(root: str) -> list[tuple[str, int]]:
    """Every ``*.eml`` file (any case) under ``root``, in sorted path order."""
    found = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        emls = [n for n in names if n.lower().endswith(".eml")]
        for name, size in _scan(directory, emls):
            found.append((os.path.relpath(os.path.join(directory, name), root), size))
    # sorted by path components, so that "a/x.eml" comes before "a-b/y.eml" everywhere
    return sorted(found, key=lambda item: item[0].split(os.sep))


def open_source(path: str | os.PathLike[str]) -> MessageSource:
    """Index the messages at ``path``; ValueError if there are none or it cannot be read.

    * a directory with ``cur/`` and ``new/`` subdirectories is a Maildir: the
      files of ``cur/`` then ``new/``, each sorted by name (``tmp/`` and names
      starting with a dot are skipped; Maildir++ subfolders are not followed);
    * any other directory is searched recursively for ``*.eml`` files, in
      sorted path order (directories starting with a dot are skipped);
    * a file whose first line starts with ``From `` is an mbox (mboxrd: see
      :class:`MboxSource`);
    * any other file is one message.

    An empty file holds no message: such files are skipped in directories, and
    an empty file given as ``path`` is an empty source.
    """
    where = os.fspath(path)
    try:
        mode = os.stat(where).st_mode
        if stat.S_ISDIR(mode):
            if os.path.isdir(os.path.join(where, "cur")) and os.path.isdir(
                os.path.join(where, "new")
            ):
                source: MessageSource = _index_files(where, "maildir", _maildir_files(where))
                empty = "a Maildir with no messages in cur/ or new/"
            else:
                source = _index_files(where, "eml", _eml_files(where))
                empty = "a directory with no non-empty .eml files under it"
        else:
            with open(where, "rb") as f:
                head = f.read(5)
            if head == b"From ":
                source = _index_mbox(where)
                empty = "an mbox without messages"
            else:
                size = os.stat(where).st_size
                source = FileSource(where, "file", [where] if size else [], [size] if size else [])
                empty = "an empty file"
    except FileNotFoundError:
        raise ValueError(f"message source {where!r}: no such file or directory") from None
    except OSError as e:
        raise ValueError(f"message source {where!r}: cannot read it ({e.strerror})") from None
    if not len(source):
        raise ValueError(f"message source {where!r} holds no messages: it is {empty}")
    return source


# --------------------------------------------------------------------------- a mix of sources


class MessageMix:
    """A weighted choice between sources: a source is chosen in proportion to its
    weight, then one of its messages uniformly::

        mix = MessageMix([(open_source("spam.mbox"), 1), (open_source("ham/"), 9)])
        source, i = mix.pick(rng)
        data = source.message(i)
    """

    def __init__(self, sources: Iterable[tuple[MessageSource, float]]) -> None:
        self.sources: list[tuple[MessageSource, float]] = []
        """The sources and their weights, in the order given."""
        self._cumulative: list[float] = []
        total = 0.0
        for source, weight in sources:
            parse_weight(str(weight))
            if not len(source):
                raise ValueError(f"message source {source.path!r} holds no messages")
            total += weight
            self.sources.append((source, weight))
            self._cumulative.append(total)
        if not self.sources:
            raise ValueError("a message mix needs at least one source")

    def __len__(self) -> int:
        """The number of messages of all the sources."""
        return sum(len(source) for source, _ in self.sources)

    def shares(self) -> list[tuple[MessageSource, float]]:
        """Each source with the share of messages it is picked for (the shares sum to 1)."""
        total = self._cumulative[-1]
        return [(source, weight / total) for source, weight in self.sources]

    def pick(self, rng: random.Random) -> tuple[MessageSource, int]:
        """A source, by weight, and the index of one of its messages, uniformly."""
        if len(self.sources) == 1:
            source = self.sources[0][0]
        else:
            at = rng.random() * self._cumulative[-1]
            which = min(bisect.bisect_right(self._cumulative, at), len(self.sources) - 1)
            source = self.sources[which][0]
        return source, rng.randrange(len(source))


def parse_mix(spec: str) -> MessageMix:
    """A :class:`MessageMix` from ``PATH[=WEIGHT][,PATH[=WEIGHT]...]`` (weight 1 by default).

    The weight is what follows the last ``=`` of an item, so a path that itself
    contains ``=`` must be given a weight; a path cannot contain ``,``.
    """
    sources = []
    for item in spec.split(","):
        path, sep, weight_text = item.strip().rpartition("=")
        if not sep:
            path, weight_text = weight_text, "1"
        if not path:
            raise ValueError(f"bad message mix {spec!r}: empty path in item {item!r}")
        try:
            weight = parse_weight(weight_text)
        except ValueError as e:
            raise ValueError(
                f"bad message mix {spec!r}: {e} (expected PATH[=WEIGHT][,PATH[=WEIGHT]...])"
            ) from None
        sources.append((open_source(path), weight))
    return MessageMix(sources)


# --------------------------------------------------------------------------- headers


def _line_ending(message: bytes) -> bytes:
    """The message's line ending, judged by its first line: LF or (by default) CRLF."""
    newline = message.find(b"\n")
    return b"\n" if newline == 0 or (newline > 0 and message[newline - 1] != 0x0D) else CRLF


def _split(message: bytes) -> tuple[bytes, bytes]:
    """(header, rest): the header's lines, and from the first empty line on (``b""``
    when there is none: the message is all header)."""
    if message.startswith((b"\r\n", b"\n")):
        return b"", message
    ends = [i + 1 for i in (message.find(b"\n\r\n"), message.find(b"\n\n")) if i >= 0]
    if not ends:
        return message, b""
    end = min(ends)
    return message[:end], message[end:]


def _fields(header: bytes) -> list[tuple[bytes | None, list[bytes]]]:
    """The header's fields: (lower-case name, lines with their endings), a field's folded
    continuation lines with it. A line without a colon is a field without a name."""
    lines = [line + b"\n" for line in header.split(b"\n")]
    last = lines.pop()
    if last != b"\n":
        lines.append(last[:-1])
    fields: list[tuple[bytes | None, list[bytes]]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
            continue
        name, colon, _ = line.partition(b":")
        fields.append((name.rstrip(b" \t").lower() if colon else None, [line]))
    return fields


def _check_value(what: str, value: str) -> bytes:
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"{what} contains CR, LF or NUL: {value!r}")
    return value.encode("utf-8", "surrogateescape")


_FIELD_NAME = re.compile(r"[!-9;-~]+")


def _fold(name: str, items: Sequence[str], width: int = 78) -> list[str]:
    """``Name: a, b, c`` as lines of at most ``width`` characters where the items allow,
    broken after commas (unfolding gives back ``a, b, c``)."""
    lines = [f"{name}:"]
    for n, item in enumerate(items):
        token = item + ("," if n < len(items) - 1 else "")
        if len(lines[-1]) + 1 + len(token) > width and lines[-1] != f"{name}:":
            lines.append(" " + token)
        else:
            lines[-1] += " " + token
    return lines


def rewrite_headers(
    message: bytes,
    *,
    sender: str | None = None,
    recipients: Sequence[str] | None = None,
    message_id: str | None = None,
    date: str | None = None,
    add: Sequence[tuple[str, str]] = (),
) -> bytes:
    """``message`` with the header fields of this transaction; the body byte for byte as it was.

    Each of ``From`` (``sender``), ``To`` (``recipients`` joined with ``", "``),
    ``Message-Id`` and ``Date`` that is not None replaces every field of that
    name (case-insensitively, with its folded continuation lines) at the place
    of the first, or is appended to the header if there was none. Values are
    written as given: a Message-Id needs its angle brackets. A long ``To`` is
    folded after commas. When ``recipients`` are given, ``Cc`` and ``Bcc`` are
    dropped, so that the header names exactly the envelope's recipients. The
    ``add`` fields come last in the header, in order.

    Only the header is looked at: everything before the first empty line (all
    of a message without one). New lines end as the message's first line does.

    >>> rewrite_headers(b"To: a@x,\\r\\n b@x\\r\\nCc: c@x\\r\\n\\r\\nTo: body\\r\\n",
    ...                 recipients=["d@y"], add=[("X-Run", "7")])
    b'To: d@y\\r\\nX-Run: 7\\r\\n\\r\\nTo: body\\r\\n'
    """
    eol = _line_ending(message)
    new: dict[bytes, list[bytes]] = {}  # in the order missing fields are appended
    drop = set()
    if sender is not None:
        new[b"from"] = [b"From: " + _check_value("From", sender)]
    if recipients is not None:
        if not recipients:
            raise ValueError("recipients is empty: a To field needs at least one address")
        checked = [
            _check_value("recipient", r).decode("utf-8", "surrogateescape") for r in recipients
        ]
        new[b"to"] = [line.encode("utf-8", "surrogateescape") for line in _fold("To", checked)]
        drop = {b"cc", b"bcc"}
    if message_id is not None:
        new[b"message-id"] = [b"Message-Id: " + _check_value("Message-Id", message_id)]
    if date is not None:
        new[b"date"] = [b"Date: " + _check_value("Date", date)]
    added = []
    for field, value in add:
        if not _FIELD_NAME.fullmatch(field):
            raise ValueError(f"not a header field name: {field!r}")
        added.append([field.encode("ascii") + b": " + _check_value(field, value)])

    header, rest = _split(message)
    out: list[bytes] = []
    written = set()
    for name, lines in _fields(header):
        if name in new:
            if name not in written:
                out.extend(line + eol for line in new[name])
                written.add(name)
        elif name not in drop:
            out.extend(lines)
    for name, lines in new.items():
        if name not in written:
            out.extend(line + eol for line in lines)
    for lines in added:
        out.extend(line + eol for line in lines)
    # a last header line without a line ending (a message that is all header) gets one
    # if anything follows it
    for n, line in enumerate(out[:-1]):
        if not line.endswith(b"\n"):
            out[n] = line + eol
    return b"".join(out) + rest


# --------------------------------------------------------------------------- filler


#: 64 printable characters: random bytes map onto them evenly.
_FILLER_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,"
_TO_FILLER = bytes(_FILLER_ALPHABET[b % 64] for b in range(256))
LINE_LENGTH = 76
"""Characters in a filler line, before its line ending."""


def _filler(count: int, rng: random.Random) -> bytes:
    """``count`` random printable characters (no line endings)."""
    return rng.randbytes(count).translate(_TO_FILLER)


def _filler_lines(count: int, rng: random.Random, eol: bytes = CRLF) -> bytes:
    """Lines of at most 76 characters, each ending in ``eol``, of ``count`` bytes in all
    counting each ending as 2 (as sent): ``count`` must not be 1."""
    width = LINE_LENGTH + 2
    full, rest = divmod(count, width)
    lengths = [LINE_LENGTH] * full
    if rest in (1, 2) and full:
        # a line of 0 characters would do for 2, none for 1: share the last full line's
        # bytes and the rest between two lines instead
        lengths.pop()
        chars = width + rest - 4
        lengths += [(chars + 1) // 2, chars // 2]
    elif rest >= 2:
        lengths.append(rest - 2)
    elif rest == 1:
        raise ValueError("1 byte cannot be filled with lines")
    text = _filler(sum(lengths), rng)
    out = []
    at = 0
    for length in lengths:
        out.append(text[at : at + length] + eol)
        at += length
    return b"".join(out)


def pad_to_size(message: bytes, size: int, rng: random.Random) -> bytes:
    """``message`` grown to exactly ``size`` bytes with lines of random printable text
    appended to its body (76 characters and CRLF each, the last ones shorter).

    A message already ``size`` bytes or bigger comes back unchanged. A message
    that does not end in a line ending gets one first, and one that is all header
    gets the empty line that starts a body; if that alone would pass ``size``,
    the message comes back unchanged (at most 3 bytes short). A single missing
    byte is made up with one character without a line ending.
    """
    missing = size - len(message)
    if missing <= 0:
        return message
    prefix = b""
    if message and not message.endswith(b"\n"):
        prefix += CRLF
    if _split(message)[1] == b"":
        prefix += CRLF
    missing -= len(prefix)
    if missing < 0:
        return message
    if missing == 1:
        return message + prefix + _filler(1, rng)
    return message + prefix + _filler_lines(missing, rng)


# --------------------------------------------------------------------------- attachments


def with_attachments(message: bytes, sizes: Sequence[int], rng: random.Random) -> bytes:
    """``message`` as ``multipart/mixed``: its body first, then one attachment per size.

    The header keeps its fields except ``MIME-Version`` (set to 1.0) and the
    ``Content-*`` fields, which move to the first part with the original body,
    so that its meaning is kept (``text/plain`` when it had no Content-Type).
    Attachment N (from 1) is ``application/octet-stream``, ``attachment-N.bin``,
    ``sizes[N-1]`` random bytes in base64 lines of 76 characters. The boundary
    is random and appears nowhere in the body. Lines end as the message's first
    line does.
    """
    if any(size < 0 for size in sizes):
        raise ValueError(f"attachment sizes must not be negative: {list(sizes)}")
    eol = _line_ending(message)
    header, rest = _split(message)
    # the body, without the empty line that separates it from the header
    body = rest[2:] if rest.startswith(b"\r\n") else rest[1:]
    kept: list[bytes] = []
    content: list[bytes] = []
    has_type = False
    for name, lines in _fields(header):
        if name == b"mime-version":
            continue
        if name is not None and name.startswith(b"content-"):
            content.extend(lines)
            has_type = has_type or name == b"content-type"
        else:
            kept.extend(lines)
    if kept and not kept[-1].endswith(b"\n"):
        kept[-1] += eol
    if content and not content[-1].endswith(b"\n"):
        content[-1] += eol
    if not has_type:
        content.insert(0, b"Content-Type: text/plain" + eol)

    boundary = b""
    while not boundary or boundary in body:
        boundary = b"=_locust-smtp-%016x" % rng.getrandbits(64)
    delimiter = eol + b"--" + boundary
    out = [
        *kept,
        b"MIME-Version: 1.0" + eol,
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol,
        eol,
        b"--" + boundary + eol,
        *content,
        eol,
        body,
    ]
    for n, size in enumerate(sizes, 1):
        encoded = base64.b64encode(rng.randbytes(size))
        lines = [encoded[i : i + LINE_LENGTH] for i in range(0, len(encoded), LINE_LENGTH)]
        out += [
            delimiter + eol,
            b"Content-Type: application/octet-stream" + eol,
            b"Content-Transfer-Encoding: base64" + eol,
            b'Content-Disposition: attachment; filename="attachment-%d.bin"' % n + eol,
            eol,
            eol.join(lines),
        ]
    out.append(delimiter + b"--" + eol)
    return b"".join(out)


# --------------------------------------------------------------------------- templates

_WORD_LIST = """
    about after again air all also animal another answer any are around ask away
    back because been before began being below between big book both boy but call
    came can car change children city close come could country cut day did different
    does down each earth eat end enough even every example eye face family far
    father feet few find first follow food form found four from get girl give
    good got great group grow had hand hard has have head hear help here
    high home house how idea important into just keep kind know land large last
    later learn leave left let letter life light like line list little live long
    look made make man many may mean men might mile miss more most mother
    mountain move much must name near need never new next night no not now
    number off often old once only open other our out over own page paper
    part people picture place plant play point put question quick read really right river
    run said same saw say school sea second see seem sentence set she should
    show side small so some something sometimes song soon sound spell start state still
    stop story study such take talk tell than that their them then there these
    they thing think this those thought three through time together too took tree try
    turn two under until upon use very walk want was watch water way well
    went were what when where which while white who why will with without word
    work world would write year young your
"""

#: Words for ``{words:N}``: common, short, plain ASCII.
WORDS = tuple(_WORD_LIST.split())

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class Template:
    """A message template, parsed once and rendered for every message.

    ``{name}`` is replaced by ``str(fields[name])`` for the ``fields`` given to
    :meth:`render` (for instance ``{seq}``, ``{run_id}``, ``{sender}``,
    ``{recipient}``); ``{words:N}`` by N random words; ``{pad:SIZE}`` by lines of
    random text so that the rendered message reaches SIZE bytes (``K``/``M``
    suffixes, 1K = 1024; at most one per template). ``{{`` and ``}}`` are
    literal braces. Sizes count the message as sent: UTF-8, every line ending
    CRLF. Pad lines end as the template's lines do.

    >>> import random
    >>> Template("Subject: run {run_id} #{seq} {{x}}").render({"seq": 7, "run_id": "a"},
    ...                                                  random.Random(0))
    'Subject: run a #7 {x}'
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[tuple[str, str | int]] = []
        """("text", literal), ("field", name), ("words", count) or ("pad", size)."""
        self._eol = "\r\n" if "\r\n" in text else "\n"
        at = 0
        for match in _PLACEHOLDER.finditer(text):
            self._literal(text[at : match.start()])
            at = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                self._literal(token[0])
            elif token in ("{", "}"):
                raise ValueError(
                    f"template has a single {token!r} at offset {match.start()}: "
                    f"write {token * 2!r} for a literal brace"
                )
            else:
                self._parts.append(self._placeholder(match.group(1)))
        self._literal(text[at:])
        if sum(kind == "pad" for kind, _ in self._parts) > 1:
            raise ValueError("template has more than one {pad:SIZE} field")

    def _literal(self, text: str) -> None:
        if not text:
            return
        if self._parts and self._parts[-1][0] == "text":
            self._parts[-1] = ("text", str(self._parts[-1][1]) + text)
        else:
            self._parts.append(("text", text))

    @staticmethod
    def _placeholder(name: str) -> tuple[str, str | int]:
        kind, colon, argument = name.partition(":")
        try:
            if colon and kind == "words":
                return "words", parse_count(argument)
            if colon and kind == "pad":
                return "pad", parse_size(argument)
        except ValueError as e:
            raise ValueError(f"template field {{{name}}}: {e}") from None
        return "field", name

    @property
    def field_names(self) -> set[str]:
        """The names of the ``{name}`` fields the template uses (not words or pad)."""
        return {str(value) for kind, value in self._parts if kind == "field"}

    def render(self, fields: Mapping[str, object], rng: random.Random) -> str:
        """The template with its fields filled in (random words and padding from ``rng``)."""
        out: list[str] = []
        pad_at = -1
        pad_size = 0
        for kind, value in self._parts:
            if kind == "text":
                out.append(str(value))
            elif kind == "field":
                try:
                    out.append(str(fields[str(value)]))
                except KeyError:
                    known = ", ".join(sorted(fields)) or "none"
                    raise ValueError(
                        f"unknown template field {{{value}}} (fields: {known}, words:N, pad:SIZE)"
                    ) from None
            elif kind == "words":
                out.append(" ".join(rng.choices(WORDS, k=int(value))))
            else:
                pad_at, pad_size = len(out), int(value)
                out.append("x")  # stands for the padding, which neither starts nor ends a line
        if pad_at >= 0:
            text = "".join(out)
            missing = pad_size - len(text.encode("utf-8", "surrogateescape")) + 1
            missing -= text.count("\n") - text.count("\r\n")  # LFs that will be CRLF
            out[pad_at] = _pad_text(missing, rng, self._eol)
        return "".join(out)


def _pad_text(count: int, rng: random.Random, eol: str) -> str:
    """Random text of ``count`` bytes as sent: lines of 76 characters joined by ``eol``
    (counted as 2 bytes), the last line (up to 78 characters) with no line ending, so that
    the template's text after ``{pad}`` ends it."""
    if count <= 0:
        return ""
    full, last = divmod(count - 1, LINE_LENGTH + 2)
    text = _filler(full * LINE_LENGTH + last + 1, rng).decode("ascii")
    lines = [text[i * LINE_LENGTH : (i + 1) * LINE_LENGTH] for i in range(full)]
    lines.append(text[full * LINE_LENGTH :])
    return eol.join(lines)


def render_template(template: str, fields: Mapping[str, object], rng: random.Random) -> str:
    """``Template(template).render(fields, rng)``: see :class:`Template` (parse it once
    with that class to render many messages)."""
    return Template(template).render(fields, rng)
