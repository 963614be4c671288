"""A fault-injecting SMTP/LMTP server for the tests, running in the pytest process.

    with fault_server(Fault("rcpt", "reply", text=b"450 4.2.0 busy\\r\\n", every=2)) as server:
        ...  # connect to server.address ("127.0.0.1:PORT", "[::1]:PORT" or "unix:/path")
    assert server.faults == 1

By default the server speaks SMTP, or LMTP (``lmtp=True``: LHLO, and one end-of-data
reply per accepted recipient), correctly: a ``220 fault.test ESMTP`` greeting,
HELO/EHLO/LHLO (EHLO and LHLO advertise PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES),
MAIL, RCPT, DATA, content up to CRLF.CRLF (in any number of reads), RSET, NOOP and QUIT,
with several commands per read (pipelining). :class:`Fault` objects change chosen
replies: a different reply, 421 and close, hang-up, silence, a partial line, endless
continuation lines, a reply a byte at a time, a huge line, bare LFs, a NUL, garbage, a
delay. Faults are picked by command and by occurrence (counted across every connection
of the server): ``every``, ``nth``, ``times``.

The server is a gevent StreamServer in this process, so a test's blocking sockets must
yield to the hub: the test process is gevent monkey-patched (tests import locust_smtp,
which imports locust), and importing this module patches it if nothing has yet. Each
connection has a reader greenlet (it reads, records and queues the client's bytes; it
notices EOF while the server waits) and a worker (the handler greenlet: it runs the
protocol and writes the replies). Every wait ends when the server stops: ``stop()``
closes the listener and kills every connection's greenlets.

The session runs the protocol one read at a time (:meth:`Session.feed`: bytes in,
:class:`Step` list out), so its counters may run ahead of the replies still being
written (a delay, a trickle) by the commands of that read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import select
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import gevent
import gevent.event
import gevent.monkey
import gevent.queue
from gevent.server import StreamServer


def _ensure_patched() -> None:
    """Monkey-patch like locust does, if nothing has: test sockets must yield to the hub."""
    if not gevent.monkey.is_module_patched("socket"):
        gevent.monkey.patch_all()


_ensure_patched()

Family = Literal["ipv4", "ipv6", "unix"]
Then = Literal["", "close", "silence", "endless"]

COMMANDS = frozenset(
    {"connect", "helo", "ehlo", "lhlo", "mail", "rcpt", "data", ".", "rset", "noop", "quit"}
)
ACTIONS = frozenset(
    {
        "reply",
        "close-421",
        "hang-up",
        "silence",
        "partial",
        "endless",
        "trickle",
        "huge",
        "bare-lf",
        "nul",
        "garbage",
        "delay",
    }
)
VERBS = {
    b"HELO": "helo",
    b"EHLO": "ehlo",
    b"LHLO": "lhlo",
    b"MAIL": "mail",
    b"RCPT": "rcpt",
    b"DATA": "data",
    b"RSET": "rset",
    b"NOOP": "noop",
    b"QUIT": "quit",
}

GREETING = b"220 fault.test ESMTP\r\n"
HELO_REPLY = b"250 fault.test\r\n"
EHLO_REPLY = b"250-fault.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
MAIL_OK = b"250 2.1.0 Ok\r\n"
RCPT_OK = b"250 2.1.5 Ok\r\n"
DATA_OK = b"354 End data with <CR><LF>.<CR><LF>\r\n"
OK = b"250 2.0.0 Ok\r\n"
BYE = b"221 2.0.0 Bye\r\n"
QUEUED = b"250 2.0.0 Ok: queued as %d\r\n"
NESTED_MAIL = b"503 5.5.1 Error: nested MAIL command\r\n"
NEED_MAIL = b"503 5.5.1 Error: need MAIL command\r\n"
NEED_RCPT = b"503 5.5.1 Error: need RCPT command\r\n"
UNRECOGNISED = b"502 5.5.2 Error: command not recognized\r\n"
TOO_LONG = b"500 5.5.0 Error: line too long\r\n"
CLOSE_421 = b"421 4.3.2 fault.test closing (fault)\r\n"
GARBAGE = b"HTTP/1.1 400 Bad Request\r\n\r\n"
PARTIAL = b"250 partial"
LINE_LIMIT = 4096
TRANSFORMS = frozenset({"bare-lf", "nul", "delay"})  # and "trickle" without a text


@dataclass(frozen=True)
class Fault:
    """What to do instead of the normal reply to command ``on`` (see the module docstring).

    ``every``/``nth`` pick occurrences of the command, counted 1-based across all the
    server's connections (``nth`` overrides ``every``); ``times`` caps the injections.
    ``recipient`` picks one per-recipient reply of an LMTP end of data (ignored for SMTP).
    When several faults match an occurrence, the first given wins.
    """

    on: str
    action: str
    text: bytes | None = None
    interval: float | None = None  # endless: 0 (as fast as the socket takes); trickle: 1.0
    size: int = 1_000_000
    delay: float = 0.0
    every: int = 1
    nth: int | None = None
    times: int | None = None
    recipient: int | None = None

    def __post_init__(self) -> None:
        if self.on not in COMMANDS:
            raise ValueError(f"unknown command {self.on!r}; one of {sorted(COMMANDS)}")
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; one of {sorted(ACTIONS)}")
        if self.action == "reply" and not self.text:
            raise ValueError("a 'reply' fault needs its text")
        if self.every < 1 or (self.nth is not None and self.nth < 1):
            raise ValueError("every and nth count from 1")
        if self.recipient is not None and (self.on != "." or self.recipient < 1):
            raise ValueError("recipient is a 1-based index, for '.' faults only")

    def hits(self, occurrence: int, injected: int) -> bool:
        """Whether this fault applies to the ``occurrence``-th such command."""
        if self.times is not None and injected >= self.times:
            return False
        if self.nth is not None:
            return occurrence == self.nth
        return occurrence % self.every == 0


@dataclass(frozen=True)
class Step:
    """One thing a connection does: wait, send ``data`` (a byte at a time when
    ``trickle`` is set, that many seconds apart), then maybe ``then``."""

    data: bytes = b""
    wait: float = 0.0
    trickle: float | None = None
    then: Then = ""
    interval: float = 0.0  # between endless lines


def _transformed(fault: Fault, normal: bytes) -> Step:
    """The step for a fault that alters the normal reply (the command goes as normal)."""
    if fault.action == "bare-lf":
        return Step(normal.replace(b"\r\n", b"\n"))
    if fault.action == "nul":
        return Step(normal[:4] + b"\0" + normal[4:])
    if fault.action == "delay":
        return Step(normal, wait=fault.delay)
    return Step(normal, trickle=1.0 if fault.interval is None else fault.interval)


def _replacement(fault: Fault) -> Step:
    """The step for a fault that replaces the reply."""
    action = fault.action
    if action == "close-421":
        return Step(CLOSE_421, then="close")
    if action == "hang-up":
        return Step(then="close")
    if action == "silence":
        return Step(then="silence")
    if action == "partial":
        return Step(PARTIAL if fault.text is None else fault.text, then="silence")
    if action == "endless":
        return Step(then="endless", interval=fault.interval or 0.0)
    if action == "huge":
        return Step(b"250 " + b"x" * fault.size + b"\r\n")
    if action == "garbage":
        return Step(GARBAGE if fault.text is None else fault.text, then="close")
    text = fault.text or b""
    if action == "trickle":
        return Step(text, trickle=1.0 if fault.interval is None else fault.interval)
    return Step(text)  # reply


def _positive(name: str, step: Step) -> bool:
    """Whether a replacement reply accepts the command: 354 for DATA, 2xx otherwise."""
    return not step.then and step.data[:1] == (b"3" if name == "data" else b"2")


@dataclass
class Session:
    """One connection's protocol state; :meth:`feed` turns client bytes into steps."""

    server: FaultServer
    has_mail: bool = False
    recipients: int = 0
    in_data: bool = False
    tail: bytes = b""  # the last bytes of content, to find CRLF.CRLF across reads
    buffer: bytes = b""
    queued: bytes = b""  # the end-of-data reply of the message at hand
    accepted: int = 0  # its recipients (LMTP) or itself (SMTP), accepted
    closing: bool = False  # QUIT accepted
    done: bool = False  # a step ended the dialogue: nothing more is read
    steps: list[Step] = field(default_factory=list)

    def greeting(self) -> list[Step]:
        """The greeting's step."""
        self.steps = []
        self._add(self._outcome("connect", self.server.pick("connect", 1)[0]))
        return self.steps

    def feed(self, data: bytes) -> list[Step]:
        """Consume client bytes; return the steps for the replies they call for."""
        buffer = self.buffer + data
        steps = self.steps = []
        while buffer and not self.done:
            if self.in_data:
                window = self.tail + buffer
                end = window.find(b"\r\n.\r\n")
                if end < 0:
                    self.tail, buffer = window[-4:], b""
                    break
                buffer = window[end + 5 :]
                self.in_data = False
                self._end_of_data()
                continue
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > LINE_LIMIT:
                    self._add(Step(TOO_LONG))
                    buffer = b""
                break
            line, buffer = buffer[:end], buffer[end + 1 :]
            self._command(line.rstrip(b"\r"))
        self.buffer = b"" if self.done else buffer
        return steps

    def _add(self, step: Step) -> None:
        self.steps.append(step)
        if step.then:
            self.done = True

    def _command(self, line: bytes) -> None:
        name = VERBS.get(line[:4].upper()) if line[4:5] in (b"", b" ", b"\t") else None
        if name is None:
            self.server.count("unknown")
            self._add(Step(UNRECOGNISED))
            return
        self._add(self._outcome(name, self.server.pick(name, 1)[0]))

    def _outcome(self, name: str, fault: Fault | None) -> Step:
        """Run command ``name`` as ``fault`` (or nothing) says; return the step to take."""
        if fault is None:
            step = Step(self._normal(name))
        elif fault.action in TRANSFORMS or (fault.action == "trickle" and fault.text is None):
            step = _transformed(fault, self._normal(name))
        else:
            step = _replacement(fault)
            if _positive(name, step):
                self._accept(name)
        if self.closing and not step.then:
            step = dataclasses.replace(step, then="close")
        return step

    def _normal(self, name: str) -> bytes:
        """Run command ``name`` normally; return its reply."""
        if (name == "lhlo") != self.server.lmtp and name in ("helo", "ehlo", "lhlo"):
            return UNRECOGNISED  # LHLO is for LMTP only, HELO and EHLO for SMTP only
        if name == "mail" and self.has_mail:
            return NESTED_MAIL
        if name == "rcpt" and not self.has_mail:
            return NEED_MAIL
        if name == "data" and not self.recipients:
            return NEED_RCPT if self.has_mail else NEED_MAIL
        self._accept(name)
        return {
            "connect": GREETING,
            "helo": HELO_REPLY,
            "ehlo": EHLO_REPLY,
            "lhlo": EHLO_REPLY,
            "mail": MAIL_OK,
            "rcpt": RCPT_OK,
            "data": DATA_OK,
            "quit": BYE,
            ".": self.queued,
        }.get(name, OK)

    def _accept(self, name: str) -> None:
        """The effect of accepting command ``name``."""
        if name == "mail":
            self.has_mail, self.recipients = True, 0
        elif name == "rcpt":
            self.recipients += 1
            self.server.recipients += 1
        elif name == "data":
            self.in_data, self.tail = True, b"\r\n"  # the DATA line's CRLF starts the content
        elif name in ("helo", "ehlo", "lhlo", "rset"):
            self.has_mail, self.recipients = False, 0
        elif name == "quit":
            self.closing = True
        elif name == ".":
            self.accepted += 1

    def _end_of_data(self) -> None:
        """The end-of-data reply (SMTP) or replies, one per recipient (LMTP)."""
        server = self.server
        replies = max(1, self.recipients) if server.lmtp else 1
        self.has_mail, self.recipients = False, 0
        self.queued, self.accepted = QUEUED % (server.messages + 1), 0
        for fault in server.pick(".", replies):
            self._add(self._outcome(".", fault))
            if self.done:
                break
        if self.accepted:
            server.messages += 1
            if server.lmtp:
                server.deliveries += self.accepted


