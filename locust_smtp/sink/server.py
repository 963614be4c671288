"""The sink's server: a gevent accept loop, one greenlet per connection, each moving
bytes between a :class:`~locust_smtp.transport.SocketTransport` and a
:class:`~.state.Session`."""

from __future__ import annotations

import _socket
import itertools
import json
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.socket
from gevent.server import StreamServer

from ..protocol import stages
from ..protocol._errors import SmtpError
from ..protocol.address import parse_source_address
from ..protocol.client_identity import PROXY_V2_SIGNATURE, parse_proxy_header
from ..tls import TlsTransport, handshake
from ..transport import SocketTransport
from .delivery import DeliveryTracker
from .state import AUTH_LINE_LIMIT, PROGRAM, Counters, Session, SinkConfig

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


def _no_delay(sock: _socket.socket) -> None:
    """Send small writes at once on a TCP connection: with Nagle's algorithm a write
    (the greeting) waits for the ACK of the one before (TLS 1.3's session tickets),
    which the client delays by up to 40 ms."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _redacted(line: bytes, response: bool) -> bytes:
    """An AUTH command line with its initial response replaced by ``****``, or a response
    to a 334 challenge replaced whole (``response``); the line ending kept."""
    text = line.rstrip(b"\r\n")
    ending = line[len(text) :]
    if response:
        return b"****" + ending
    words = text.split(None, 2)
    if len(words) < 3:
        return line  # no initial response
    return words[0] + b" " + words[1] + b" ****" + ending


def _content_end(data: bytes) -> int:
    """Where a piece of message content (after DATA) must end: where the message may end,
    at a ``.\r\n`` or at a line end in the first two bytes (the rest of ``\r\n.\r\n``
    came before)."""
    dot = data.find(b".\r\n")
    newline = data.find(b"\n", 0, 2)
    ends = [at + length for at, length in ((dot, 3), (newline, 1)) if at >= 0]
    return min(ends, default=len(data))


def write_report(path: Path, document: object) -> None:
    """Write ``document`` as JSON to ``path`` atomically: to ``path.tmp``, then renamed
    over ``path``, so a reader sees the previous report or this one, never a part."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)


def _read_proxy_header(sock: _socket.socket, counters: Counters) -> bool:
    """Take the PROXY header off the start of the connection, exactly its bytes (a TLS
    hello may follow at once), and count its source address; False when there is none
    or it does not come whole within 30 s."""
    deadline = time.monotonic() + 30.0

    def take(count: int) -> bytes:
        data = b""
        while len(data) < count:
            gevent.socket.wait_read(sock.fileno(), timeout=max(0.0, deadline - time.monotonic()))
            try:
                chunk = sock.recv(count - len(data))
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError
            data += chunk
        return data

    try:
        header = take(1)
        if header == b"\r":  # v2: 16 bytes, then as many as they say
            header += take(15)
            if len(header) == 16 and header.startswith(PROXY_V2_SIGNATURE):
                header += take(int.from_bytes(header[14:16], "big"))
        else:  # v1: one line of at most 107 bytes
            while not header.endswith(b"\n") and len(header) < 107:
                header += take(1)
        found = parse_proxy_header(header)
    except (OSError, EOFError, ValueError, gevent.Timeout):
        return False
    if found is None:
        return False
    address = found[0]
    if address:
        counters.client_addresses.add(address)
    return True


