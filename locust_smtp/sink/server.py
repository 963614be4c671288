"""The sink's server: a gevent accept loop, one greenlet per connection, each moving
bytes between a :class:`~locust_smtp.transport.SocketTransport` and a
:class:`~.state.Session`."""

from __future__ import annotations

import _socket
import itertools
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.socket
from gevent.server import StreamServer

from ..protocol import stages
from ..protocol._errors import SmtpError
from ..protocol.address import parse_source_address
from ..tls import TlsTransport, handshake
from ..transport import SocketTransport
from .state import Counters, Session, SinkConfig

SPIN = 0.0005
"""Seconds before a delayed reply is due when the sink stops sleeping and yields in a
loop until it is: a libev timer wakes up to about half a millisecond late."""
SPINNERS = 4
"""At most this many connections yield in a loop at once; the others sleep to the end
(with many sessions the replies are not precise to the microsecond anyway, and
spinning would take a core from the generator)."""
_spinning = 0


def wait_until(deadline: float) -> None:
    """Sleep cooperatively until ``time.time()`` reaches ``deadline``, to within tens of
    microseconds: a timer for all but the last :data:`SPIN` seconds, then yielding to
    the other connections until it is time."""
    global _spinning
    remaining = deadline - time.time()
    if remaining > SPIN:
        gevent.sleep(remaining - SPIN)
        remaining = deadline - time.time()
    if _spinning >= SPINNERS:
        if remaining > 0:
            gevent.sleep(remaining)
        return
    _spinning += 1
    try:
        while time.time() < deadline:
            gevent.sleep(0)
    finally:
        _spinning -= 1


class Sink:
    """The server: owns the listening socket, the counters and the recorder."""

    def __init__(
        self, listener: socket.socket, config: SinkConfig, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self.tls_context = tls_context
        """For STARTTLS and implicit TLS (``config.starttls``, ``config.smtps``)."""
        self.counters = Counters()
        if tls_context is not None:
            self.counters.tls = 0
        if config.credentials:
            self.counters.auth = 0
        self._ids = itertools.count(1)
        self.server = StreamServer(listener, self._handle)

    def _handle(self, sock: Any, _address: Any) -> None:
        counters = self.counters
        counters.connections += 1
        counters.active += 1
        record = None
        if self.config.record is not None:
            path = self.config.record / f"{next(self._ids):06d}.client"
            record = open(path, "wb")  # noqa: SIM115 - closed in finally
        session = Session(self.config, counters)
        delay = self.config.delay
        # the client's transport: a C-level socket waited on with libev watchers directly
        # costs about half the CPU of gevent's cooperative socket per command
        transport: SocketTransport | TlsTransport = SocketTransport(
            _socket.socket(fileno=sock.detach())
        )
        try:
            if self.config.smtps:
                layer = self._start_tls(transport)
                if layer is None:
                    return
                transport = layer
            reply = session.greeting()
            if delay:
                wait_until(time.time() + delay)
            if reply:
                transport.send(reply, stages.BANNER)
            while not session.closing:
                data = transport.read()  # no timer: never None
                if not data:
                    break
                if record is not None:
                    record.write(data)
                    record.flush()
                reply = session.feed(data)
                if reply:
                    if delay:  # from when the command was seen, not when handled
                        wait_until(transport.readable_at + delay)
                    transport.send(reply, stages.MESSAGE)
                if session.starting_tls:
                    started = self._start_tls(transport)
                    if started is None:
                        break
                    transport = started
                    session.tls_started()
        except (OSError, SmtpError):
            pass
        finally:
            counters.active -= 1
            if record is not None:
                record.close()
            transport.close(abort=False)

    def _start_tls(self, transport: SocketTransport | TlsTransport) -> TlsTransport | None:
        """The server side of a TLS handshake; None (counted) when it failed."""
        counters = self.counters
        if self.tls_context is None or not isinstance(transport, SocketTransport):
            return None
        try:
            layer = handshake(transport, self.tls_context, server_side=True)
        except SmtpError:
            counters.tls_failed += 1
            return None
        counters.tls = (counters.tls or 0) + 1
        if layer.session_reused:
            counters.tls_resumed += 1
        return layer

    def serve_forever(
        self,
        report_interval: float = 0,
        out: Callable[[str], None] = print,
        ready: Callable[[], None] | None = None,
    ) -> None:
        """Serve until SIGTERM or SIGINT, then print the counts. ``ready`` is called once
        the signals are handled: a signal right after it still gets the counts printed."""
        stop = gevent.event.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        self.server.start()
        if ready is not None:
            ready()
        try:
            while not stop.wait(report_interval or None):
                out(self.counters.line())
        finally:
            self.server.stop(timeout=1)
            out(self.counters.line())


def listen(operand: str) -> socket.socket:
    """A listening socket for ``[inet:]host:port`` or ``unix:path`` (gevent's: the server's
    accept loop waits on it cooperatively, whether or not anything monkey-patched)."""
    address = parse_source_address(operand)
    sock: socket.socket
    if address.path is not None:
        if os.path.exists(address.path):
            os.unlink(address.path)
        sock = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address.path)
    else:
        family, sockaddr = address.resolve()
        sock = gevent.socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
    sock.listen(1024)
    return sock
