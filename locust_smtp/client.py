"""A gevent-cooperative SMTP/LMTP client over one connection.

A thin loop between two parts: the sans-IO :class:`~locust_smtp.protocol.session.Session`
knows the dialogue (which reply answers which command, what a transaction got
done) and a :class:`~locust_smtp.transport.SocketTransport` moves the bytes.
The client writes what the session gives it, feeds it what it reads, times
every stage and reports it to the ``on_stage`` callback, success or failure,
exactly once. A reply's time runs from the ``time.time()`` of the write that
carried its command to the moment the event loop saw the reply readable
(:attr:`~locust_smtp.transport.SocketTransport.readable_at`): time this process
spent on other connections' replies before getting to it is not the server's.
Connect and the whole ``message`` are timed with :func:`time.perf_counter`.

Reply rejections are *reported* and returned (the caller decides what to do,
as smtp-source's ``-A`` needs); lost connections and timeouts close the
connection and raise.
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gevent.hub import get_hub

from .protocol import stages
from .protocol._auth import mechanism as sasl_mechanism
from .protocol._errors import (
    LocalProtocolError,
    RemoteProtocolError,
    ReplyError,
    SmtpError,
    reply_error,
)
from .protocol._extensions import Extensions
from .protocol._replies import Reply
from .protocol._writers import DATA_WRITER
from .protocol.address import ServerAddress, parse_host
from .protocol.client_identity import xclient_command, xforward_command
from .protocol.session import Command, Session, Transaction, Writer
from .tls import TlsTransport, handshake
from .transport import SEND_SOON_LIMIT, SocketTransport, lost, timed_out

DEFAULT_TIMEOUT = 300.0
_END_OF_DATA = stages.END_OF_DATA

StageCallback = Callable[[str, float, float, int, "Reply | None", "BaseException | None"], None]
"""``on_stage(stage, start_time, response_time_ms, bytes_sent, reply, exception)``:
``start_time`` is ``time.time()`` at the start of the stage, ``exception`` is None on
success, a :class:`ReplyError` for a rejection, or the error that ended the stage."""


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class MailResult:
    """What :meth:`SmtpClient.send_mail` got done."""

    accepted: tuple[str, ...]
    """Recipients whose RCPT was accepted."""
    rejected: tuple[tuple[str, Reply], ...]
    """Recipients whose RCPT was refused, with the reply."""
    replies: tuple[Reply, ...]
    """The end-of-data reply (SMTP) or one per accepted recipient (LMTP)."""
    bytes_sent: int


class SmtpClient:
    """One connection to an SMTP or LMTP server.

    Against a server (not a doctest: it needs one)::

        client = SmtpClient("127.0.0.1:2525")
        client.connect()
        client.helo("me.example")
        client.send_mail("a@x", ["b@y"], data_payload(b"Subject: hi\\r\\n\\r\\nhello\\r\\n"))
        client.quit()
    """

    def __init__(
        self,
        address: ServerAddress | str,
        *,
        lmtp: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        family: int = socket.AF_UNSPEC,
        buffer_size: int | None = None,
        on_stage: StageCallback | None = None,
        trace: Callable[[str], None] | None = None,
        sockaddr: tuple[int, object] | None = None,
        tls_context: ssl.SSLContext | None = None,
        tls_server_name: str | None = None,
        tls_resume: bool = True,
    ) -> None:
        self.address = parse_host(address) if isinstance(address, str) else address
        if lmtp is None:
            lmtp = bool(self.address.lmtp)
        self.lmtp = lmtp
        self._hub = get_hub()
        self._transport: SocketTransport | TlsTransport | None = None
        self.tls_context = tls_context
        """For STARTTLS and ``smtps://``; default: :func:`ssl.create_default_context`
        (verifies the certificate against the system's CAs and the server's name)."""
        self.tls_server_name = tls_server_name
        """The name sent (SNI) and checked; default: the host of the address."""
        self.tls_resume = tls_resume
        """Offer the previous connection's TLS session on the next (resumption)."""
        self.tls_session: ssl.SSLSession | None = None
        """The last TLS session, kept when its connection closes."""
        self.tls_resumed = False
        """Whether the current connection's TLS session was resumed."""
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.family = family
        self.buffer_size = buffer_size
        self.on_stage: StageCallback = on_stage or _ignore
        self.trace = trace
        self.session = Session(lmtp)
        self._auth_username = ""
        self.proxy_header: bytes | None = None
        """Written right after each connect, before anything else (TLS included): a PROXY
        protocol header (:func:`~locust_smtp.protocol.client_identity.proxy_header`)."""
        """The dialogue of the current (or last) connection: a new one per connection."""
        self._sockaddr = sockaddr
        """``(family, address)`` already resolved, if given: every connection uses it."""
        # plain attributes, kept by open() and close(): read for every message
        self.connected = False
        """True between :meth:`open` and :meth:`close`."""
        self.fileno = -1
        """The socket's descriptor (-1 when not connected)."""
        self.bytes_sent = 0
        """Bytes written on this client's connections so far."""

    # -- timeouts --------------------------------------------------------------------------
    #
    # One libev timer per kind of wait. ``again()`` arms it afresh with the full timeout;
    # ``start()`` after a ``stop()`` resumes with the time that was left (libev keeps the
    # remainder). A reply is read with ``again()`` before its first wait and ``start()``
    # before the others, so the timeout is a deadline for the complete reply; a write or
    # a connect re-arms it before every wait.

    @property
    def timeout(self) -> float:
        """Seconds a complete reply may take, counted from when we start waiting for it;
        also the limit on every wait for the socket to take more of a write."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._timeout = seconds
        self._timer = self._hub.loop.timer(seconds, seconds)
        if self._transport is not None:
            self._transport.timer = self._timer

    @property
    def connect_timeout(self) -> float:
        """Seconds one connect attempt may take."""
        return self._connect_timeout

    @connect_timeout.setter
    def connect_timeout(self, seconds: float) -> None:
        self._connect_timeout = seconds
        self._connect_timer = self._hub.loop.timer(seconds, seconds)

    # -- what the session knows ------------------------------------------------------------

    @property
    def extensions(self) -> Extensions:
        """What the server's last positive EHLO or LHLO reply offered."""
        return self.session.extensions

    @property
    def greeting(self) -> Reply | None:
        return self.session.greeting

    @property
    def content_sent(self) -> bool:
        """A message's content went out and its end-of-data replies are not all in: the
        server may have the message. Still true after a stopped user's connection is
        closed, until the next connection or transaction; a lost connection or timeout
        ends the transaction (its message is then reported failed) and makes it False."""
        return self.session.content_sent

    # -- connection ------------------------------------------------------------------------

    def resolve(self) -> tuple[int, object]:
        """Resolve the server address once; every later connection reuses the result."""
        if self._sockaddr is None:
            self._sockaddr = self.address.resolve(self.family)
        return self._sockaddr

    def open(self) -> None:
        """Connect (stage ``connect``); raises :class:`ConnectError`."""
        if self._transport is not None:
            self.close()
        start, t0 = time.time(), time.perf_counter()
        try:
            family, sockaddr = self.resolve()
            self._transport = SocketTransport.connect(
                family,
                sockaddr,
                timer=self._timer,
                connect_timer=self._connect_timer,
                connect_timeout=self._connect_timeout,
                buffer_size=self.buffer_size,
            )
        except SmtpError as exc:
            self._report(stages.CONNECT, start, t0, 0, None, exc)
            raise
        self.connected = True
        self.fileno = self._transport.fileno
        self.session = Session(self.lmtp)
        self.tls_resumed = False
        header = self.proxy_header
        if header:  # before the server says anything: part of connecting
            try:
                self._transport.send(header, stages.CONNECT)
            except SmtpError as exc:
                self._report(stages.CONNECT, start, t0, 0, None, exc)
                self._fail()
                raise
        self._report(stages.CONNECT, start, t0, len(header or b""), None, None)
        if self.address.tls:  # smtps://: TLS before the greeting
            self._start_tls()

    @property
    def encrypted(self) -> bool:
        """Whether the current connection runs over TLS."""
        return isinstance(self._transport, TlsTransport)

    def _start_tls(self) -> None:
        """The TLS handshake on the open connection (stage ``TLS handshake``); on failure
        the connection is closed and the error raised."""
        transport = self._transport
        if not isinstance(transport, SocketTransport):
            raise LocalProtocolError("TLS is already on" if transport else "not connected")
        context = self.tls_context
        if context is None:
            context = self.tls_context = ssl.create_default_context()
        start, t0 = time.time(), time.perf_counter()
        try:
            layer = handshake(
                transport,
                context,
                self.tls_server_name or self.address.host,
                session=self.tls_session if self.tls_resume else None,
            )
        except SmtpError as exc:
            self._report(stages.TLS, start, t0, 0, None, exc)
            self._fail()
            raise
        self._transport = layer
        self.tls_resumed = layer.session_reused
        self._report(stages.TLS, start, t0, 0, None, None)

    def auth(self, mechanism: str, username: str, secret: str) -> Reply:
        """AUTH with ``mechanism`` (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER; ``secret``
        is the password, or the access token for the OAuth ones), answering the server's
        334 challenges. One stage, ``AUTH``, for the whole exchange, timed from the command
        to the last reply: 235 is a success, anything else is reported as the stage's
        failure and returned (535 wrong credentials, 534 mechanism too weak, 454 try
        later, ...). A ``-v`` trace shows the mechanism, never the credentials."""
        sasl = sasl_mechanism(mechanism, username, secret)
        self._auth_username = username
        start, t0 = time.time(), time.perf_counter()
        report, self.on_stage = self.on_stage, _ignore  # one report, below
        sent = 0
        try:
            data = self.session.auth(sasl.command())
            sent += len(data)
            reply = self._exchange(data)
            while reply.code == 334:
                try:
                    challenge = base64.b64decode(reply.text.strip(), validate=True)
                except ValueError:
                    raise RemoteProtocolError(
                        stages.AUTH, "a 334 challenge that is not base64"
                    ) from None
                try:
                    data = self.session.auth(sasl.respond(challenge))
                except LocalProtocolError as exc:  # the server keeps challenging
                    raise RemoteProtocolError(stages.AUTH, str(exc)) from None
                sent += len(data)
                reply = self._exchange(data)
        except SmtpError as exc:
            self.on_stage = report
            report(stages.AUTH, start, (time.perf_counter() - t0) * 1000.0, sent, None, exc)
            if isinstance(exc, RemoteProtocolError):
                self._fail()
            raise
        finally:
            self.on_stage = report
        error = None if reply.code == 235 else self.rejection(stages.AUTH, reply)
        report(stages.AUTH, start, (time.perf_counter() - t0) * 1000.0, sent, reply, error)
        return reply

    def starttls(self) -> Reply:
        """STARTTLS (stage ``STARTTLS``), then, after its 220, the TLS handshake (stage
        ``TLS handshake``; :class:`TlsError` and the like are raised). Returns the reply:
        anything but 220 is reported and returned, as every refusal. After it, say EHLO
        again: what the server advertised in the clear is forgotten."""
        reply = self._exchange(self.session.starttls())
        if reply.code == 220:
            if self.session.reader.in_reply:  # bytes after the 220, before any TLS
                exc = RemoteProtocolError(stages.STARTTLS, "data after the 220 to STARTTLS")
                self._report_failure(exc)
                self._fail()
                raise exc
            self._start_tls()
            try:
                self.session.tls_started()
            except SmtpError as exc:
                self._report_failure(exc)
                self._fail()
                raise
        return reply

    def close(self) -> None:
        """Close the connection at once (abortively for TCP, as smtp-source). Idempotent."""
        transport = self._transport
        if transport is not None:
            if isinstance(transport, TlsTransport) and transport.session is not None:
                self.tls_session = transport.session  # with its tickets, read by now
            self._transport = None
            self.connected = False
            self.fileno = -1
            transport.close()

    def _stop(self) -> None:
        """Stopped by an exception that is not the server's (a kill, the caller's
        ``on_reply``): close, and owe no reply on the old connection; whether the content
        went out is kept (a stopped user counts such a message as interrupted)."""
        self.session.pending.clear()
        self.close()

    def _fail(self) -> None:
        """After a lost connection or a timeout: the transaction, if any, is over for us."""
        self.session.abort()
        self.close()

    # -- I/O -------------------------------------------------------------------------------

    def _waiting_for(self) -> str:
        pending = self.session.pending
        return pending[0].stage if pending else stages.MESSAGE

    def _trace_out(self, data: bytes, stage: str) -> None:
        transaction = self.session.transaction
        if transaction is not None and transaction.writer.chunked and not transaction.ended:
            for line in _command_lines(data):  # BDAT: the commands, not the chunks
                self.trace(line.decode("utf-8", "surrogateescape"))  # type: ignore[misc]
            return
        if stage is _END_OF_DATA:
            self.trace(".")  # type: ignore[misc]
            return
        if stage is stages.AUTH:  # never the credentials
            words = data.split(b" ")
            shown = "****"
            if data[:5].upper() == b"AUTH ":
                shown = " ".join(w.decode("ascii", "replace").strip() for w in words[:2])
                shown += " ****" if len(words) > 2 else ""
                shown += f" (as {self._auth_username})"  # which account: not a secret
            self.trace(shown)  # type: ignore[misc]
            return
        for line in data.split(b"\r\n")[:-1]:
            self.trace(line.decode("utf-8", "surrogateescape"))  # type: ignore[misc]

    def _trace_in(self, event: Command) -> None:
        for line in event.reply.lines:
            self.trace(f"<<< {line}")  # type: ignore[misc]

    def _report(
        self,
        stage: str,
        start: float,
        t0: float,
        sent: int,
        reply: Reply | None,
        exc: BaseException | None,
    ) -> None:
        self.on_stage(stage, start, (time.perf_counter() - t0) * 1000.0, sent, reply, exc)

    def _report_failure(self, exc: SmtpError) -> None:
        """A lost connection or timeout: report the stage whose reply it cost, once."""
        pending = self.session.pending
        command = pending[0] if pending else None
        if command is not None and command.tag is not None:
            start = command.tag[0]
            elapsed = (time.time() - start) * 1000.0
            self.on_stage(command.stage, start, elapsed, command.size, None, exc)

    @staticmethod
    def rejection(stage: str, reply: Reply) -> ReplyError:
        """The exception describing a non-positive ``reply`` at ``stage``."""
        text = f"{stages.REJECTED.get(stage, stage)}: {reply}"
        if reply.code == 530 and "STARTTLS" in reply.text.upper():
            text += ' (the server wants TLS first: use STARTTLS: starttls = "required", --starttls)'
        return reply_error(stage, reply, text)

    def _drive(
        self,
        data: bytes,
        target: Command | None = None,
        on_reply: Callable[[Command], None] | None = None,
        on_written: Callable[[], None] | None = None,
        then: Callable[[], bool] | None = None,
    ) -> Command:
        """The one loop between the session and the transport: write ``data`` (what the
        session just queued), read and report replies, and go on with what the session
        wants written next, until ``target`` is answered or, without one, until the
        session's transaction has ended. Returns the last command answered.

        Every stage is reported here, timed from the write of its command. A lost
        connection or timeout reports the stage it cost, closes and raises; any other
        exception (``on_reply``'s, a kill) closes and propagates. Writing, stamping,
        reading and reporting are written out, not called: this runs for every command
        of every message.

        ``then()``, called as the content is about to be written, may begin the next
        transaction (``Session.start_mail(..., overlap=True)``) and return True: its
        MAIL, RCPT and DATA then go in the same write, and this drive still returns at
        this transaction's end-of-data reply."""
        session = self.session
        pending, reader, answer = session.pending, session.reader, session.answer
        trace, on_stage = self.trace, self.on_stage
        clock = time.time
        calling = False
        try:
            transport = self._transport
            if transport is None:
                raise lost(self._waiting_for())
            while True:
                if data:
                    content = session.content_sent  # (this write ends a message's content)
                    if then is not None and content and then():
                        data += session.data_to_send()  # the next MAIL, RCPT and DATA
                    command = pending[-1]
                    stage = command.stage
                    if trace is not None:
                        self._trace_out(data, stage)
                    # the reply's time runs from the write to transport.readable_at; a
                    # write batched to the end of the loop turn sets stamp[0] then
                    stamp = [clock()]
                    command.tag = stamp
                    if len(pending) > 1 and pending[-2].tag is None:
                        # a pipelined group: stamp every command it wrote; its first
                        # names the stage a failed write is reported in
                        for command in reversed(pending):
                            if command.tag is not None and command.tag is not stamp:
                                break
                            command.tag = stamp
                            stage = command.stage
                    self.bytes_sent += len(data)
                    # (on_written not after the lone "." of RFC 2920: no message went out)
                    written = on_written if content else None
                    if len(data) <= SEND_SOON_LIMIT:
                        transport.send_soon(data, stamp)  # at the end of this loop turn
                    else:
                        transport.send(data, stage)
                    if written is not None:  # here, in the user's greenlet, not the hub
                        written()
                event = session.next_event() if reader.in_reply else None
                fresh = True  # the first wait arms the reply's deadline, later ones resume it
                while event is None:
                    received = transport.read(fresh)
                    if received is None:
                        raise timed_out(self._waiting_for())
                    fresh = False
                    if received:
                        reply = reader.receive(received)
                        if reply is not None:
                            event = answer(reply)
                    else:
                        event = session.receive(b"")  # hung up: raises ConnectionLost
                        if event is None:
                            raise lost(self._waiting_for())
                if trace is not None:
                    self._trace_in(event)
                start = event.tag[0]
                elapsed = (transport.readable_at - start) * 1000.0
                if elapsed < 0.0:  # read in the loop turn that wrote it (the clocks agree to 1 µs)
                    elapsed = 0.0
                sent = event.size
                event.size = 0  # LMTP: later replies wrote nothing more
                reply = event.reply
                if event.ok:
                    on_stage(event.stage, start, elapsed, sent, reply, None)
                else:
                    error = self.rejection(event.stage, reply)
                    on_stage(event.stage, start, elapsed, sent, reply, error)
                    if on_reply is not None:
                        calling = True  # what it raises is the caller's, not the server's
                        on_reply(event)
                        calling = False
                if event is target or event.done is not None:
                    return event
                # (replies still owed in a pipelined group: nothing to write yet)
                data = b"" if target is not None or pending else session.data_to_send()
        except RemoteProtocolError:
            if calling:
                self._stop()
                raise
            exc = lost(self._waiting_for())
            self._report_failure(exc)
            self._fail()
            raise exc from None
        except SmtpError as exc:
            if calling:
                self._stop()
                raise
            self._report_failure(exc)
            self._fail()
            raise
        except BaseException:
            self._stop()
            raise

    def _exchange(self, data: bytes) -> Reply:
        """Write the command the session just queued, read its reply, report its stage."""
        return self._drive(data, self.session.pending[-1]).reply

    # -- session commands ------------------------------------------------------------------

    def read_greeting(self) -> Reply:
        """Read the server's greeting (stage ``banner``), timed from now."""
        pending = self.session.pending
        if not pending or pending[0].stage is not stages.BANNER:
            raise RuntimeError("the greeting is read once, right after connecting")
        banner = pending[0]
        banner.tag = [time.time()]
        return self._drive(b"", banner).reply

    def connect(self) -> Reply:
        """:meth:`open` then :meth:`read_greeting`."""
        self.open()
        return self.read_greeting()

    def helo(self, name: str) -> Reply:
        return self._exchange(self.session.hello(name, stages.HELO))

    def ehlo(self, name: str) -> Reply:
        return self._exchange(self.session.hello(name, stages.EHLO))

    def lhlo(self, name: str) -> Reply:
        return self._exchange(self.session.hello(name, stages.LHLO))

    def hello(self, name: str, command: str | None = None) -> Reply:
        """HELO, EHLO or LHLO: ``command`` names it; by default LHLO for LMTP, else HELO."""
        return self._exchange(self.session.hello(name, command))

    def xclient(self, address: str, helo: str, name: str | None = None) -> Reply:
        """XCLIENT (Postfix): the server starts the session again as if ``address`` had
        connected, greeting with 220 (stage ``XCLIENT``); say EHLO again after it."""
        return self._exchange(self.session.xclient(xclient_command(address, helo, name)))

    def xforward(self, address: str, helo: str, name: str | None = None) -> Reply:
        """XFORWARD (Postfix): the next transaction is ``address``'s (stage ``XFORWARD``)."""
        return self._exchange(self.session.xforward(xforward_command(address, helo, name)))

    def mail(self, sender: str, params: Iterable[str] = ()) -> Reply:
        return self._exchange(self.session.mail(sender, params))

    def rcpt(self, recipient: str, params: Iterable[str] = ()) -> Reply:
        return self._exchange(self.session.rcpt(recipient, params))

    def data(self) -> Reply:
        """DATA; success means exactly 354."""
        return self._exchange(self.session.data())

    def content(self, payload: bytes) -> list[Reply]:
        """After a 354: the content (dot-stuffed, ending with the ``.`` line) and its
        end-of-data replies, one per accepted recipient for LMTP, each reported."""
        session = self.session
        data = session.content(payload)
        command = session.pending[-1]
        replies: list[Reply] = []
        while True:
            event = self._drive(data, command)
            replies.append(event.reply)
            data = b""
            if command.owed <= 0 or session.closing:
                return replies

    def rset(self) -> Reply:
        return self._exchange(self.session.rset())

    def noop(self) -> Reply:
        return self._exchange(self.session.noop())

    def quit(self) -> Reply | None:
        """QUIT, read the reply whatever its code, and close. Returns None when the
        connection was already closed."""
        if self._transport is None:
            return None
        try:
            reply = self._exchange(self.session.quit())
        finally:
            self.close()
        return reply

    # -- a whole transaction ---------------------------------------------------------------

    def transaction(
        self,
        sender: str,
        recipients: Iterable[str],
        payload: bytes,
        *,
        mail_params: Iterable[str] = (),
        rcpt_params: Callable[[str], tuple[str, ...]] | None = None,
        writer: Writer = DATA_WRITER,
        pipelining: bool = False,
        on_reply: Callable[[Command], None] | None = None,
        on_written: Callable[[], None] | None = None,
        then: Callable[[], bool] | None = None,
    ) -> Transaction:
        """One mail transaction, driven by the session machine: MAIL, a RCPT per
        recipient, DATA, the content (``payload``, framed by ``writer``) and the
        end-of-data reply, one per accepted recipient for LMTP. ``pipelining`` writes MAIL,
        the RCPTs and DATA as one group. Every reply is reported as its stage.

        Returns the ended :class:`Transaction`, delivered or not: policy is the caller's.
        ``on_reply(command)`` sees every refused reply as it comes and may raise to stop
        at once (the connection is then closed); ``on_written()`` is called once the content is
        written, before its replies (smtp-source's ``-c``). A lost connection or timeout
        closes the connection and raises."""
        if isinstance(recipients, (list, tuple)) and not recipients:
            raise LocalProtocolError("a mail transaction needs at least one recipient")
        session = self.session
        transaction = session.start_mail(
            sender,
            recipients,
            payload,
            writer=writer,
            pipelining=pipelining,
            mail_params=tuple(mail_params),
            rcpt_params=rcpt_params,
        )
        self._drive(session.data_to_send(), None, on_reply, on_written, then)
        return transaction

    def resume(
        self,
        on_reply: Callable[[Command], None] | None = None,
        on_written: Callable[[], None] | None = None,
        then: Callable[[], bool] | None = None,
    ) -> Transaction:
        """Drive to its end the transaction that the previous one's ``then()`` began (its
        commands are written; some replies may be read already): as :meth:`transaction`."""
        transaction = self.session.transaction
        if transaction is None:
            raise LocalProtocolError("no transaction to resume")
        if not transaction.ended:
            self._drive(b"", None, on_reply, on_written, then)
        return transaction

    def send_mail(
        self,
        sender: str,
        recipients: Sequence[str],
        payload: bytes,
        *,
        mail_params: Iterable[str] = (),
        rcpt_params: Callable[[str], tuple[str, ...]] | None = None,
        writer: Writer = DATA_WRITER,
        pipelining: bool = False,
    ) -> MailResult:
        """One mail transaction (see :meth:`transaction`; ``payload`` is dot-stuffed and
        ends with the ``.`` line, as :func:`~locust_smtp.protocol.data_payload` makes it),
        reported as the stage ``message`` besides each of its own stages.

        Raises the :class:`ReplyError` that ended it (MAIL refused, every RCPT refused,
        DATA not answered 354, the end-of-data reply refused; for LMTP, every recipient's)
        or the I/O error. A message that some recipients refused (at RCPT, or in their
        LMTP end-of-data reply) but others took is a success: see the result. After a
        421 or 521 the connection is closed; after another refused MAIL, RCPT or DATA the
        server still holds a transaction: call :meth:`rset`."""
        start, t0 = time.time(), time.perf_counter()
        before = self.bytes_sent
        try:
            transaction = self.transaction(
                sender,
                recipients,
                payload,
                mail_params=mail_params,
                rcpt_params=rcpt_params,
                writer=writer,
                pipelining=pipelining,
            )
            if self.session.closing:
                self.close()
            failed = transaction.failed
            if failed is not None:
                raise self.rejection(failed.stage, transaction.failure)  # type: ignore[arg-type]
        except SmtpError as exc:
            self._report(stages.MESSAGE, start, t0, self.bytes_sent - before, None, exc)
            raise
        sent = self.bytes_sent - before
        replies = transaction.replies
        self._report(stages.MESSAGE, start, t0, sent, replies[-1], None)
        return MailResult(
            tuple(transaction.accepted), tuple(transaction.rejected), tuple(replies), sent
        )

    def __enter__(self) -> SmtpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _command_lines(data: bytes) -> list[bytes]:
    """The command lines of a write that may hold BDAT chunks: each ``BDAT n`` line,
    without the n bytes of content after it."""
    lines = []
    at = 0
    while at < len(data):
        end = data.find(b"\r\n", at)
        if end < 0:
            break
        line = data[at:end]
        lines.append(line)
        at = end + 2
        if line[:5].upper() == b"BDAT ":
            words = line.split()
            if len(words) > 1 and words[1].isdigit():
                at += int(words[1])
    return lines
