"""``locust-smtp-sink``: a gevent SMTP/LMTP server that accepts mail and throws it away.

    locust-smtp-sink [options] [[inet:]host:port | unix:path]     (default 127.0.0.1:2525)

The bundled target for locust-smtp: ESMTP with PIPELINING, 8BITMIME and
SIZE; LMTP (``-L``) with one end-of-data reply per accepted recipient; TCP
over IPv4/IPv6 or a UNIX socket. It counts connections, messages and
recipients and prints the counts at exit (and every ``--report-interval``
seconds). Faults in the spirit of Postfix's smtp-sink: ``-r CMD,..`` answers
those commands with 450, ``-f CMD,..`` with 550, ``-q CMD,..`` hangs up
without a reply, ``-Q CMD,..`` sends 421 and hangs up; ``--delay SECONDS``
waits before every reply. ``--record DIR`` writes each connection's client
bytes to ``DIR/NNNNNN.client`` (used by the differential tests).

Commands for the fault options: connect, helo, ehlo, lhlo, mail, rcpt, data,
``.`` (end of data), rset, noop, quit.
"""

from __future__ import annotations

import _socket
import argparse
import itertools
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.socket
from gevent.server import StreamServer

from .protocol import stages
from .protocol._errors import SmtpError
from .protocol.address import AddressError, parse_source_address
from .transport import SocketTransport

PROGRAM = "locust-smtp-sink"
SIZE_LIMIT = 10240000
COMMANDS = {"connect", "helo", "ehlo", "lhlo", "mail", "rcpt", "data", ".", "rset", "noop", "quit"}


@dataclass
class SinkConfig:
    hostname: str = "locust-smtp-sink"
    lmtp: bool = False
    soft_reject: frozenset[str] = frozenset()
    hard_reject: frozenset[str] = frozenset()
    hang_up: frozenset[str] = frozenset()
    close_421: frozenset[str] = frozenset()
    delay: float = 0.0
    record: Path | None = None
    fault_every: int = 1
    """Inject the configured fault only on every Nth command of its kind."""

    @property
    def faulty(self) -> frozenset[str]:
        return self.soft_reject | self.hard_reject | self.hang_up | self.close_421


@dataclass
class Counters:
    connections: int = 0
    messages: int = 0
    recipients: int = 0
    faults: int = 0
    active: int = 0
    seen: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{PROGRAM}: connections {self.connections} messages {self.messages} "
            f"recipients {self.recipients} faults {self.faults}"
        )


@dataclass
class Session:
    """One connection's state; :meth:`feed` turns client bytes into reply bytes."""

    config: SinkConfig
    counters: Counters
    in_data: bool = False
    has_mail: bool = False
    recipients: int = 0
    data_bytes: int = 0
    closing: bool = False  # reply sent, then hang up
    buffer: bytes = b""
    replies: list[bytes] = field(default_factory=list)

    def greeting(self) -> bytes:
        fault = self._fault("connect")
        if fault is not None:
            return fault
        return f"220 {self.config.hostname} ESMTP locust-smtp-sink\r\n".encode()

    def _fault(self, command: str) -> bytes | None:
        config = self.config
        if command not in config.faulty:
            return None
        if config.fault_every > 1:
            seen = self.counters.seen[command] = self.counters.seen.get(command, 0) + 1
            if seen % config.fault_every:
                return None
        self.counters.faults += 1
        if command in config.hang_up:
            self.closing = True
            return b""
        if command in config.close_421:
            self.closing = True
            return b"421 4.3.0 " + config.hostname.encode() + b" closing (fault injected)\r\n"
        if command in config.soft_reject:
            return b"450 4.3.0 Error: command failed (fault injected)\r\n"
        if command in config.hard_reject:
            return b"550 5.3.0 Error: command failed (fault injected)\r\n"
        return None

    def feed(self, data: bytes) -> bytes:
        """Consume client bytes; return the replies to send (possibly several, pipelined)."""
        buffer = self.buffer + data if self.buffer else data
        out = self.replies
        while buffer and not self.closing:
            if self.in_data:
                if self.data_bytes == 0 and buffer.startswith(b".\r\n"):
                    end = -2  # an empty message: the "." line comes first
                else:
                    end = buffer.find(b"\r\n.\r\n")
                if end == -1:
                    keep = buffer[-4:]
                    self.data_bytes += len(buffer) - len(keep)
                    buffer = keep
                    break
                buffer = buffer[end + 5 :]
                self.in_data = False
                self.data_bytes = 0
                out.append(self._end_of_data())
                continue
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > 4096:
                    out.append(b"500 5.5.0 Error: line too long\r\n")
                    buffer = b""
                break
            line, buffer = buffer[: end + 1], buffer[end + 1 :]
            out.append(self._command(line.rstrip(b"\r\n")))
        self.buffer = buffer
        reply = b"".join(out)
        out.clear()
        return reply

    def _command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        name = {
            b"MAIL": "mail",
            b"RCPT": "rcpt",
            b"DATA": "data",
            b"HELO": "helo",
            b"EHLO": "ehlo",
            b"LHLO": "lhlo",
            b"RSET": "rset",
            b"NOOP": "noop",
            b"QUIT": "quit",
        }.get(verb)
        if name is None:
            return b"502 5.5.2 Error: command not recognized\r\n"
        fault = self._fault(name)
        if fault is not None:
            return fault
        if name == "mail":
            self.has_mail = True
            self.recipients = 0
            return b"250 2.1.0 Ok\r\n"
        if name == "rcpt":
            if not self.has_mail:
                return b"503 5.5.1 Error: need MAIL command\r\n"
            self.recipients += 1
            self.counters.recipients += 1
            return b"250 2.1.5 Ok\r\n"
        if name == "data":
            if not self.recipients:
                return b"503 5.5.1 Error: need RCPT command\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if name in ("helo", "ehlo", "lhlo"):
            self.has_mail = False
            self.recipients = 0
            host = self.config.hostname.encode()
            if name == "helo":
                return b"250 " + host + b"\r\n"
            return (
                b"250-" + host + b"\r\n250-PIPELINING\r\n250-SIZE %d\r\n"
                b"250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n" % SIZE_LIMIT
            )
        if name == "rset":
            self.has_mail = False
            self.recipients = 0
            return b"250 2.0.0 Ok\r\n"
        if name == "noop":
            return b"250 2.0.0 Ok\r\n"
        self.closing = True  # quit
        return b"221 2.0.0 Bye\r\n"

    def _end_of_data(self) -> bytes:
        recipients = self.recipients
        self.has_mail = False
        self.recipients = 0
        fault = self._fault(".")
        if fault is not None:
            return fault * (recipients if self.config.lmtp and fault else 1)
        self.counters.messages += 1
        if self.config.lmtp:
            return b"250 2.0.0 Ok: delivered\r\n" * recipients
        return b"250 2.0.0 Ok: queued\r\n"


