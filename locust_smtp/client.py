"""A gevent-cooperative SMTP/LMTP client over one socket.

A thin loop around the sans-IO core: it writes the bytes that
:mod:`locust_smtp._commands` and :mod:`locust_smtp._content` produce and feeds
what it reads to a :class:`~locust_smtp._replies.ReplyReader`.

Every stage is timed with :func:`time.perf_counter` and reported to the
``on_stage`` callback, success or failure, exactly once. Reply rejections are
*reported* and returned (the caller decides what to do, as smtp-source's
``-A`` needs); lost connections and timeouts close the socket and raise.

The socket is non-blocking and waited on with libev watchers directly rather
than through ``gevent.socket``: a command round trip is then one ``send``, one
wait and one ``recv``, which roughly halves the CPU per message.
"""

from __future__ import annotations

import _socket
import errno
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gevent import getcurrent, sleep
from gevent.hub import get_hub

from .protocol import _commands as commands
from .protocol import stages
from .protocol._errors import (
    ConnectError,
    ConnectionLost,
    RemoteProtocolError,
    ReplyError,
    SmtpError,
    SmtpTimeout,
    SocketError,
    reply_error,
)
from .protocol._extensions import Extensions
from .protocol._replies import Reply, ReplyReader
from .protocol.address import ServerAddress, parse_host
from .protocol.codes import CLOSING_CODES, START_MAIL_INPUT

DEFAULT_TIMEOUT = 300.0
_READ, _WRITE = 1, 2
_RECV_SIZE = 65536
_IN_PROGRESS = (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK)
_NO_LINGER = struct.pack("ii", 1, 0)
_READY = object()
_TIMED_OUT = object()

StageCallback = Callable[[str, float, float, int, "Reply | None", "BaseException | None"], None]
"""``on_stage(stage, start_time, response_time_ms, bytes_sent, reply, exception)``:
``start_time`` is ``time.time()`` at the start of the stage, ``exception`` is None on
success, a :class:`ReplyError` for a rejection, or the error that ended the stage."""


def _ignore(*_args: object) -> None:
    return None


