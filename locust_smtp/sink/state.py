"""The sink's protocol state, without I/O: :class:`Session` turns a client's bytes into
the sink's replies (SMTP or LMTP, with the configured faults), :class:`Counters`
counts what it accepted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PROGRAM = "locust-smtp-sink"
SIZE_LIMIT = 10240000
COMMANDS = {
    "connect",
    "helo",
    "ehlo",
    "lhlo",
    "starttls",
    "mail",
    "rcpt",
    "data",
    ".",
    "rset",
    "noop",
    "quit",
}


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
    starttls: bool = False
    """Offer STARTTLS (the server loop does the handshake)."""
    smtps: bool = False
    """TLS from the first byte (implicit TLS)."""

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
    tls: int | None = None
    """TLS sessions set up (None: TLS not configured, not printed)."""
    tls_resumed: int = 0
    tls_failed: int = 0

    def line(self) -> str:
        line = (
            f"{PROGRAM}: connections {self.connections} messages {self.messages} "
            f"recipients {self.recipients} faults {self.faults}"
        )
        if self.tls is not None:
            line += f" tls {self.tls} resumed {self.tls_resumed} tls_failed {self.tls_failed}"
        return line


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
    starting_tls: bool = False  # 220 to STARTTLS sent: the TLS handshake comes next
    tls_active: bool = False
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
        while buffer and not self.closing and not self.starting_tls:
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
        # after STARTTLS's 220, what came in the clear is discarded (RFC 3207 §4.2)
        self.buffer = b"" if self.starting_tls else buffer
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
            b"STAR": "starttls",
        }.get(verb)
        if name == "starttls" and line.upper() != b"STARTTLS":
            name = None
        if name is None:
            return b"502 5.5.2 Error: command not recognized\r\n"
        fault = self._fault(name)
        if fault is not None:
            return fault
        if name == "starttls":
            if not self.config.starttls:
                return b"502 5.5.1 Error: command not implemented\r\n"
            if self.tls_active:
                return b"503 5.5.1 Error: TLS already active\r\n"
            self.starting_tls = True
            return b"220 2.0.0 Ready to start TLS\r\n"
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
            starttls = b"250-STARTTLS\r\n" if self.config.starttls and not self.tls_active else b""
            return (
                b"250-"
                + host
                + b"\r\n250-PIPELINING\r\n250-SIZE %d\r\n" % SIZE_LIMIT
                + starttls
                + b"250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
            )
        if name == "rset":
            self.has_mail = False
            self.recipients = 0
            return b"250 2.0.0 Ok\r\n"
        if name == "noop":
            return b"250 2.0.0 Ok\r\n"
        self.closing = True  # quit
        return b"221 2.0.0 Bye\r\n"

    def tls_started(self) -> None:
        """The handshake after STARTTLS succeeded: a fresh start (RFC 3207 §4.2)."""
        self.starting_tls = False
        self.tls_active = True
        self.has_mail = False
        self.recipients = 0

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