class Sink:
    """The server: owns the listening socket, the counters and the recorder."""

    def __init__(self, listener: socket.socket, config: SinkConfig) -> None:
        self.config = config
        self.counters = Counters()
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
        transport = SocketTransport(_socket.socket(fileno=sock.detach()))
        try:
            reply = session.greeting()
            if delay:
                gevent.sleep(delay)
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
                    if delay:
                        gevent.sleep(delay)
                    transport.send(reply, stages.MESSAGE)
        except (OSError, SmtpError):
            pass
        finally:
            counters.active -= 1
            if record is not None:
                record.close()
            transport.close(abort=False)

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


def _commands(value: str) -> frozenset[str]:
    names = frozenset(c.strip().lower() for c in value.split(",") if c.strip())
    unknown = names - COMMANDS
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown command: {', '.join(sorted(unknown))}")
    return names


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Accept SMTP/LMTP mail and discard it, counting it."
    )
    parser.add_argument(
        "address",
        nargs="?",
        default="127.0.0.1:2525",
        help="[inet:]host:port or unix:path (default 127.0.0.1:2525)",
    )
    parser.add_argument("-L", "--lmtp", action="store_true", help="speak LMTP")
    for short, long, action in (
        ("-r", "--soft-reject", "answer these commands with 450"),
        ("-f", "--hard-reject", "answer these commands with 550"),
        ("-q", "--hang-up", "disconnect without a reply after these"),
        ("-Q", "--close-421", "reply 421 and disconnect after these"),
    ):
        parser.add_argument(
            short, long, type=_commands, default=frozenset(), metavar="CMD,...", help=action
        )
    parser.add_argument(
        "--fault-every",
        type=int,
        default=1,
        metavar="N",
        help="inject the faults above only on every Nth such command",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before every reply",
    )
    parser.add_argument("--hostname", default="locust-smtp-sink", help="name in replies")
    parser.add_argument(
        "--report-interval",
        type=float,
        default=0,
        metavar="SECONDS",
        help="print the counts every SECONDS (and always at exit)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="write each connection's client bytes to DIR/NNNNNN.client",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = SinkConfig(
        hostname=args.hostname,
        lmtp=args.lmtp,
        soft_reject=args.soft_reject,
        hard_reject=args.hard_reject,
        hang_up=args.hang_up,
        close_421=args.close_421,
        delay=args.delay,
        record=args.record,
        fault_every=max(1, args.fault_every),
    )
    try:
        listener = listen(args.address)
    except (AddressError, OSError) as exc:
        print(f"{PROGRAM}: fatal: {args.address}: {exc}", file=sys.stderr)
        return 1
    if config.record is not None:
        config.record.mkdir(parents=True, exist_ok=True)
    name = listener.getsockname()
    where = name if isinstance(name, str) else f"{name[0]}:{name[1]}"

    def ready() -> None:
        print(f"{PROGRAM}: listening on {where}", file=sys.stderr, flush=True)

    def out(line: str) -> None:
        print(line, flush=True)

    Sink(listener, config).serve_forever(args.report_interval, out, ready)
    return 0


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
