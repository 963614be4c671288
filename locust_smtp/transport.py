"""The transport seam: a byte stream to a peer, waited on cooperatively under gevent.

:class:`SocketTransport` is the plain one (TCP over IPv4/IPv6, or a UNIX socket):
a non-blocking C-level socket waited on with libev watchers directly rather
than through ``gevent.socket``, so that a command round trip is one ``send``,
one wait and one ``recv``, about half the CPU of the cooperative socket. The
client (:mod:`locust_smtp.client`) and the bundled sink (:mod:`locust_smtp.sink`)
both use it. TLS (STARTTLS, SMTPS) will be a second transport with the same
methods plus ``start_tls``; nothing above this module touches a socket.

Timeouts are libev timers owned by the caller (one per kind of wait, see
:meth:`SocketTransport.read`); errors are the protocol's
(:class:`~locust_smtp.protocol.SmtpTimeout`, :class:`~locust_smtp.protocol.ConnectionLost`,
:class:`~locust_smtp.protocol.ConnectError`) with smtp-source's wording for the stage.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from gevent import getcurrent, sleep
from gevent.hub import get_hub

from .protocol import stages
from .protocol._errors import ConnectError, ConnectionLost, SmtpTimeout, SocketError

_READ, _WRITE = 1, 2
RECV_SIZE = 65536
_IN_PROGRESS = (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK)
_NO_LINGER = struct.pack("ii", 1, 0)
_READY = object()
_TIMED_OUT = object()


SEND_SOON_LIMIT = 8192
"""Writes up to this size may wait for the end of the loop turn (:class:`WriteBatch`);
larger ones (message content) are written at once."""


class WriteBatch:
    """The writes of one turn of the event loop, made together at its end.

    Each greenlet that gets a reply writes its next command; written at once, every
    command wakes the server's process if it went idle in between, and on a virtual
    machine that wake-up costs the writer more than the write itself (a third of
    locust-smtp's CPU with smtp-sink). Queued until every greenlet woken in this turn
    has run, the commands go out back to back: the server wakes once and finds them
    all. Each command is stamped with the time it is actually written."""

    def __init__(self, hub: Any) -> None:
        self._loop = hub.loop
        self.queue: list[tuple[Any, ...]] = []
        """``(transport, data, stamp)`` of this turn; the transports append to it
        directly (one call per command, not two)."""

    def schedule(self) -> None:
        """Flush at the end of this turn (:meth:`SocketTransport.send_soon` calls it for
        the first write queued in a turn)."""
        self._loop.run_callback(self.flush)

    def flush(self) -> None:
        """Write what the turn queued. Runs in the hub: calls no code but this module's,
        and a failed write only shuts its connection down (its reader sees it)."""
        queue = self.queue.copy()
        self.queue.clear()
        clock = time.time
        for transport, data, stamp in queue:
            sock = transport.sock
            if sock is None:  # closed meanwhile (a stopped user): nothing to write
                continue
            stamp[0] = clock()
            if transport._unwritten is not None:  # behind an unfinished write (unused today)
                transport._write_later(data)
                continue
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                transport._shut_down()
                continue
            if sent < len(data):
                transport._write_later(memoryview(data)[sent:])


_batches: dict[Any, WriteBatch] = {}
_loop_clocks: dict[Any, Callable[[], float]] = {}


def _poll_clock(hub: Any) -> Callable[[], float]:
    """The loop's time of its last poll if it reads ``time.time()``'s clock (libev: the
    default), else ``time.time`` itself (libuv's loop time is monotonic from an
    arbitrary start: mixed with the wall clock, every reply would time at 0)."""
    clock = _loop_clocks.get(hub)
    if clock is None:
        now = hub.loop.now
        clock = _loop_clocks[hub] = now if abs(now() - time.time()) < 1.0 else time.time
    return clock


def _batch_of(hub: Any) -> WriteBatch:
    batch = _batches.get(hub)
    if batch is None:
        batch = _batches[hub] = WriteBatch(hub)
    return batch


def lost(stage: str) -> ConnectionLost:
    """smtp-source's words for a connection that broke during ``stage``."""
    return ConnectionLost(stage, f"lost connection while {stages.CONTEXT[stage]}")


def timed_out(stage: str) -> SmtpTimeout:
    return SmtpTimeout(stage, f"timeout while {stages.CONTEXT[stage]}")


class SocketTransport:
    """One connected stream socket.

    ``timer`` bounds every wait (a libev timer, or None to wait for ever): reads arm it
    afresh or resume it (see :meth:`read`), each wait to write more arms it afresh."""

    __slots__ = (
        "_batch",
        "_hub",
        "_now",
        "_read_watcher",
        "_unwritten",
        "_write_queue",
        "_write_watcher",
        "fileno",
        "readable_at",
        "sock",
        "timer",
    )

    def __init__(self, sock: _socket.socket, timer: Any = None) -> None:
        sock.setblocking(False)
        self.sock: _socket.socket | None = sock
        self.fileno = sock.fileno()
        """The socket's descriptor; -1 once closed."""
        self.timer = timer
        self._hub = hub = get_hub()
        self._read_watcher = hub.loop.io(sock.fileno(), _READ)
        self._write_watcher = hub.loop.io(sock.fileno(), _WRITE)
        self._now = _poll_clock(hub)
        self._batch = _batch_of(hub)
        self._write_queue = self._batch.queue
        self._unwritten: memoryview | None = None
        """The rest of a batched write waiting for room in the socket buffer."""
        self.readable_at = 0.0
        """``time.time()``'s clock when the event loop last saw data to read: the end of
        the poll that woke :meth:`read`, not when this greenlet got to run, so that time
        spent on other connections' replies in the same loop turn is not counted as the
        peer's."""

    @classmethod
    def connect(
        cls,
        family: int,
        sockaddr: object,
        *,
        timer: Any = None,
        connect_timer: Any = None,
        connect_timeout: float = 0.0,
        buffer_size: int | None = None,
    ) -> SocketTransport:
        """Connect to ``sockaddr``; raises :class:`ConnectError` (:class:`SocketError` when
        no socket could be made at all). ``connect_timer`` bounds the wait for the
        connection, ``connect_timeout`` (its seconds) a UNIX socket's full listen queue."""
        # the C-level socket: Locust monkey-patches socket.socket, and its cooperative
        # wrapper would cost a Python layer per send and recv; we do our own waiting
        try:
            sock = _socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:  # out of descriptors (EMFILE, ENFILE), memory, ...
            text = f"socket: {os.strerror(exc.errno or 0)}"
            raise SocketError(stages.CONNECT, text, exc.errno) from None
        transport = None
        try:
            if buffer_size:  # smtp-source -T, before connecting (the TCP window)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_size)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
            transport = cls(sock, timer)
            deadline = time.monotonic() + connect_timeout
            err = sock.connect_ex(sockaddr)  # type: ignore[arg-type]
            while err == errno.EAGAIN and family == socket.AF_UNIX:
                # a full UNIX listen queue: nothing is in progress, try again shortly
                if time.monotonic() > deadline:
                    err = errno.ETIMEDOUT
                    break
                sleep(0.001)
                err = sock.connect_ex(sockaddr)  # type: ignore[arg-type]
            if err in _IN_PROGRESS:
                if transport._wait(transport._write_watcher, connect_timer, True):
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                else:
                    err = errno.ETIMEDOUT
            if err:
                raise ConnectError(stages.CONNECT, f"connect: {os.strerror(err)}", err)
        except BaseException:
            if transport is not None:
                transport.close(abort=False)
            else:
                sock.close()
            raise
        return transport

    def _wait(self, watcher: Any, timer: Any, fresh: bool) -> bool:
        """Wait until ``watcher`` fires (True) or ``timer`` does (False): armed afresh
        with its full time if ``fresh``, else resumed with what it had left.

        Both switch straight back into this greenlet; stopping them in ``finally`` also
        clears a pending event, so a late one cannot wake us twice."""
        switch = getcurrent().switch
        watcher.start(switch, _READY)
        if timer is not None:
            if fresh:
                timer.again(switch, _TIMED_OUT)
            else:
                timer.start(switch, _TIMED_OUT)
        try:
            result = self._hub.switch()
        finally:
            watcher.stop()
            if timer is not None:
                timer.stop()
        return result is _READY

    def send_soon(self, data: bytes, stamp: list[float]) -> None:
        """Write ``data`` at the end of this turn of the event loop, together with what
        every other connection queued in it (:class:`WriteBatch`); ``stamp[0]`` is set to
        ``time.time()`` as it is written.

        A connection that breaks meanwhile is shut down, so that the wait for its reply
        ends as a lost connection. What does not fit at once is written as the peer
        reads it (a write watcher; the wait for the reply, with its own timer, bounds
        it: a peer that never reads ends in a timeout)."""
        queue = self._write_queue
        queue.append((self, data, stamp))
        if len(queue) == 1:
            self._batch.schedule()

    def _write_later(self, data: bytes | memoryview) -> None:
        """Keep ``data`` (the rest of a batched write) for :meth:`_on_writable`."""
        if self._unwritten is not None:
            self._unwritten = memoryview(bytes(self._unwritten) + bytes(data))
            return
        self._unwritten = memoryview(data)
        watcher = self._write_watcher
        if watcher is not None and not watcher.active:
            watcher.start(self._on_writable)

    def _on_writable(self) -> None:
        """Write-watcher callback (in the hub): more of :attr:`_unwritten` fits."""
        sock, view = self.sock, self._unwritten
        if sock is None or view is None:
            self._write_watcher.stop()
            return
        try:
            sent = sock.send(view)
        except BlockingIOError:
            return
        except OSError:
            sent = -1
        if sent < 0:
            self._unwritten = None
            self._write_watcher.stop()
            self._shut_down()
        elif sent < len(view):
            self._unwritten = view[sent:]
        else:
            self._unwritten = None
            self._write_watcher.stop()

    def _shut_down(self) -> None:
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def send(self, data: bytes, stage: str) -> None:
        """Write all of ``data``, waiting as needed; a broken connection raises
        :class:`ConnectionLost`, a wait longer than the timer :class:`SmtpTimeout`."""
        sock = self.sock
        if sock is None:
            raise lost(stage)
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            raise lost(stage) from None
        if sent < len(data):
            self._send_rest(memoryview(data)[sent:], stage)

    def _send_rest(self, view: memoryview, stage: str) -> None:
        while view:
            if not self._wait(self._write_watcher, self.timer, True):
                raise timed_out(stage)
            sock = self.sock
            if sock is None:
                raise lost(stage)
            try:
                sent = sock.send(view)
            except BlockingIOError:
                continue
            except OSError:
                raise lost(stage) from None
            view = view[sent:]

    def read(self, fresh: bool = True) -> bytes | None:
        """Wait until the peer sends something and return it: ``b""`` when it hung up,
        None when the timer ran out first (the caller knows what it was waiting for).

        ``fresh`` arms the timer with its full time (the first wait for a reply); False
        resumes it with what the reply's earlier waits left, so that the timer bounds a
        whole reply however its bytes trickle in."""
        sock = self.sock
        while sock is not None:
            # the hot path of every command: the wait is written out, not a call
            watcher, timer = self._read_watcher, self.timer
            switch = getcurrent().switch
            watcher.start(switch, _READY)
            if timer is not None:
                if fresh:
                    # update=False: armed from the loop's time of this turn (the poll's end,
                    # at most a turn's work early), which also keeps that time what
                    # readable_at reads, instead of asking the clock again for every read
                    timer.again(switch, _TIMED_OUT, update=False)
                    fresh = False
                else:
                    timer.start(switch, _TIMED_OUT)
            try:
                woke = self._hub.switch()
            finally:
                watcher.stop()
                if timer is not None:
                    timer.stop()
            if woke is not _READY:
                return None
            self.readable_at = self._now()
            try:
                return sock.recv(RECV_SIZE)
            except BlockingIOError:
                sock = self.sock
                continue
            except OSError:
                return b""
        return b""

    def close(self, abort: bool = True) -> None:
        """Close at once; ``abort`` resets a TCP connection (SO_LINGER 0) as smtp-source
        does rather than leaving it in TIME_WAIT. Idempotent."""
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self.fileno = -1
        self._read_watcher.close()
        self._write_watcher.close()
        if abort:
            try:
                if sock.family != socket.AF_UNIX:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
            except OSError:
                pass
        sock.close()
