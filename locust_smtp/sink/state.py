"""The sink's protocol state, without I/O: :class:`Session` turns a client's bytes into
the sink's replies (SMTP or LMTP, with the configured faults), :class:`Counters`
counts what it accepted, its :class:`~.delivery.DeliveryTracker` what arrived of each
traced run (from the header section of each accepted message, which the session keeps
as the content comes in)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from .delivery import HEAD_LIMIT, LATE_AFTER, DeliveryTracker

PROGRAM = "locust-smtp-sink"
SIZE_LIMIT = 10240000
#: ESMTP extensions offered after EHLO/LHLO (--hide takes any of them out)
EXTENSIONS = (
    "PIPELINING",
    "SIZE",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "SMTPUTF8",
    "DSN",
    "XCLIENT",
    "XFORWARD",
    "ENHANCEDSTATUSCODES",
)
#: what follows the keyword in the EHLO reply
EXTENSION_PARAMETERS = {"XCLIENT": b" ADDR NAME HELO PROTO", "XFORWARD": b" ADDR NAME HELO PROTO"}
#: MAIL and RCPT parameters, and the extension each needs
PARAMETERS = {
    b"SIZE": "SIZE",
    b"SMTPUTF8": "SMTPUTF8",
    b"RET": "DSN",
    b"ENVID": "DSN",
    b"NOTIFY": "DSN",
    b"ORCPT": "DSN",
}
BODY_NEEDS = {b"7BIT": None, b"8BITMIME": "8BITMIME", b"BINARYMIME": "BINARYMIME"}
COMMANDS = {
    "connect",
    "helo",
    "ehlo",
    "lhlo",
    "starttls",
    "auth",
    "mail",
    "rcpt",
    "data",
    "bdat",
    "xclient",
    "xforward",
    ".",
    "rset",
    "noop",
    "quit",
}


AUTH_MECHANISMS = b"PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER"
LINE_LIMIT = 4096
AUTH_LINE_LIMIT = 12288
"""What the sink offers with --auth-file (the OAuth ones take the password as the token)."""


def _oauth_fields(response: bytes) -> tuple[str, str]:
    """(user, bearer token) of an XOAUTH2 (``user=U^Aauth=Bearer T^A^A``) or OAUTHBEARER
    (``n,a=U,^Aauth=Bearer T^A^A``, U with ``,`` and ``=`` escaped) response; empty
    strings when absent."""
    text = response.decode("utf-8", "replace")
    user = token = ""
    head, _, rest = text.partition("\x01")
    if head.startswith("user="):
        user = head[5:]
    else:
        for part in head.split(","):
            if part.startswith("a="):
                user = _unescape_saslname(part[2:])
    for item in rest.split("\x01"):
        if item.startswith("auth=Bearer "):
            token = item[len("auth=Bearer ") :]
    return user, token


def _unescape_saslname(name: str) -> str:
    """A GS2 header's authzid (RFC 5801 §4) unescaped: ``=2C`` is ``,``, ``=3D`` is ``=``."""
    return re.sub("=(2C|3D)", lambda m: "," if m[1] == "2C" else "=", name)


def _same(expected: str, given: bytes) -> bool:
    return hmac.compare_digest(expected.encode(), given)