class Recorder:
    """``--record``: a connection's client bytes, written to a file as they come, with the
    credentials of AUTH exchanges replaced by ``****`` (the command and its mechanism
    stay); all other bytes exactly as received.

    :meth:`feed` hands the bytes to the session in pieces that end where its state may
    change (a line end, the end of a BDAT chunk or of a message), so each command line is
    recorded as what the session takes it for. A line that may be part of AUTH is held
    back until it is complete."""

    def __init__(self, path: Path, session: Session) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.session = session
        self.line = b""
        """The start of a line that may be part of AUTH, not written yet."""
        self.rest: bytes | None = None
        """How the rest of the current line is written: b"raw", or b"" (dropped, but for its
        ending: an over-long AUTH line's); None at the start of a line."""

    def feed(self, data: bytes) -> bytes:
        """``session.feed(data)``, recording ``data`` on the way."""
        session = self.session
        replies = []
        while data:
            end = self._piece_end(data)
            piece, data = data[:end], data[end:]
            if session.in_data or session.bdat_left or session.closing or session.starting_tls:
                self.file.write(piece)  # content, or bytes the session will not read
            else:
                self._command(piece)
            replies.append(session.feed(piece))
        self.file.flush()
        return b"".join(replies)

    def _piece_end(self, data: bytes) -> int:
        session = self.session
        if session.bdat_left:
            return min(session.bdat_left, len(data))
        if session.in_data:
            return _content_end(data)
        newline = data.find(b"\n")
        return len(data) if newline < 0 else newline + 1

    def _command(self, piece: bytes) -> None:
        """Record a piece of a command line (all of it, or its end, or its start)."""
        complete = piece.endswith(b"\n")
        if self.rest is not None:
            self.file.write(piece if self.rest else piece[len(piece.rstrip(b"\r\n")) :])
            self.rest = None if complete else self.rest
            return
        line, self.line = self.line + piece, b""
        response = self.session.auth_step is not None
        if not response and not b"AUTH".startswith(line[:4].upper()):
            self.file.write(line)
            self.rest = None if complete else b"raw"
            return
        if not complete and len(line) <= AUTH_LINE_LIMIT:
            self.line = line  # wait for the rest before deciding what to write
            return
        self.file.write(_redacted(line, response))
        self.rest = None if complete else b""

    def close(self) -> None:
        if self.line:
            self.file.write(_redacted(self.line, self.session.auth_step is not None))
        self.file.close()


class Sink:
    """The server: owns the listening socket, the counters (the delivery tracker with
    them) and the recorder."""

    def __init__(
        self, listener: socket.socket, config: SinkConfig, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self.tls_context = tls_context
        """For STARTTLS and implicit TLS (``config.starttls``, ``config.smtps``)."""
        log = None
        if config.delivery_log is not None:
            log = open(config.delivery_log, "a", encoding="utf-8")  # noqa: SIM115 (the sink's life)
        self.counters = Counters(delivery=DeliveryTracker(config.late_after, config.expected, log))
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
        session = Session(self.config, counters)
        record = None
        if self.config.record is not None:
            record = Recorder(self.config.record / f"{next(self._ids):06d}.client", session)
        delay = self.config.delay
        # the client's transport: a C-level socket waited on with libev watchers directly
        # costs about half the CPU of gevent's cooperative socket per command
        raw = _socket.socket(fileno=sock.detach())
        transport: SocketTransport | TlsTransport = SocketTransport(raw)
        try:
            _no_delay(raw)
            if self.config.proxy_protocol and not _read_proxy_header(raw, counters):
                return
            if self.config.smtps:
                layer = self._start_tls(transport)
                if layer is None:
                    return
                transport = layer
                session.tls_active = True  # no STARTTLS inside it
            reply = session.greeting()
            if delay:
                wait_until(time.time() + delay)
            if reply:
                transport.send(reply, stages.BANNER)
            while not session.closing:
                data = transport.read()  # no timer: never None
                if not data:
                    break
                reply = session.feed(data) if record is None else record.feed(data)
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

    def report(self, out: Callable[[str], None] = print) -> None:
        """Write ``config.delivery_report`` (first: printing may fail on a closed pipe), then
        print the counts: the delivery lines (when a traced run is known), then the count
        line, last (scripts read the last line). A report that cannot be written is a
        warning on stderr: the sink goes on."""
        try:
            self.write_delivery_report()
        except OSError as exc:
            print(f"{PROGRAM}: warning: --delivery-report: {exc}", file=sys.stderr)
        for line in self.counters.delivery.summary():
            out(f"{PROGRAM}: {line}")
        out(self.counters.line())

    def write_delivery_report(self) -> None:
        """Write the delivery tracker's report to ``config.delivery_report``, if set (raises
        OSError)."""
        if self.counters.delivery.log is not None:
            self.counters.delivery.log.flush()
        if self.config.delivery_report is not None:
            write_report(self.config.delivery_report, self.counters.delivery.report())

    def serve_forever(
        self,
        report_interval: float = 0,
        out: Callable[[str], None] = print,
        ready: Callable[[], None] | None = None,
    ) -> None:
        """Serve until SIGTERM or SIGINT, then :meth:`report` (and every
        ``report_interval`` seconds before). ``ready`` is called once the signals are
        handled: a signal right after it still gets the counts printed."""
        stop = gevent.event.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        self.server.start()
        if ready is not None:
            ready()
        try:
            while not stop.wait(report_interval or None):
                self.report(out)
        finally:
            self.server.stop(timeout=1)
            self.report(out)


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
