"""The SMTP/LMTP client dialogue as a sans-IO state machine (model: h11's ``Connection``).

A :class:`Session` knows which reply answers which command, which code each
command expects, what the server's EHLO/LHLO offered, where a mail
transaction stands (including "the content went out: the server may have the
message") and how many end-of-data replies an LMTP server owes (one per
accepted recipient). It never touches a socket or a clock: the caller writes
the bytes it returns, feeds it the bytes it reads and gets back one
:class:`Command` per reply::

    >>> session = Session()
    >>> session.receive(b"220 mx.example ESMTP\\r\\n").reply.code
    220
    >>> session.hello("client.example", "EHLO")
    b'EHLO client.example\\r\\n'
    >>> session.receive(b"250-mx.example\\r\\n250 PIPELINING\\r\\n").ok
    True
    >>> session.extensions.pipelining
    True

Commands can be sent one at a time (:meth:`Session.mail`, :meth:`Session.rcpt`,
:meth:`Session.data`, :meth:`Session.content` ...) or as a whole transaction
(:meth:`Session.start_mail`, then :meth:`Session.data_to_send` after each reply),
either one command per round trip or, with ``pipelining=True``, MAIL, every RCPT
and DATA in one RFC 2920 group. Several commands may be in flight; replies are
matched to them in order.

The machine decides nothing about what to do after a rejection: each
:class:`Command` says whether its reply was the expected one, a
:class:`Transaction` says how it ended and whether the server still holds a
transaction that wants an RSET, and :attr:`Session.closing` says the server is
going away (421, 521). The caller applies its policy (smtp-source's ``-A``
table, a user's RSET) with those.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _commands as commands
from . import stages
from ._content import END_OF_DATA
from ._errors import ConnectionLost, LocalProtocolError, RemoteProtocolError
from ._extensions import Extensions
from ._replies import Reply, ReplyReader
from ._writers import DATA_WRITER, BdatWriter, DataWriter

Writer = DataWriter | BdatWriter
_PER_RECIPIENT = -1
"""``Command.owed`` of a pipelined LMTP BDAT LAST: one reply per accepted recipient,
counted when its first reply comes (the RCPT replies are all in by then)."""

__all__ = ["Command", "Session", "Transaction"]

_BANNER, _MAIL, _RCPT, _END = stages.BANNER, stages.MAIL, stages.RCPT, stages.END_OF_DATA
_EHLO, _LHLO, _RSET, _BDAT = stages.EHLO, stages.LHLO, stages.RSET, stages.BDAT
_BOOKED = frozenset({_MAIL, _RCPT, _END})  # with the writer's stage: a transaction's books
_NO_EXTENSIONS = Extensions()


class Command:
    """One command in flight, and once answered, the event that reports its reply.

    The same object is returned by :meth:`Session.receive` / :meth:`Session.next_event`
    for each reply to it (LMTP's end of data gets several)."""

    __slots__ = ("done", "expect", "ok", "owed", "recipient", "reply", "size", "stage", "tag")

    def __init__(
        self, stage: str, size: int, expect: int = 0, recipient: str | None = None
    ) -> None:
        self.stage = stage
        """The stage it reports as (``MAIL``, ``RCPT``, ``end of data`` ...)."""
        self.size = size
        """Bytes written for it."""
        self.expect = expect
        """The exact code that means success (DATA's 354), or 0 for any 2xx."""
        self.recipient = recipient
        """RCPT: its address. LMTP end of data: the recipient this reply is for."""
        self.owed = 1
        """Replies still owed: one, or one per accepted recipient for LMTP end of data."""
        self.tag: Any = None
        """Whatever the caller attached when it wrote the command (its send time)."""
        self.reply: Reply = None  # type: ignore[assignment]  # read only once answered
        """The latest reply to it (None until :meth:`Session.answer` matched one)."""
        self.ok = False
        """Whether that reply is the one the command expects."""
        self.done: Transaction | None = None
        """Set on the reply that ends a transaction: the transaction, ended."""

    def __repr__(self) -> str:
        return f"<Command {self.stage} {self.reply}>"


class Transaction:
    """One mail transaction: its envelope, what the server said and how it ended."""

    __slots__ = (
        "_chunks",
        "_content_ready",
        "_empty",
        "_lookahead",
        "_mail_written",
        "aborted",
        "accepted",
        "content_sent",
        "driven",
        "ended",
        "failed",
        "mail_params",
        "payload",
        "pipelining",
        "rcpt_params",
        "recipients",
        "rejected",
        "replies",
        "reset_needed",
        "sender",
        "writer",
    )

    def __init__(
        self,
        sender: str,
        recipients: Iterable[str] = (),
        payload: bytes = b"",
        writer: Writer = DATA_WRITER,
        pipelining: bool = False,
        mail_params: tuple[str, ...] = (),
        rcpt_params: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        self.sender = sender
        self.mail_params = mail_params
        """ESMTP parameters of its MAIL command (``SIZE=...``)."""
        self.rcpt_params = rcpt_params
        """ESMTP parameters of each RCPT command, from its recipient (DSN's ``NOTIFY``,
        ``ORCPT``), or None."""
        self.recipients: Iterator[str] = iter(recipients)
        """Taken one by one as each RCPT is written (so that ``-N`` numbers interleave
        across sessions as smtp-source's do), all at once when pipelining."""
        self.payload = payload
        """The content, already framed by :attr:`writer` (for DATA: dot-stuffed, ending
        with the ``.`` line)."""
        self.writer = writer
        self.pipelining = pipelining
        self.accepted: list[str] = []
        """Recipients whose RCPT was accepted."""
        self.rejected: list[tuple[str, Reply]] = []
        """Recipients whose RCPT was refused, with the reply."""
        self.replies: list[Reply] = []
        """End-of-data replies: one (SMTP) or one per accepted recipient (LMTP)."""
        self.content_sent = False
        """The content went out: from here the server may have the message even if its
        reply never comes."""
        self.failed: Command | None = None
        """The command whose reply ended the transaction without delivery (MAIL refused,
        every RCPT refused, DATA not answered 354, every end-of-data reply refused, or a
        421/521 before delivery); None when it was delivered, if only to some recipients."""
        self.reset_needed = False
        """It failed before its content while the server may still hold part of it: RSET
        before the next transaction (never set when the server is closing)."""
        self.ended = False
        self.aborted = False
        """It ended because the connection broke (:meth:`Session.abort`), not on a reply:
        :attr:`failure` is then None."""
        self._mail_written = False
        self._lookahead: str | None = None
        self._content_ready = False
        self._empty = False
        self._chunks: list[bytes] | None = None
        """BDAT chunks not written yet (None: not cut yet)."""
        self.driven = False
        """Begun by :meth:`Session.start_mail`: the machine writes its commands."""

    @property
    def delivered(self) -> bool:
        """The server took the message, for at least one recipient."""
        return self.ended and self.failed is None

    @property
    def failure(self) -> Reply | None:
        """The reply that made it fail (for LMTP, the first refused end-of-data reply)."""
        failed = self.failed
        if failed is None or self.aborted:
            return None
        if failed.stage is _END:
            for reply in self.replies:
                if not reply.positive:
                    return reply
        return failed.reply

    def _more_recipients(self) -> bool:
        if self._lookahead is None:
            self._lookahead = next(self.recipients, None)
        return self._lookahead is not None

    def __repr__(self) -> str:
        if not self.ended:
            state = "open"
        elif self.failed is None:
            state = "delivered"
        else:
            state = f"failed at {self.failed.stage}"
        return f"<Transaction {self.sender!r}: {len(self.accepted)} accepted, {state}>"


class Session:
    """The client side of one SMTP or LMTP connection, without I/O.

    Create one per connection (the greeting is owed from the start), then alternate:
    the bytes from a command method or :meth:`data_to_send` go to the server; the
    bytes read go to :meth:`receive`, which returns the next :class:`Command` answered
    (None while a reply is incomplete); :meth:`next_event` returns any further reply
    already received. :meth:`receive` with ``b""`` means the server hung up: asking for
    an owed reply then raises :class:`ConnectionLost`.
    """

    def __init__(self, lmtp: bool = False, *, greeting: bool = True) -> None:
        self.lmtp = lmtp
        self.extensions = _NO_EXTENSIONS
        """What the last positive EHLO or LHLO reply offered."""
        self.greeting: Reply | None = None
        self.pending: deque[Command] = deque()
        """Commands written whose replies are still owed, oldest first."""
        self.transaction: Transaction | None = None
        """The mail transaction under way, or the last one (see :attr:`Transaction.ended`)."""
        self.finishing: Transaction | None = None
        """The transaction whose end-of-data reply is still owed while :attr:`transaction`,
        the next one, is under way (``start_mail(..., overlap=True)``), else None."""
        self._finishing_end: Command | None = None
        self.closing = False
        """The latest reply said the server is closing (421 or 521): the replies still owed
        will not come. Whether to hang up (as smtp-source) or to write on is the caller's
        choice; writing a command clears it."""
        self.closed = False
        """The server hung up."""
        self.reader = ReplyReader()
        """Parses the bytes received; ``reader.in_reply`` says some are not consumed yet."""
        if greeting:
            self.pending.append(Command(_BANNER, 0))

    @property
    def content_sent(self) -> bool:
        """A transaction's content went out and its end-of-data replies are not all in:
        the server may have the message even if they never come."""
        transaction = self.transaction
        if self.finishing is not None:  # the previous one's reply is owed (overlap)
            return True
        return transaction is not None and transaction.content_sent and not transaction.ended

    # -- commands --------------------------------------------------------------------------

    def _push(self, command: Command, data: bytes) -> bytes:
        if self.closed:
            raise LocalProtocolError(f"{command.stage} after the server hung up")
        self.closing = False  # the caller goes on regardless (smtp-source -A does)
        self.pending.append(command)
        return data

    def hello(self, name: str, command: str | None = None) -> bytes:
        """HELO, EHLO or LHLO (default: LHLO for LMTP, else HELO)."""
        stage = stages.hello_stage(command or ("LHLO" if self.lmtp else "HELO"))
        if stage is _LHLO:
            data = commands.lhlo(name)
        elif stage is _EHLO:
            data = commands.ehlo(name)
        else:
            data = commands.helo(name)
        return self._push(Command(stage, len(data)), data)

    def mail(self, sender: str, params: Iterable[str] = ()) -> bytes:
        """MAIL FROM: starts a new transaction."""
        data = commands.mail_from(sender, params)
        self.transaction = Transaction(sender)
        self.transaction._mail_written = True
        return self._push(Command(_MAIL, len(data)), data)

    def rcpt(self, recipient: str, params: Iterable[str] = ()) -> bytes:
        data = commands.rcpt_to(recipient, params)
        return self._push(Command(_RCPT, len(data), 0, recipient), data)

    def data(self, writer: DataWriter = DATA_WRITER) -> bytes:
        """The command that asks to send content (DATA), expecting exactly 354."""
        return self._push(Command(writer.stage, len(writer.command), writer.expect), writer.command)

    def content(self, payload: bytes) -> bytes:
        """The framed content, after the 354: answered once for SMTP, once per accepted
        recipient for LMTP."""
        command = Command(_END, len(payload))
        transaction = self.transaction
        if transaction is not None:
            transaction.content_sent = True
            if self.lmtp and len(transaction.accepted) > 1:
                command.owed = len(transaction.accepted)
        return self._push(command, payload)

    def rset(self) -> bytes:
        return self._push(Command(_RSET, len(commands.RSET)), commands.RSET)

    def noop(self) -> bytes:
        return self._push(Command(stages.NOOP, len(commands.NOOP)), commands.NOOP)

    def quit(self) -> bytes:
        return self._push(Command(stages.QUIT, len(commands.QUIT)), commands.QUIT)

    def starttls(self) -> bytes:
        """STARTTLS (RFC 3207), expecting exactly 220; then the caller does the TLS
        handshake and calls :meth:`tls_started`."""
        return self._push(Command(stages.STARTTLS, len(commands.STARTTLS), 220), commands.STARTTLS)

    def xclient(self, data: bytes) -> bytes:
        """Postfix's XCLIENT (a :func:`~.client_identity.xclient_command`), expecting 220:
        the server starts the session again as the named client; say EHLO again."""
        return self._push(Command(stages.XCLIENT, len(data), 220), data)

    def xforward(self, data: bytes) -> bytes:
        """Postfix's XFORWARD (a :func:`~.client_identity.xforward_command`), expecting
        250: the next transaction is the named client's."""
        return self._push(Command(stages.XFORWARD, len(data), 250), data)

    def auth(self, data: bytes) -> bytes:
        """One line of an AUTH exchange: the command, or a response to a 334 challenge
        (235 ends it well; the caller answers 334s and judges anything else)."""
        return self._push(Command(stages.AUTH, len(data), 235), data)

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS succeeded: forget what the server said in the
        clear (RFC 3207 §4.2: its extensions; ask again with EHLO). Raises
        :class:`RemoteProtocolError` if the server sent anything after its 220 before the
        handshake (a man in the middle injecting commands would)."""
        if self.reader.in_reply or self.pending:
            raise RemoteProtocolError(stages.STARTTLS, "data after the 220 to STARTTLS")
        self.extensions = _NO_EXTENSIONS

    # -- a whole transaction ---------------------------------------------------------------

    def start_mail(
        self,
        sender: str,
        recipients: Iterable[str],
        payload: bytes,
        *,
        writer: Writer = DATA_WRITER,
        pipelining: bool = False,
        mail_params: tuple[str, ...] = (),
        rcpt_params: Callable[[str], tuple[str, ...]] | None = None,
        overlap: bool = False,
    ) -> Transaction:
        """Begin a transaction that the machine drives: from now on, and after each reply,
        :meth:`data_to_send` gives what to write next (b"" while replies are owed, and once
        the transaction has ended: the reply that ends it carries it as
        :attr:`Command.done`).

        One command per round trip by default; ``pipelining=True`` writes MAIL, every RCPT
        and DATA as one group (RFC 2920), then the content after the 354. With a
        :class:`BdatWriter` the content goes in BDAT chunks (RFC 3030), each answered
        before the next unless pipelining, where the group carries every chunk.

        ``overlap=True`` (SMTP, pipelining, DATA) may begin it while the previous one's
        end-of-data reply is still owed, once that one's content is queued: its MAIL, RCPT
        and DATA then go in the same write as that content (RFC 2920 allows message
        content first in a group), and that reply is booked to :attr:`finishing`. A 421
        in that reply ends this one too, unanswered (:attr:`Transaction.aborted`)."""
        if self.closed:
            raise LocalProtocolError("MAIL after the server hung up")
        if self.pending:
            previous = self.transaction
            if not (
                overlap
                and pipelining
                and not self.lmtp
                and not writer.chunked
                and previous is not None
                and previous.pipelining
                and previous.content_sent
                and not previous.ended
                and len(self.pending) == 1
                and self.pending[0].stage is _END
                and self.finishing is None
            ):
                raise LocalProtocolError("a transaction cannot start while replies are owed")
            self.finishing = previous
            self._finishing_end = self.pending[0]
        transaction = Transaction(
            sender, recipients, payload, writer, pipelining, mail_params, rcpt_params
        )
        transaction.driven = True
        self.transaction = transaction
        return transaction

    def data_to_send(self) -> bytes:
        """The next bytes of the transaction :meth:`start_mail` began, or b""."""
        # one call per command of every message: the commands are queued here directly
        transaction = self.transaction
        if transaction is None or transaction.ended:
            return b""
        pending = self.pending
        if transaction._content_ready:  # DATA got its 354
            transaction._content_ready = False
            if transaction._empty:  # ... with no recipient accepted: a lone dot
                data = self.content(END_OF_DATA)
                transaction.content_sent = False  # no message went out
                return data
            if self.lmtp or self.closed:
                return self.content(transaction.payload)
            data = transaction.payload  # (content(), written out for SMTP)
            transaction.content_sent = True
            self.closing = False
            pending.append(Command(_END, len(data)))
            return data
        if self.closed or (pending and pending[-1] is not self._finishing_end):
            return b""
        self.closing = False
        if not transaction._mail_written:
            transaction._mail_written = True
            data = commands.mail_from(transaction.sender, transaction.mail_params)
            pending.append(Command(_MAIL, len(data)))
            if not transaction.pipelining:
                return data
            # the group: rcpt() and data() written out, as this runs for every message
            out = [data]
            params = transaction.rcpt_params
            rcpt_to = commands.rcpt_to
            for each in transaction.recipients:
                data = rcpt_to(each, params(each) if params is not None else ())
                pending.append(Command(_RCPT, len(data), 0, each))
                out.append(data)
            writer = transaction.writer
            if writer.chunked:
                out.append(self._chunks(transaction, True))
            else:
                data = writer.command
                pending.append(Command(writer.stage, len(data), writer.expect))  # type: ignore[union-attr]
                out.append(data)
            return b"".join(out)
        recipient = transaction._lookahead
        if recipient is not None:
            transaction._lookahead = None
        elif transaction._chunks is None:
            recipient = next(transaction.recipients, None)
        if recipient is not None:
            params = transaction.rcpt_params
            data = commands.rcpt_to(recipient, params(recipient) if params is not None else ())
            pending.append(Command(_RCPT, len(data), 0, recipient))
            return data
        writer = transaction.writer
        if writer.chunked:
            return self._chunks(transaction, False)
        pending.append(Command(writer.stage, len(writer.command), writer.expect))
        return writer.command

    def _chunks(self, transaction: Transaction, every: bool) -> bytes:
        """The next BDAT chunk (``every``: all the chunks left), queued; the last one is
        the content's end, answered as end of data."""
        chunks = transaction._chunks
        if chunks is None:
            chunks = transaction._chunks = transaction.writer.chunks(  # type: ignore[union-attr]
                transaction.payload
            )
            chunks.reverse()  # taken from the end
        out = []
        while chunks:
            data = chunks.pop()
            if chunks:
                self.pending.append(Command(_BDAT, len(data), 250))
            else:
                command = Command(_END, len(data))
                transaction.content_sent = True
                if self.lmtp:
                    if transaction.pipelining:
                        command.owed = _PER_RECIPIENT
                    elif len(transaction.accepted) > 1:
                        command.owed = len(transaction.accepted)
                self.pending.append(command)
            out.append(data)
            if not every:
                break
        return b"".join(out)

    def abort(self) -> None:
        """The connection broke (a timeout, an error writing): nothing more will be read.
        A transaction under way ends, undelivered as far as we know; if its content went
        out, :attr:`Transaction.content_sent` says the server may have it anyway."""
        pending = self.pending
        waiting = pending[0] if pending else Command(stages.MESSAGE, 0)
        self.closed = True
        pending.clear()
        finishing, transaction = self.finishing, self.transaction
        if finishing is not None:  # overlapped: the next one never got an answer either
            finishing.failed, finishing.aborted, finishing.ended = waiting, True, True
            waiting = Command(_MAIL, 0)
            self.finishing = self._finishing_end = None
        if transaction is not None and not transaction.ended:
            transaction.failed = waiting
            transaction.aborted = True
            transaction.ended = True

    # -- replies ---------------------------------------------------------------------------

    def receive(self, data: bytes) -> Command | None:
        """Take bytes read from the server (``b""``: it hung up) and return the first
        command they complete a reply to, or None if no reply is complete yet."""
        if not data:
            self.closed = True
            self.reader.feed_eof()
            return self.next_event()
        reply = self.reader.receive(data)
        if reply is None:
            return None
        return self.answer(reply)

    def next_event(self) -> Command | None:
        """The next command answered by bytes already received, or None (more bytes are
        needed). Raises :class:`ConnectionLost` once the server has hung up with a reply
        owed, :class:`RemoteProtocolError` for a reply nothing was waiting for."""
        reader = self.reader
        try:
            reply = reader.next_reply() if reader.in_reply else None
        except RemoteProtocolError:  # hung up in the middle of a reply
            reply = None
        if reply is None:
            if self.closed and self.pending:
                stage = self.pending[0].stage
                raise ConnectionLost(stage, f"lost connection while {stages.CONTEXT[stage]}")
            return None
        return self.answer(reply)

    @property
    def in_reply(self) -> bool:
        """Bytes received are not all consumed: call :meth:`next_event` before reading."""
        return self.reader.in_reply

    def answer(self, reply: Reply) -> Command:
        """Match one parsed ``reply`` to the oldest command owed one and keep the books
        (what :meth:`receive` does with each reply it parses). One function, as it runs
        for every reply of every message."""
        pending = self.pending
        if not pending:
            raise RemoteProtocolError("reply", f"a reply with no command pending: {reply}")
        command = pending[0]
        command.reply = reply
        code = reply.code
        expect = command.expect
        ok = command.ok = (code == expect) if expect else (200 <= code < 300)
        if command.owed < 0:  # pipelined LMTP BDAT LAST: the RCPT replies are all in
            # one reply per accepted recipient; one only if an earlier chunk was refused
            books: Transaction = self.transaction  # type: ignore[assignment]
            chunk_refused = books.failed is not None and books.failed.stage is _BDAT
            command.owed = 1 if chunk_refused else max(len(books.accepted), 1)
        command.owed -= 1
        if command.owed <= 0:
            pending.popleft()
        closing = code == 421 or code == 521  # CLOSING_CODES, spelled out on the hot path
        transaction = self.transaction
        if command is self._finishing_end:  # the previous transaction's end-of-data reply
            next_one: Transaction = transaction  # type: ignore[assignment]
            transaction = self.finishing
            self.finishing = self._finishing_end = None
            if closing and not next_one.ended:  # the next one will never be answered
                next_one.failed = pending[0] if pending else Command(_MAIL, 0)
                next_one.aborted = next_one.ended = True
        if closing:
            self.closing = True
            pending.clear()
        stage = command.stage
        if (
            transaction is None
            or transaction.ended
            or (stage not in _BOOKED and stage is not transaction.writer.stage)
        ):
            if stage is _BANNER:
                self.greeting = reply
            elif stage is _EHLO or stage is _LHLO:
                if ok:
                    self.extensions = Extensions.from_reply(reply)
            elif stage is stages.XCLIENT and ok:
                self.extensions = _NO_EXTENSIONS  # a new session: EHLO again
            elif stage is _RSET and ok and transaction is not None:
                if not transaction.ended:  # reset in the middle: it ends, undelivered
                    transaction.failed = transaction.failed or command
                    transaction.ended = True
                    command.done = transaction
                transaction.reset_needed = False
        elif stage is _RCPT:
            if ok:
                transaction.accepted.append(command.recipient)  # type: ignore[arg-type]
                if transaction.failed is not None and transaction.failed.stage is _RCPT:
                    transaction.failed = None
            else:
                transaction.rejected.append((command.recipient, reply))  # type: ignore[arg-type]
                if transaction.failed is None and not transaction.accepted:
                    transaction.failed = command  # the first refusal, until one is accepted
            if closing:
                transaction.failed = command
                self._end(transaction, command)
            elif (
                not ok
                and transaction.driven
                and not transaction.pipelining
                and not transaction.accepted
                and not transaction._more_recipients()
            ):
                self._end(transaction, command)  # every RCPT refused: no DATA
        elif stage is _END:
            if transaction._empty or not transaction.accepted:
                # the "." after a 354 with nobody to deliver to (or, command by command,
                # content sent anyway): it ends the transaction, undelivered, and the
                # server holds nothing more
                transaction.failed = transaction.failed or command
                self._end(transaction, command)
                transaction.reset_needed = False
                return command
            replies = transaction.replies
            replies.append(reply)
            if self.lmtp:
                accepted = transaction.accepted
                if accepted:
                    command.recipient = accepted[min(len(replies), len(accepted)) - 1]
            if closing or command.owed <= 0:
                if not ok and not any(r.positive for r in replies):
                    transaction.failed = command
                    self._end(transaction, command)
                else:  # delivered: _end written out, as this is every message's last reply
                    transaction.ended = True
                    command.done = transaction
        elif stage is _BDAT:
            if not ok or closing:
                if transaction.failed is None:
                    transaction.failed = command
                # pipelined: the later chunks' replies are still owed
                if closing or not pending:
                    self._end(transaction, command)
        elif stage is _MAIL:
            if not ok or closing:
                transaction.failed = command
                # pipelined: the replies to the rest of the group are still owed
                if closing or not transaction.pipelining or not pending:
                    self._end(transaction, command)
        elif stage is transaction.writer.stage:
            if transaction.failed is not None or not transaction.accepted:
                # MAIL or every RCPT refused (pipelined, or driven command by command)
                if transaction.failed is None:
                    transaction.failed = command
                if not ok:
                    self._end(transaction, command)
                elif transaction.driven:
                    # 354 anyway: end the empty content at once (RFC 2920 section 3.1)
                    transaction._empty = transaction._content_ready = True
                # else, command by command: the caller sends what it will; its reply ends it
            elif ok:
                transaction._content_ready = True
            else:
                transaction.failed = command
                self._end(transaction, command)
        return command

    def _end(self, transaction: Transaction, command: Command) -> None:
        transaction.ended = True
        transaction.reset_needed = (
            transaction.failed is not None and not transaction.content_sent and not self.closing
        )
        command.done = transaction