def read_credentials(path: str) -> dict[str, str]:
    """``user:password`` (or ``user,password``) lines; blank lines and ``#`` comments
    skipped. Raises ValueError naming the first bad line."""
    found: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            cut = min((i for i in (text.find(":"), text.find(",")) if i > 0), default=-1)
            if cut < 0:
                raise ValueError(f"{path}:{number}: not user:password")
            found[text[:cut]] = text[cut + 1 :]
    return found


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
    every: dict[str, int] = field(default_factory=dict)
    """Per command, its own N (``-r rcpt/5``), instead of ``fault_every``."""
    starttls: bool = False
    """Offer STARTTLS (the server loop does the handshake)."""
    smtps: bool = False
    """TLS from the first byte (implicit TLS)."""
    credentials: dict[str, str] | None = None
    """user -> password: offer AUTH PLAIN, LOGIN and CRAM-MD5 and check against these."""
    hidden: frozenset[str] = frozenset()
    """Extensions not offered (and their commands and parameters refused)."""
    proxy_protocol: bool = False
    """Each connection starts with a PROXY protocol header (v1 or v2), as behind HAProxy."""
    late_after: float = LATE_AFTER
    """Delivery tracking: a traced message that arrives later than this (seconds) is late."""
    expected: dict[str, int] = field(default_factory=dict)
    """Delivery tracking: run id -> how many messages the run sent (``--expect``)."""
    delivery_report: Path | None = None
    """Write the delivery tracker's report here (JSON) at each report and at exit."""
    delivery_log: Path | None = None
    """Append one JSON line per traced arrival here."""

    def offers(self, extension: str) -> bool:
        return extension not in self.hidden

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
    auth: int | None = None
    """Successful AUTH exchanges (None: AUTH not configured, not printed)."""
    auth_failed: int = 0
    client_addresses: set[str] = field(default_factory=set)
    """Client addresses named by XCLIENT, XFORWARD or a PROXY header (printed as
    ``clients N`` when there are any)."""
    delivery: DeliveryTracker = field(default_factory=DeliveryTracker)
    """Every accepted message's header section goes to it (tracing or not)."""

    def line(self) -> str:
        line = (
            f"{PROGRAM}: connections {self.connections} messages {self.messages} "
            f"recipients {self.recipients} faults {self.faults}"
        )
        if self.tls is not None:
            line += f" tls {self.tls} resumed {self.tls_resumed} tls_failed {self.tls_failed}"
        if self.auth is not None:
            line += f" auth {self.auth} auth_failed {self.auth_failed}"
        if self.client_addresses:
            line += f" clients {len(self.client_addresses)}"
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
    auth_step: str | None = None  # an AUTH exchange waiting for the client's next line
    auth_user: str = ""
    auth_challenge: bytes = b""
    authenticated: bool = False
    binarymime: bool = False  # MAIL said BODY=BINARYMIME: DATA is refused (RFC 3030)
    bdat_left: int = 0  # bytes of a BDAT chunk still to come
    bdat_last: bool = False
    bdat_error: bytes = b""  # the reply for a chunk that is read but refused
    bdat_bytes: int = 0
    head: bytes = b""
    """The start of the message coming in, kept for the delivery tracker: up to and
    including its first empty line, at most HEAD_LIMIT bytes (and then whole lines)."""
    head_done: bool = False  # head holds all it will: the rest of the content is not kept
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
        every = config.every.get(command, config.fault_every)
        if every > 1:
            seen = self.counters.seen[command] = self.counters.seen.get(command, 0) + 1
            if seen % every:
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
            if self.bdat_left:
                taken = min(self.bdat_left, len(buffer))
                if not self.head_done:
                    self._keep_head(buffer, taken)
                self.bdat_left -= taken
                self.bdat_bytes += taken
                buffer = buffer[taken:]
                if not self.bdat_left:
                    out.append(self._chunk_end())
                continue
            if self.in_data:
                if self.data_bytes == 0 and buffer.startswith(b".\r\n"):
                    end = -2  # an empty message: the "." line comes first
                else:
                    end = buffer.find(b"\r\n.\r\n")
                if end == -1:
                    keep = buffer[-4:]
                    taken = len(buffer) - len(keep)
                    if not self.head_done:
                        self._keep_head(buffer, taken)
                    self.data_bytes += taken
                    buffer = keep
                    break
                if not self.head_done:
                    self._keep_head(buffer, end + 2)  # the content ends with its CRLF
                buffer = buffer[end + 5 :]
                self.in_data = False
                self.data_bytes = 0
                out.append(self._end_of_data(dot_stuffed=True))
                continue
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > self._line_limit(buffer):
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

    def _keep_head(self, buffer: bytes, length: int) -> None:
        """Add the next ``length`` bytes of content, at the start of ``buffer``, to
        :attr:`head` as far as the header section goes: up to its first CRLFCRLF, or a
        CRLF at the very start (no header section), or HEAD_LIMIT bytes cut to whole
        lines. A message that comes in one read costs one bounded ``find`` and a copy
        of its header section."""
        head = self.head
        if head:
            head += buffer[: min(length, HEAD_LIMIT - len(head))]
            stop = head.find(b"\r\n\r\n", max(len(self.head) - 3, 0))
        else:
            length = min(length, HEAD_LIMIT)
            stop = buffer.find(b"\r\n\r\n", 0, length)
            head = buffer[: stop + 4 if stop >= 0 else length]
        if stop >= 0:
            self.head, self.head_done = head[: stop + 4], True
        elif head[:2] == b"\r\n":
            self.head, self.head_done = b"\r\n", True
        elif len(head) >= HEAD_LIMIT:
            self.head, self.head_done = head[: head.rfind(b"\n") + 1], True
        else:
            self.head = head

    def _parameters(self, line: bytes, verb: bytes) -> bytes:
        """A refusal for an ESMTP parameter of MAIL or RCPT this sink does not offer, or
        b""; MAIL's BODY=BINARYMIME is noted (its content must come by BDAT)."""
        close = line.rfind(b">")
        words = line[close + 1 :].split() if close >= 0 else []
        if verb == b"MAIL":
            self.binarymime = False
        for word in words:
            keyword, _, value = word.partition(b"=")
            keyword = keyword.upper()
            if verb == b"MAIL" and keyword == b"BODY":
                needs = BODY_NEEDS.get(value.upper(), "?")
                if needs is not None and not self.config.offers(needs):
                    return b"555 5.5.4 Unsupported option: " + word + b"\r\n"
                self.binarymime = value.upper() == b"BINARYMIME"
                continue
            extension = PARAMETERS.get(keyword)
            mail_only = keyword in (b"SIZE", b"SMTPUTF8", b"RET", b"ENVID")
            if extension is None or mail_only != (verb == b"MAIL"):
                return b"555 5.5.4 Unsupported option: " + word + b"\r\n"
            if not self.config.offers(extension):
                return b"555 5.5.4 Unsupported option: " + word + b"\r\n"
            if keyword == b"SIZE" and value.isdigit() and int(value) > SIZE_LIMIT:
                return b"552 5.3.4 Message size exceeds fixed limit\r\n"
        return b""

    def _client_identity(self, name: str, line: bytes) -> bytes:
        """XCLIENT (a new session as the named client: the greeting again) or XFORWARD
        (250); their ADDR is counted."""
        keyword = name.upper()
        if not self.config.offers(keyword):
            return b"502 5.5.1 Error: command not implemented\r\n"
        if self.has_mail:
            return b"503 5.5.1 Error: MAIL transaction in progress\r\n"
        attributes = dict(word.split(b"=", 1) for word in line.split()[1:] if b"=" in word)
        if not attributes:
            return b"501 5.5.4 Syntax: " + keyword.encode() + b" attribute=value...\r\n"
        address = attributes.get(b"ADDR")
        if address:
            text = address.decode("ascii", "replace")
            self.counters.client_addresses.add(text[5:] if text.startswith("IPV6:") else text)
        if name == "xforward":
            return b"250 2.0.0 Ok\r\n"
        self.has_mail = False
        self.recipients = 0
        self.authenticated = False
        return b"220 " + self.config.hostname.encode() + b" ESMTP locust-smtp-sink\r\n"

    def _bdat(self, line: bytes) -> bytes:
        """``BDAT n [LAST]`` (RFC 3030): the n bytes that follow are read whatever happens
        (the reply comes after them); refused if CHUNKING is hidden or no RCPT came."""
        words = line.split()
        if len(words) < 2 or not words[1].isdigit() or len(words) > 3:
            return b"501 5.5.4 Syntax: BDAT count [LAST]\r\n"
        last = len(words) == 3
        if last and words[2].upper() != b"LAST":
            return b"501 5.5.4 Syntax: BDAT count [LAST]\r\n"
        size = int(words[1])
        if not self.config.offers("CHUNKING"):
            error = b"502 5.5.1 Error: command not implemented\r\n"
        elif not self.recipients:
            error = b"503 5.5.1 Error: need RCPT command\r\n"
        else:
            error = self.bdat_error  # an earlier chunk was refused: so is the rest
        self.bdat_error = error
        self.bdat_last = last
        self.bdat_left = size
        if size == 0:
            return self._chunk_end()
        return b""

    def _chunk_end(self) -> bytes:
        """The reply to a BDAT chunk whose bytes are all in."""
        error, last = self.bdat_error, self.bdat_last
        if last:
            self.bdat_bytes = 0
            self.bdat_error = b""
            fault = None if error else self._fault("bdat")
            if error or fault is not None:
                self.head, self.head_done = b"", False
                recipients = self.recipients
                self.has_mail = False
                self.recipients = 0
                self.binarymime = False
                if fault is not None:  # LMTP: one reply per recipient, as after the "."
                    return fault * (recipients if self.config.lmtp and fault else 1)
                return error  # an earlier chunk was refused: one reply
            return self._end_of_data(dot_stuffed=False)
        if error:
            return error
        fault = self._fault("bdat")
        if fault is not None:
            self.bdat_error = fault if fault and not self.closing else b""
            return fault
        return b"250 2.0.0 Ok: %d octets received\r\n" % self.bdat_bytes

    def _line_limit(self, buffer: bytes) -> int:
        """Longest command line taken: 4096 octets, 12288 for AUTH and its responses
        (RFC 4954 §4: OAuth tokens make long lines)."""
        if self.auth_step is not None or buffer[:5].upper() == b"AUTH ":
            return AUTH_LINE_LIMIT
        return LINE_LIMIT

    def _command(self, line: bytes) -> bytes:
        if self.auth_step is not None:
            return self._auth_continue(line)
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
            b"AUTH": "auth",
            b"BDAT": "bdat",
            b"XCLI": "xclient",
            b"XFOR": "xforward",
        }.get(verb)
        if name == "starttls" and line.upper() != b"STARTTLS":
            name = None
        if name is None:
            return b"502 5.5.2 Error: command not recognized\r\n"
        fault = self._fault(name) if name != "bdat" else None  # BDAT: after its bytes
        if fault is not None:
            return fault
        if name == "starttls":
            if not self.config.starttls:
                return b"502 5.5.1 Error: command not implemented\r\n"
            if self.tls_active:
                return b"503 5.5.1 Error: TLS already active\r\n"
            self.starting_tls = True
            return b"220 2.0.0 Ready to start TLS\r\n"
        if name == "auth":
            return self._auth_start(line)
        if name == "bdat":
            return self._bdat(line)
        if name in ("xclient", "xforward"):
            return self._client_identity(name, line)
        if name == "mail":
            refused = self._parameters(line, b"MAIL")
            if refused:
                return refused
            self.has_mail = True
            self.recipients = 0
            self.head, self.head_done = b"", False  # content of a refused transaction
            return b"250 2.1.0 Ok\r\n"
        if name == "rcpt":
            if not self.has_mail:
                return b"503 5.5.1 Error: need MAIL command\r\n"
            refused = self._parameters(line, b"RCPT")
            if refused:
                return refused
            self.recipients += 1
            self.counters.recipients += 1
            return b"250 2.1.5 Ok\r\n"
        if name == "data":
            if not self.recipients:
                return b"503 5.5.1 Error: need RCPT command\r\n"
            if self.binarymime:
                return b"503 5.5.1 Error: BODY=BINARYMIME needs BDAT\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if name in ("helo", "ehlo", "lhlo"):
            self.has_mail = False
            self.recipients = 0
            host = self.config.hostname.encode()
            if name == "helo":
                return b"250 " + host + b"\r\n"
            starttls = b"250-STARTTLS\r\n" if self.config.starttls and not self.tls_active else b""
            auth = b"250-AUTH " + AUTH_MECHANISMS + b"\r\n" if self.config.credentials else b""
            lines = [b"250-" + host]
            for extension in EXTENSIONS:
                if self.config.offers(extension):
                    if extension == "SIZE":
                        lines.append(b"250-SIZE %d" % SIZE_LIMIT)
                    else:
                        tail = EXTENSION_PARAMETERS.get(extension, b"")
                        lines.append(b"250-" + extension.encode() + tail)
            if starttls:
                lines.append(b"250-STARTTLS")
            if auth:
                lines.append(b"250-AUTH " + AUTH_MECHANISMS)
            lines[-1] = b"250 " + lines[-1][4:]
            return b"\r\n".join(lines) + b"\r\n"
        if name == "rset":
            self.has_mail = False
            self.recipients = 0
            self.binarymime = False
            self.bdat_error = b""
            self.head, self.head_done = b"", False
            return b"250 2.0.0 Ok\r\n"
        if name == "noop":
            return b"250 2.0.0 Ok\r\n"
        self.closing = True  # quit
        return b"221 2.0.0 Bye\r\n"

    # -- AUTH (RFC 4954): PLAIN, LOGIN, CRAM-MD5 against config.credentials ---------------

    def _auth_start(self, line: bytes) -> bytes:
        if not self.config.credentials:
            return b"502 5.5.1 Error: command not implemented\r\n"
        if self.authenticated:
            return b"503 5.5.1 Error: already authenticated\r\n"
        if self.has_mail:
            return b"503 5.5.1 Error: MAIL transaction in progress\r\n"
        words = line.split()
        mechanism = words[1].upper() if len(words) > 1 else b""
        initial = words[2] if len(words) > 2 else None
        if mechanism == b"PLAIN":
            self.auth_step = "plain"
            return b"334 \r\n" if initial is None else self._auth_continue(initial)
        if mechanism == b"LOGIN":
            self.auth_step = "login-user"
            if initial is not None:
                return self._auth_continue(initial)
            return b"334 " + base64.b64encode(b"Username:") + b"\r\n"
        if mechanism in (b"XOAUTH2", b"OAUTHBEARER"):
            self.auth_step = mechanism.decode().lower()
            return b"334 \r\n" if initial is None else self._auth_continue(initial)
        if mechanism == b"CRAM-MD5":
            self.auth_step = "cram"
            self.auth_challenge = f"<{secrets.token_hex(8)}@{self.config.hostname}>".encode()
            return b"334 " + base64.b64encode(self.auth_challenge) + b"\r\n"
        return b"504 5.5.4 Error: unsupported authentication mechanism\r\n"

    def _auth_continue(self, line: bytes) -> bytes:
        step = self.auth_step
        if line.strip() == b"*":
            self.auth_step = None
            return b"501 5.7.0 Error: authentication aborted\r\n"
        try:
            decoded = base64.b64decode(line.strip(), validate=True)
        except ValueError:
            self.auth_step = None
            return b"501 5.5.2 Error: malformed response\r\n"
        credentials = self.config.credentials or {}
        if step == "oauth-error":  # the client acknowledged the error challenge
            self.auth_step = None
            self.counters.auth_failed += 1
            return b"535 5.7.8 Error: authentication failed\r\n"
        if step in ("xoauth2", "oauthbearer"):
            user, token = _oauth_fields(decoded)
            if user in credentials and _same(credentials[user], token.encode()):
                self.auth_step = None
                self.authenticated = True
                self.counters.auth = (self.counters.auth or 0) + 1
                return b"235 2.7.0 Authentication successful\r\n"
            self.auth_step = "oauth-error"  # RFC 7628 §3.2.2: an error challenge first
            error = b'{"status":"invalid_token","schemes":"bearer"}'
            return b"334 " + base64.b64encode(error) + b"\r\n"
        if step == "login-user":
            self.auth_user = decoded.decode("utf-8", "replace")
            self.auth_step = "login-password"
            return b"334 " + base64.b64encode(b"Password:") + b"\r\n"
        self.auth_step = None
        ok = False
        if step == "plain":
            parts = decoded.split(b"\0")
            if len(parts) == 3:
                user = parts[1].decode("utf-8", "replace")
                ok = user in credentials and _same(credentials[user], parts[2])
        elif step == "login-password":
            user = self.auth_user
            ok = user in credentials and _same(credentials[user], decoded)
        elif step == "cram":
            user, _, digest = decoded.decode("utf-8", "replace").rpartition(" ")
            if user in credentials:
                expected = hmac.new(
                    credentials[user].encode(), self.auth_challenge, hashlib.md5
                ).hexdigest()
                ok = _same(expected, digest.encode())
        counters = self.counters
        if ok:
            self.authenticated = True
            counters.auth = (counters.auth or 0) + 1
            return b"235 2.7.0 Authentication successful\r\n"
        counters.auth_failed += 1
        return b"535 5.7.8 Error: authentication failed\r\n"

    def tls_started(self) -> None:
        """The handshake after STARTTLS succeeded: a fresh start (RFC 3207 §4.2)."""
        self.starting_tls = False
        self.tls_active = True
        self.has_mail = False
        self.recipients = 0
        self.authenticated = False  # an AUTH in the clear does not survive it
        self.auth_step = None
        self.auth_user = ""

    def _end_of_data(self, dot_stuffed: bool) -> bytes:
        """The reply to a whole message (after DATA's "." or the last BDAT chunk); an
        accepted one goes to the delivery tracker, once whatever the recipients (LMTP
        too: one transaction, one arrival). ``dot_stuffed``: it came after DATA."""
        recipients = self.recipients
        self.has_mail = False
        self.recipients = 0
        self.binarymime = False
        head = self.head
        self.head, self.head_done = b"", False  # the next message starts afresh
        fault = self._fault(".")
        if fault is not None:
            return fault * (recipients if self.config.lmtp and fault else 1)
        self.counters.messages += 1
        self.counters.delivery.arrived(head, time.time(), dot_stuffed=dot_stuffed)
        if self.config.lmtp:
            return b"250 2.0.0 Ok: delivered\r\n" * recipients
        return b"250 2.0.0 Ok: queued\r\n"