def _lost(stage: str) -> ConnectionLost:
    """smtp-source's words for a connection that broke during ``stage``."""
    return ConnectionLost(stage, f"lost connection while {stages.CONTEXT[stage]}")


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
    ) -> None:
        self.address = parse_host(address) if isinstance(address, str) else address
        if lmtp is None:
            lmtp = bool(self.address.lmtp)
        self.lmtp = lmtp
        self._hub = get_hub()
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.family = family
        self.buffer_size = buffer_size
        self.on_stage: StageCallback = on_stage or _ignore
        self.trace = trace
        self.extensions = Extensions()
        self.greeting: Reply | None = None
        self._sockaddr = sockaddr
        """``(family, address)`` already resolved, if given: every connection uses it."""
        self._sock: _socket.socket | None = None
        self._reader = ReplyReader()
        self._read_watcher: Any = None
        self._write_watcher: Any = None
        self.bytes_sent = 0
        """Bytes written on this client's connections so far."""
        self.awaiting_end_of_data = False
        """True between writing a message's content and reading its end-of-data replies:
        the server may have taken the message even if we never see the reply."""

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

    @property
    def connect_timeout(self) -> float:
        """Seconds one connect attempt may take."""
        return self._connect_timeout

    @connect_timeout.setter
    def connect_timeout(self, seconds: float) -> None:
        self._connect_timeout = seconds
        self._connect_timer = self._hub.loop.timer(seconds, seconds)

    # -- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def fileno(self) -> int:
        """The socket's descriptor (-1 when not connected)."""
        return self._sock.fileno() if self._sock is not None else -1

    def resolve(self) -> tuple[int, object]:
        """Resolve the server address once; every later connection reuses the result."""
        if self._sockaddr is None:
            self._sockaddr = self.address.resolve(self.family)
        return self._sockaddr

    def open(self) -> None:
        """Connect the socket (stage ``connect``); raises :class:`ConnectError`."""
        if self._sock is not None:
            self.close()
        start, t0 = time.time(), time.perf_counter()
        try:
            self._sock = self._connect()
        except SmtpError as exc:
            self._report(stages.CONNECT, start, t0, 0, None, exc)
            raise
        self._reader = ReplyReader()
        self.extensions = Extensions()
        self._report(stages.CONNECT, start, t0, 0, None, None)

    def _connect(self) -> _socket.socket:
        family, sockaddr = self.resolve()
        # the C-level socket: Locust monkey-patches socket.socket, and its cooperative
        # wrapper would cost a Python layer per send and recv; we do our own waiting
        try:
            sock = _socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:  # out of descriptors (EMFILE, ENFILE), memory, ...
            text = f"socket: {os.strerror(exc.errno or 0)}"
            raise SocketError(stages.CONNECT, text, exc.errno) from None
        try:
            sock.setblocking(False)
            if self.buffer_size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.buffer_size)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer_size)
            deadline = time.monotonic() + self.connect_timeout
            err = sock.connect_ex(sockaddr)  # type: ignore[arg-type]
            while err == errno.EAGAIN and family == socket.AF_UNIX:
                # a full UNIX listen queue: nothing is in progress, try again shortly
                if time.monotonic() > deadline:
                    err = errno.ETIMEDOUT
                    break
                sleep(0.001)
                err = sock.connect_ex(sockaddr)  # type: ignore[arg-type]
            loop = self._hub.loop
            self._read_watcher = loop.io(sock.fileno(), _READ)
            self._write_watcher = loop.io(sock.fileno(), _WRITE)
            if err in _IN_PROGRESS:
                if self._wait_for(self._write_watcher, self._connect_timer):
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                else:
                    err = errno.ETIMEDOUT
            if err:
                raise ConnectError(stages.CONNECT, f"connect: {os.strerror(err)}", err)
        except BaseException:
            self._close_watchers()
            sock.close()
            raise
        return sock

    def _close_watchers(self) -> None:
        for watcher in (self._read_watcher, self._write_watcher):
            if watcher is not None:
                watcher.close()
        self._read_watcher = self._write_watcher = None

    def close(self) -> None:
        """Close the socket at once (abortively for TCP, as smtp-source). Idempotent."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        self._close_watchers()
        try:
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
        except OSError:
            pass
        sock.close()

    # -- I/O -------------------------------------------------------------------------------

    def _wait_for(self, watcher: Any, timer: Any) -> bool:
        """Wait until ``watcher`` fires (True) or ``timer`` does (False), the timer armed
        afresh with its full time.

        Both watchers switch straight back into this greenlet; stopping them in
        ``finally`` also clears a pending event, so a late one cannot wake us twice."""
        switch = getcurrent().switch
        watcher.start(switch, _READY)
        timer.again(switch, _TIMED_OUT)
        try:
            result = self._hub.switch()
        finally:
            watcher.stop()
            timer.stop()
        return result is _READY

    def _wait(self, watcher: Any, stage: str) -> None:
        """Wait for ``watcher``; raise SmtpTimeout after the client's timeout."""
        if not self._wait_for(watcher, self._timer):
            raise SmtpTimeout(stage, f"timeout while {stages.CONTEXT[stage]}")

    def _send(self, data: bytes, stage: str) -> None:
        sock = self._sock
        if sock is None:
            raise _lost(stage)
        self.bytes_sent += len(data)
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            raise _lost(stage) from None
        if sent < len(data):
            self._send_rest(memoryview(data)[sent:], stage)

    def _send_rest(self, view: memoryview, stage: str) -> None:
        while view:
            self._wait(self._write_watcher, stage)
            sock = self._sock
            if sock is None:
                raise _lost(stage)
            try:
                sent = sock.send(view)
            except BlockingIOError:
                continue
            except OSError:
                raise _lost(stage) from None
            view = view[sent:]

    def _read_reply(self, stage: str) -> Reply:
        # the hot path of every command: no helper calls between the wait and the parse
        reader = self._reader
        fresh = True  # the first wait arms the reply's deadline, later ones resume it
        try:
            reply = reader.next_reply() if reader.in_reply else None
            while reply is None:
                sock = self._sock
                if sock is None:
                    raise _lost(stage)
                watcher, timer = self._read_watcher, self._timer
                switch = getcurrent().switch
                watcher.start(switch, _READY)
                if fresh:
                    timer.again(switch, _TIMED_OUT)
                    fresh = False
                else:
                    timer.start(switch, _TIMED_OUT)
                try:
                    woke = self._hub.switch()
                finally:
                    watcher.stop()
                    timer.stop()
                if woke is not _READY:
                    raise SmtpTimeout(stage, f"timeout while {stages.CONTEXT[stage]}")
                try:
                    data = sock.recv(_RECV_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    if reader.in_reply:
                        reader.feed_eof()
                        reader.next_reply()
                    raise _lost(stage)
                reply = reader.receive(data)
        except RemoteProtocolError:
            raise _lost(stage) from None
        if self.trace is not None:
            for line in reply.lines:
                self.trace(f"<<< {line}")
        return reply

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

    def _exchange(self, stage: str, data: bytes, expect: int = 0) -> Reply:
        """Send ``data``, read one reply, report the stage. ``expect`` is an exact code
        required for success (DATA's 354); otherwise any 2xx is success."""
        if self.trace is not None:
            self.trace(data[:-2].decode("utf-8", "surrogateescape"))
        start, t0 = time.time(), time.perf_counter()
        try:
            self._send(data, stage)
            reply = self._read_reply(stage)
        except SmtpError as exc:
            self.close()
            self._report(stage, start, t0, len(data), None, exc)
            raise
        except BaseException:
            self.close()
            raise
        code = reply.code
        if (code == expect) if expect else (200 <= code < 300):
            self.on_stage(stage, start, (time.perf_counter() - t0) * 1000.0, len(data), reply, None)
        else:
            self._report(stage, start, t0, len(data), reply, self.rejection(stage, reply))
        return reply

    @staticmethod
    def rejection(stage: str, reply: Reply) -> ReplyError:
        """The exception describing a non-positive ``reply`` at ``stage``."""
        return reply_error(stage, reply, f"{stages.REJECTED.get(stage, stage)}: {reply}")

    # -- session commands ------------------------------------------------------------------

    def read_greeting(self) -> Reply:
        """Read the server's greeting (stage ``banner``)."""
        start, t0 = time.time(), time.perf_counter()
        try:
            reply = self._read_reply(stages.BANNER)
        except SmtpError as exc:
            self.close()
            self._report(stages.BANNER, start, t0, 0, None, exc)
            raise
        except BaseException:
            self.close()
            raise
        self.greeting = reply
        ok = reply.positive
        self._report(
            stages.BANNER, start, t0, 0, reply, None if ok else self.rejection(stages.BANNER, reply)
        )
        return reply

    def connect(self) -> Reply:
        """:meth:`open` then :meth:`read_greeting`."""
        self.open()
        return self.read_greeting()

    def helo(self, name: str) -> Reply:
        return self._exchange(stages.HELO, commands.helo(name))

    def ehlo(self, name: str) -> Reply:
        reply = self._exchange(stages.EHLO, commands.ehlo(name))
        if reply.positive:
            self.extensions = Extensions.from_reply(reply)
        return reply

    def lhlo(self, name: str) -> Reply:
        reply = self._exchange(stages.LHLO, commands.lhlo(name))
        if reply.positive:
            self.extensions = Extensions.from_reply(reply)
        return reply

    def hello(self, name: str, command: str | None = None) -> Reply:
        """HELO, EHLO or LHLO: ``command`` names it; by default LHLO for LMTP, else HELO."""
        stage = stages.hello_stage(command or ("LHLO" if self.lmtp else "HELO"))
        method: Callable[[str], Reply] = getattr(self, stage.lower())  # helo, ehlo, lhlo
        return method(name)

    def mail(self, sender: str, params: Iterable[str] = ()) -> Reply:
        return self._exchange(stages.MAIL, commands.mail_from(sender, params))

    def rcpt(self, recipient: str, params: Iterable[str] = ()) -> Reply:
        return self._exchange(stages.RCPT, commands.rcpt_to(recipient, params))

    def data(self) -> Reply:
        """DATA; success means exactly 354."""
        return self._exchange(stages.DATA, commands.DATA, START_MAIL_INPUT)

    def send_content(
        self, payload: bytes, replies: int = 1, on_written: Callable[[], None] | None = None
    ) -> list[Reply]:
        """Send the message (``payload`` is dot-stuffed and ends with the ``.`` line) and read
        ``replies`` end-of-data replies: 1 for SMTP, one per accepted recipient for LMTP.

        Each reply is reported as one ``end of data`` stage, timed from the start of the
        content. ``on_written`` is called once the content is written, before any reply
        (smtp-source's ``-c`` counter). A reply of 421 or 521 ends the reading. A lost
        connection or timeout closes the socket and raises."""
        stage = stages.END_OF_DATA
        if self.trace is not None:
            self.trace(".")
        start, t0 = time.time(), time.perf_counter()
        sent = len(payload)
        got: list[Reply] = []
        try:
            self.awaiting_end_of_data = True
            self._send(payload, stage)
            if on_written is not None:
                on_written()
            for _ in range(replies):
                reply = self._read_reply(stage)
                got.append(reply)
                self._report(
                    stage,
                    start,
                    t0,
                    sent,
                    reply,
                    None if reply.positive else self.rejection(stage, reply),
                )
                sent = 0
                if reply.code in CLOSING_CODES:
                    break
        except SmtpError as exc:
            self.awaiting_end_of_data = False
            self.close()
            self._report(stage, start, t0, sent, None, exc)
            raise
        except BaseException:
            self.close()
            raise
        self.awaiting_end_of_data = False
        return got

    def rset(self) -> Reply:
        return self._exchange(stages.RSET, commands.RSET)

    def noop(self) -> Reply:
        return self._exchange(stages.NOOP, commands.NOOP)

    def quit(self) -> Reply | None:
        """QUIT, read the reply whatever its code, and close. Returns None when the
        connection was already closed."""
        if self._sock is None:
            return None
        try:
            reply = self._exchange(stages.QUIT, commands.QUIT, expect=0)
        finally:
            self.close()
        return reply

    # -- a whole transaction ---------------------------------------------------------------

    def send_mail(
        self,
        sender: str,
        recipients: Sequence[str],
        payload: bytes,
        *,
        mail_params: Iterable[str] = (),
    ) -> MailResult:
        """One mail transaction: MAIL, a RCPT per recipient, DATA, the content and the
        end-of-data reply (one per accepted recipient for LMTP), reported as the stage
        ``message`` besides each of its own stages.

        Raises the :class:`ReplyError` that ended it (MAIL refused, every RCPT refused,
        DATA not answered 354, the end-of-data reply refused; for LMTP, every recipient's)
        or the I/O error. A message that some recipients refused (at RCPT, or in their
        LMTP end-of-data reply) but others took is a success: see the result. After a
        refused MAIL, RCPT or DATA the server still holds a transaction: call :meth:`rset`
        (or :meth:`close` if the reply was 421/521, when the server hangs up)."""
        start, t0 = time.time(), time.perf_counter()
        before = self.bytes_sent
        try:
            reply = self.mail(sender, mail_params)
            if not reply.positive:
                raise self.rejection(stages.MAIL, reply)
            accepted: list[str] = []
            rejected: list[tuple[str, Reply]] = []
            for recipient in recipients:
                reply = self.rcpt(recipient)
                if reply.positive:
                    accepted.append(recipient)
                    continue
                rejected.append((recipient, reply))
                if reply.code in CLOSING_CODES:
                    self.close()
                    raise self.rejection(stages.RCPT, reply)
            if not accepted:
                raise self.rejection(stages.RCPT, rejected[0][1])
            reply = self.data()
            if reply.code != START_MAIL_INPUT:
                raise self.rejection(stages.DATA, reply)
            replies = self.send_content(payload, len(accepted) if self.lmtp else 1)
            if not any(reply.positive for reply in replies):
                raise self.rejection(stages.END_OF_DATA, replies[0])
            if replies[-1].code in CLOSING_CODES:  # LMTP: delivered to some, then 421
                self.close()
        except SmtpError as exc:
            if isinstance(exc, ConnectionLost) or getattr(exc, "code", 0) in CLOSING_CODES:
                self.close()
            self._report(stages.MESSAGE, start, t0, self.bytes_sent - before, None, exc)
            raise
        sent = self.bytes_sent - before
        self._report(stages.MESSAGE, start, t0, sent, replies[-1], None)
        return MailResult(tuple(accepted), tuple(rejected), tuple(replies), sent)

    def __enter__(self) -> SmtpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