class _Connection:
    """One client connection: a reader greenlet feeding the worker (the handler)."""

    def __init__(self, server: FaultServer, sock: Any, received: bytearray | None) -> None:
        self.server = server
        self.sock = sock
        self.received = received
        self.session = Session(server)
        self.inbox: gevent.queue.Queue[bytes | None] = gevent.queue.Queue()
        self.eof = gevent.event.Event()
        self.discard = False

    def read(self) -> None:
        """Read, record and queue the client's bytes until EOF (then queue None)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                if self.received is not None:
                    self.received += data
                if not self.discard:
                    self.inbox.put(data)
        except OSError:
            pass
        finally:
            self.eof.set()
            self.inbox.put(None)

    def run(self) -> None:
        """Greet, then answer each read until the dialogue or the connection ends."""
        if not self._perform(self.session.greeting()):
            return
        while True:
            data = self.inbox.get()
            if data is None or not self._perform(self.session.feed(data)):
                return

    def _perform(self, steps: list[Step]) -> bool:
        """Take the steps; False when the connection is to be closed."""
        for step in steps:
            if self.server.delay:
                gevent.sleep(self.server.delay)
            if step.wait:
                gevent.sleep(step.wait)
            if step.trickle is not None:
                for i in range(len(step.data)):
                    self.sock.sendall(step.data[i : i + 1])
                    if i + 1 < len(step.data) and self.eof.wait(step.trickle):
                        return False  # the client has gone
            elif step.data:
                self.sock.sendall(step.data)
            if step.then:
                self.discard = True
                if step.then == "silence":
                    self.eof.wait()
                elif step.then == "endless":
                    self._endless(step.interval)
                return False
        return True

    def _endless(self, interval: float) -> None:
        """``250-`` continuation lines, never the last one, until the client goes."""
        number = 0
        while not self.eof.is_set():
            number += 1
            self.sock.sendall(b"250-endless line %d\r\n" % number)
            if interval:
                self.eof.wait(interval)
            else:
                gevent.sleep(0)


class FaultServer:
    """The server: its faults, its counters (plain ints) and its listener.

    ``start()`` listens (again, on the same address after ``stop()``); ``stop()`` closes
    the listener and every open connection.
    """

    def __init__(
        self,
        *faults: Fault,
        lmtp: bool = False,
        delay: float = 0.0,
        record: bool = False,
        family: Family = "ipv4",
        path: str | None = None,
    ) -> None:
        if family not in ("ipv4", "ipv6", "unix"):
            raise ValueError(f"unknown family {family!r}")
        if (family == "unix") != (path is not None):
            raise ValueError("a path is for, and needed by, the unix family")
        self.plan = faults
        self.lmtp = lmtp
        self.delay = delay
        self.record = record
        self.family = family
        self.path = path
        self.connections = 0
        self.open_connections = 0
        self.messages = 0
        self.deliveries = 0
        self.recipients = 0
        self.faults = 0
        self.commands: dict[str, int] = {}
        self._injected = [0] * len(faults)
        self._received: list[bytearray] = []
        self._greenlets: set[gevent.Greenlet] = set()
        self._server: StreamServer | None = None
        self._port = 0
        self._generation = 0

    @property
    def address(self) -> str:
        """Where to connect: ``127.0.0.1:PORT``, ``[::1]:PORT`` or ``unix:PATH``."""
        if self.family == "unix":
            return f"unix:{self.path}"
        host = "[::1]" if self.family == "ipv6" else "127.0.0.1"
        return f"{host}:{self._port}"

    @property
    def received(self) -> list[bytes]:
        """The client bytes of each connection so far, in order (with ``record=True``)."""
        return [bytes(data) for data in self._received]

    @property
    def running(self) -> bool:
        """Whether it listens (between ``start()`` and ``stop()``)."""
        return self._server is not None

    def count(self, name: str) -> int:
        """Count a command of this name; return its occurrence number."""
        seen = self.commands[name] = self.commands.get(name, 0) + 1
        return seen

    def pick(self, name: str, replies: int) -> list[Fault | None]:
        """Count command ``name`` and choose the fault of each of its ``replies``."""
        occurrence = self.count(name)
        chosen: list[Fault | None] = [None] * replies
        for index, fault in enumerate(self.plan):
            if fault.on != name or not fault.hits(occurrence, self._injected[index]):
                continue
            if fault.recipient is None or not self.lmtp:
                targets = range(replies)
            else:
                targets = range(fault.recipient - 1, min(fault.recipient, replies))
            claimed = [t for t in targets if chosen[t] is None]
            for t in claimed:
                chosen[t] = fault
            if claimed:
                self._injected[index] += 1
                self.faults += 1
        return chosen

    def start(self) -> None:
        """Listen (on the address of the first start, if any) and serve."""
        if self._server is not None:
            return
        listener = self._listen()
        self._generation += 1
        self._server = StreamServer(listener, functools.partial(self._handle, self._generation))
        self._server.start()

    def stop(self) -> None:
        """Close the listener and every open connection, killing their greenlets."""
        server, self._server = self._server, None
        self._generation += 1  # connections accepted but not yet handled are dropped
        if server is not None:
            server.close()
        current = gevent.getcurrent()
        gevent.killall([g for g in self._greenlets if g is not current], block=True, timeout=5)
        if self.family == "unix" and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _listen(self) -> socket.socket:
        if self.family == "unix":
            assert self.path is not None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = self.path
        else:
            ipv6 = self.family == "ipv6"
            sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            target = ("::1" if ipv6 else "127.0.0.1", self._port)
        try:
            sock.bind(target)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        if self.family != "unix":
            self._port = sock.getsockname()[1]
        return sock

    def _handle(self, generation: int, sock: Any, _address: Any) -> None:
        if generation != self._generation:
            sock.close()
            return
        me = gevent.getcurrent()
        self._greenlets.add(me)
        self.connections += 1
        self.open_connections += 1
        received = None
        if self.record:
            received = bytearray()
            self._received.append(received)
        connection = _Connection(self, sock, received)
        reader = gevent.spawn(connection.read)
        self._greenlets.add(reader)
        try:
            connection.run()
        except OSError:
            pass  # the client went away (EPIPE, ECONNRESET)
        finally:
            reader.kill()
            sock.close()
            self.open_connections -= 1
            self._greenlets.discard(reader)
            self._greenlets.discard(me)


@contextlib.contextmanager
def fault_server(
    *faults: Fault,
    lmtp: bool = False,
    delay: float = 0.0,
    record: bool = False,
    family: Family = "ipv4",
    path: str | None = None,
) -> Iterator[FaultServer]:
    """A running :class:`FaultServer` (a UNIX socket in a temporary directory unless
    ``path`` is given); stopped, every connection closed, on exit."""
    tmp = None
    if family == "unix" and path is None:
        tmp = tempfile.mkdtemp(prefix="fault-server-")
        path = os.path.join(tmp, "smtp.sock")
    server = FaultServer(*faults, lmtp=lmtp, delay=delay, record=record, family=family, path=path)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def blackhole_address(fillers: int = 3) -> Iterator[str]:
    """A ``127.0.0.1:PORT`` where a connect neither succeeds nor is refused: it stays pending.

    The listener has a backlog of 0 and never accepts; ``fillers`` sockets connect first
    and fill its accept queue, and Linux drops the SYNs of further connects.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        target = listener.getsockname()
        for _ in range(fillers):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(filler)
            filler.setblocking(False)
            filler.connect_ex(target)
            if len(held) == 1:  # let the first one into the queue before the others
                select.select([], [filler], [], 1.0)
        yield f"127.0.0.1:{target[1]}"
    finally:
        for filler in held:
            filler.close()
        listener.close()
