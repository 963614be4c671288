"""Locust users that put SMTP or LMTP load on a mail server.

Subclass :class:`SmtpUser` (or :class:`LmtpUser`), point Locust's host at the
server and tune the class attributes below; each task iteration sends one
message, by default the one smtp-source sends.

Every stage is one Locust request (request type ``SMTP`` or ``LMTP``, name
``connect``, ``banner``, ``HELO``, ``MAIL``, ``RCPT``, ``DATA``,
``end of data``, ``QUIT`` ...) and every attempted message one more, named
``message``: a message whose connection or greeting failed counts as a failed
``message`` too, so the ``message`` row counts attempts. Successful stages reach
Locust's statistics in batches unless something listens to ``events.request``
(:attr:`SmtpUser.request_events`, :mod:`locust_smtp.plugin.recorder`).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import ipaddress
import itertools
import os
import random
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import gevent
from gevent import GreenletExit, Timeout
from locust import User, constant
from locust.exception import LocustError, StopUser

from ..client import DEFAULT_TIMEOUT, MailResult, SmtpClient
from ..protocol import stages
from ..protocol._auth import MECHANISMS, not_offered_text
from ..protocol._auth import offered as auth_offered
from ..protocol._content import (
    MessageTemplate,
    SourceMessage,
    data_payload,
    hex4,
    message_id_prefix,
)
from ..protocol._envelope import (
    RecipientNumbers,
    default_address,
    local_hostname,
    source_recipients,
)
from ..protocol._errors import (
    ConnectError,
    ConnectionLost,
    NotOffered,
    ReplyError,
    SmtpError,
    SmtpTimeout,
)
from ..protocol._writers import DATA_WRITER
from ..protocol.address import AddressError, ServerAddress, parse_host
from ..protocol.client_identity import IDENTITIES, AddressPool, proxy_header
from ..protocol.mail_options import PLAIN_PLAN, MailOptions, Plan
from ..tls import context_for
from .accounts import accounts_of
from .arrivals import FROM_SCHEDULE, START_LAG, schedule_for
from .client_addresses import next_client_number, worker_index
from .codes import codes_for
from .compose import Composer, ConnectionQuota, Message, wants_composer
from .options import apply_options
from .outcomes import Outcomes, outcome_of, outcomes_for
from .pool import get_pool
from .recorder import StageRecord, recorder_of, wants_stage_events
from .trace import Tracer, make_tracer
from .transaction_log import MessageRecord, transaction_log_for

if TYPE_CHECKING:
    from locust.env import Environment

    from ..protocol._replies import Reply

_message_numbers = itertools.count()
_user_numbers = itertools.count(1)


@functools.lru_cache(maxsize=8)
def _credential_rows(path: str) -> list[tuple[str, str]]:
    """The ``username,password`` rows of a CSV file (read once per process)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    if not rows or any(len(r) < 2 for r in rows):
        raise ValueError(f"{path}: not username,password rows")
    return [(r[0], r[1]) for r in rows]


_recipient_numbers = RecipientNumbers()


def _worker_count(environment: Environment) -> int:
    """The run's number of workers, as the master said at the start (1 without)."""
    options = environment.parsed_options
    return max(int(getattr(options, "smtp_worker_count", 1) or 1), 1)


_QUIT_ON_STOP_TIMEOUT = 5.0
_COUNTED_STAGES = frozenset({stages.RCPT, stages.END_OF_DATA, stages.MESSAGE})
_MESSAGE = stages.MESSAGE
_NOT_REPLIES = frozenset({stages.MESSAGE, stages.FROM_SCHEDULE, stages.START_LAG})
"""Stages that are not one command's reply (``message`` repeats its last reply; its
failures are counted at the stage that failed)."""


class SmtpUser(User):
    """A Locust user speaking SMTP; abstract, subclass it in your locustfile.

    The host (``--host`` or the web UI) is ``smtp://host[:port]``,
    ``lmtp://host[:port]``, ``smtp+unix:/path``, ``lmtp+unix:/path`` or any
    smtp-source server form (``host:port``, ``[::1]:25``, ``unix:/path``).
    """

    abstract = True
    wait_time = constant(0)

    sender: str | None = None
    """Envelope sender and ``From:`` header; default ``foo@`` + :attr:`helo_name`."""
    recipient: str | None = None
    """Recipient and ``To:`` header; default ``foo@`` + :attr:`helo_name`."""
    recipients_per_message: int = 1
    """RCPT commands per message; as smtp-source ``-r``, all but the last get a number."""
    number_recipients: bool = False
    """Prefix every recipient with a process-wide counter (smtp-source ``-N``)."""
    message_size: int | None = None
    """Body of this many bytes (smtp-source ``-l``) instead of the four-line default."""
    message_file: str | None = None
    """Send this file's content (smtp-source ``-F``; no generated headers)."""
    corpus: str | None = None
    """Messages from disk instead: ``PATH[=WEIGHT],...`` of Maildirs, ``.eml`` trees,
    mboxes or files, picked at random by weight (:mod:`locust_smtp.plugin.compose`)."""
    rewrite_headers: bool = True
    """Give corpus messages the transaction's From, To, Message-Id and Date."""
    message_template: str | None = None
    """A template file: the message with ``{seq}``, ``{sender}``, ``{recipient}``,
    ``{words:N}``, ``{pad:SIZE}`` ... filled in for each message."""
    message_sizes: str | None = None
    """Pad each message to a size drawn from this distribution (``lognormal:64K,1.2``,
    ``uniform:2K-20M``, ``weights:4K=70,1M=30``, ``empirical:CORPUS``)."""
    attachments: str | None = None
    """Attach random files of these sizes to each message (``100K,2M``)."""
    recipient_counts: str | None = None
    """Recipients per message, a distribution (``weights:1=80,5=15,50=5``)."""
    recipient_domains: str | None = None
    """Recipients drawn over a weighted domain mix (``gmail.com:67,outlook.com:20``)."""
    invalid_recipients: float = 0.0
    """The share (0 to 1) of drawn recipients meant to be refused (unknown users)."""
    recipient_file: str | None = None
    """Recipients from a CSV file (a column of addresses; the first by default)."""
    sender_file: str | None = None
    """Senders from a CSV file."""
    unique_addresses: bool = False
    """Each worker takes its own slice of the address files."""
    messages_per_connection: str | None = None
    """Messages a connection carries before QUIT, drawn per connection (``uniform:1-20``);
    implies :attr:`reuse_connection`."""
    workload_seed: int | None = None
    """Seed of this class's draws (user N uses seed + N); default: random."""
    subject: str | None = None
    """Add a ``Subject:`` header (smtp-source ``-S``)."""
    headers: bool = True
    """Generate From/To/Date/Message-Id headers (False is smtp-source ``-o`` for content)."""
    helo_name: str | None = None
    """Name sent with HELO/EHLO/LHLO and used in default addresses and Message-Ids;
    default: the machine's hostname."""
    hello_command: str | None = None
    """``"HELO"``, ``"EHLO"``, ``"LHLO"``, or ``""`` to send none (smtp-source ``-o``);
    default LHLO for LMTP, HELO for SMTP (as smtp-source)."""
    reuse_connection: bool = False
    """Keep the connection open for the next message (smtp-source ``-d``); by default,
    as smtp-source, every message has its own connection, ending with QUIT."""
    lmtp: bool = False
    """Speak LMTP (also implied by an ``lmtp://`` host)."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds a reply may take, from when the user starts waiting for it to its last
    line, and the limit on every wait while writing; then the stage fails with
    :class:`~locust_smtp.SmtpTimeout`. Not a total: each reply has the whole of it."""
    connect_timeout: float | None = None
    """Seconds a connect may take; default :attr:`timeout`."""
    reconnect_delay: float = 0.1
    """Seconds to wait before connecting again after a connect failure, lost connection
    or timeout; doubled after each further one, up to :attr:`reconnect_delay_max`, and
    back to none after a success. 0 reconnects at once."""
    reconnect_delay_max: float = 2.0
    """The longest wait before a reconnect."""

    starttls: str = "no"
    """``"no"``; ``"opportunistic"``: STARTTLS when the EHLO reply offers it, else go on
    in the clear; ``"required"``: STARTTLS, and a failed ``message`` (``NotOffered``, stage
    ``STARTTLS``) when it is not offered. Then EHLO again. Implies EHLO. For TLS from the
    first byte use an ``smtps://host:465`` host instead."""
    tls_verify: bool = True
    """Check the server's certificate and name (False: accept any, for test servers)."""
    tls_ca_file: str | None = None
    """CA certificates (PEM) to trust instead of the system's."""
    tls_cert_file: str | None = None
    """A client certificate (PEM, with its chain), presented when the server asks."""
    tls_key_file: str | None = None
    """Its private key, if not in :attr:`tls_cert_file`."""
    tls_server_name: str | None = None
    """Name sent (SNI) and checked; default: the host's name."""
    tls_min_version: str | None = None
    """Oldest TLS version offered: ``"TLSv1.2"``, ``"TLSv1.3"`` (default: Python's)."""
    tls_max_version: str | None = None
    """Newest TLS version offered."""
    tls_ciphers: str | None = None
    """OpenSSL cipher string for TLS 1.2 and older."""
    tls_resume: bool = True
    """Resume the TLS session of this user's previous connection (as a real client
    reconnecting does; the ``TLS handshake`` stage shows what it saves)."""

    auth_mechanism: str | None = None
    """AUTH after EHLO (and after STARTTLS): ``"PLAIN"``, ``"LOGIN"``, ``"CRAM-MD5"``,
    ``"XOAUTH2"`` or ``"OAUTHBEARER"``; None: no AUTH. Implies EHLO."""
    auth_username: str | None = None
    auth_password: str | None = None
    """The password, or for XOAUTH2/OAUTHBEARER the access token."""
    auth_token_file: str | None = None
    """Read the access token from this file (XOAUTH2, OAUTHBEARER), once per user."""
    auth_credentials_file: str | None = None
    """A CSV file of ``username,password`` rows: each user of the run takes the next row
    (wrapping around; across workers the master counts), so that concurrent users log in
    as different accounts."""
    auth_allow_plaintext: bool = False
    """Allow AUTH on a connection that is not encrypted (by default the credentials only
    go over TLS: STARTTLS or an ``smtps://`` host)."""

    pipelining: str = "auto"
    """PIPELINING (RFC 2920): MAIL, every RCPT and DATA (or every BDAT chunk) in one
    write. ``"auto"``: when the EHLO reply offers it; ``"on"``: a failed message
    (``NotOffered``) when it does not; ``"force"``: even when not offered (servers that
    lie); ``"off"``. Each reply is timed from the write that carried its command. Like
    every ESMTP setting here, ``"auto"`` needs EHLO: HELO (the default greeting) offers
    nothing; ``"on"``, ``"force"`` and the parameters below imply EHLO."""
    chunking: str = "off"
    """CHUNKING (RFC 3030): the content in BDAT chunks instead of DATA; ``"auto"``,
    ``"on"``, ``"force"`` as :attr:`pipelining`."""
    bdat_chunk_size: int = 0
    """Bytes per BDAT chunk; 0: the whole message as one ``BDAT n LAST``."""
    mail_size: str = "auto"
    """``SIZE=`` the message's size on MAIL (RFC 1870): ``"auto"`` when offered, ``"on"``,
    ``"force"``, ``"off"``."""
    body_type: str | None = None
    """``BODY=`` on MAIL: ``"7BIT"``, ``"8BITMIME"`` (RFC 6152) or ``"BINARYMIME"`` (RFC
    3030, needs :attr:`chunking`); the extension must be offered."""
    smtputf8: str = "off"
    """``SMTPUTF8`` on MAIL (RFC 6531), for UTF-8 addresses and headers: ``"auto"``,
    ``"on"``, ``"force"``, ``"off"``."""
    dsn_notify: str | None = None
    """DSN (RFC 3461) ``NOTIFY=`` on each RCPT: ``"NEVER"`` or a comma list of
    ``SUCCESS``, ``FAILURE``, ``DELAY``. Any DSN setting needs DSN offered."""
    dsn_ret: str | None = None
    """DSN ``RET=FULL`` or ``HDRS`` on MAIL."""
    dsn_envid: str | None = None
    """DSN ``ENVID=`` on MAIL (sent as xtext)."""
    dsn_orcpt: bool = False
    """DSN ``ORCPT=rfc822;recipient`` on each RCPT."""

    client_identity: str | None = None
    """Tell the server the client is someone else, with an address of
    :attr:`client_addresses`: ``"xclient"`` (Postfix's XCLIENT after EHLO: the session is
    the named client's; then EHLO again), ``"xforward"`` (Postfix's XFORWARD before each
    MAIL: the transaction is logged as the named client's), ``"proxy-v1"`` or
    ``"proxy-v2"`` (a PROXY protocol header before the first byte, as HAProxy writes:
    for servers behind a load balancer, such as Postfix's
    ``smtpd_upstream_proxy_protocol = haproxy``); None: no. XCLIENT and XFORWARD must be
    offered (the server lists the client as authorized), else a ``NotOffered`` failure."""
    client_addresses: str = "198.18.0.0/15"
    """The CIDR block (IPv4 or IPv6) the synthetic addresses come from; by default RFC
    2544's benchmarking block."""
    client_address_per: str = "user"
    """``"user"``: each user keeps one address; ``"connection"``: a new one for each
    connection."""

    trace_delivery: bool = False
    """Start every message with an ``X-Locust-Smtp-Trace`` header (run id, number, send
    time) for end-to-end delivery measurement (:mod:`locust_smtp.plugin.trace`)."""
    transaction_log: str | None = None
    """A file to append one JSON line per message to (schema:
    :mod:`locust_smtp.plugin.transaction_log`); on a worker, ``PATH.worker-N``. Default:
    none."""
    request_type: str = "SMTP"
    """Locust request type of every event; set from :attr:`lmtp` and the host."""
    request_events: str = "auto"
    """Which stage samples are Locust request events (``events.request.fire``):
    ``"stage"``, every one, as Locust users expect; ``"failures"``, only failed stages,
    successes reaching Locust's statistics in batches (about 5 µs less per stage: the
    statistics, reports and web UI show the same); ``"auto"``, ``"stage"`` when anything
    besides Locust's own statistics listens to ``events.request`` (your locustfile's
    listener, Locust's OpenTelemetry or request logger), else ``"failures"``.
    ``--smtp-request-events`` overrides it."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        apply_options(self, environment)
        if not self.host:
            raise LocustError(
                "You must specify the host (smtp://host:port, lmtp://host:port or unix:/path), "
                "on the command line, in the web UI or as the class attribute `host`."
            )
        try:
            address = parse_host(self.host)
        except AddressError as exc:
            raise LocustError(f"bad host: {exc}") from None
        lmtp = self.lmtp or bool(address.lmtp)
        self.request_type = "LMTP" if lmtp else "SMTP"
        self._lmtp = bool(lmtp)
        self._fire: Callable[..., None] = environment.events.request.fire
        self._recorder = recorder_of(environment)
        self._records: dict[str, StageRecord] = self._recorder.table(self.request_type)
        self._batched = not wants_stage_events(self.request_events, environment)
        self._own_context = type(self).context is not User.context
        self.client = self.make_client(address, lmtp)
        """The :class:`~locust_smtp.client.SmtpClient` this user talks through."""
        self.my_hostname = self.helo_name or local_hostname()
        self.envelope_sender = (
            self.sender if self.sender is not None else default_address(self.my_hostname)
        )
        self.envelope_recipient = (
            self.recipient if self.recipient is not None else default_address(self.my_hostname)
        )
        if self.recipients_per_message < 1:
            raise LocustError(f"bad recipient count: {self.recipients_per_message}")
        self.template = self.build_template()
        self.payload_template = DATA_WRITER.frame_template(self.template)
        """:attr:`template` framed for DATA once: each rendering is ready to send."""
        self._credentials = ("", "")
        self._account_number: int | None = None
        """This user's row of :attr:`auth_credentials_file` (:mod:`.accounts`)."""
        if self.auth_mechanism is not None:
            if self.auth_mechanism.upper() not in MECHANISMS:
                raise LocustError(
                    f"bad auth_mechanism: {self.auth_mechanism!r} (one of {', '.join(MECHANISMS)})"
                )
            self._credentials = self._load_credentials()  # a file's row: at the first AUTH
        if self.starttls not in ("no", "opportunistic", "required"):
            raise LocustError(f"bad starttls: {self.starttls!r} (no, opportunistic, required)")
        try:
            self._mail_options = self.make_mail_options().check()
        except ValueError as exc:
            raise LocustError(f"bad ESMTP settings: {exc}") from None
        self._plan: Plan = PLAIN_PLAN
        self._planned_for: object = None
        ehlo = (
            self.starttls != "no"
            or self.auth_mechanism is not None
            or self._mail_options.wants_ehlo
        )
        self._identity = self._check_identity()
        self._client_address = ""
        if self._identity is not None and self.client_address_per == "user":
            self._client_address = self._identity[0].address(next_client_number(environment))
        ehlo = ehlo or self.client_identity in ("xclient", "xforward")
        default_hello = "LHLO" if lmtp else ("EHLO" if ehlo else "HELO")
        self._hello = self.hello_command if self.hello_command is not None else default_hello
        needs = "starttls" if self.starttls != "no" else "auth_mechanism"
        if (self.starttls != "no" or self.auth_mechanism) and self._hello.upper() not in (
            "EHLO",
            "LHLO",
        ):
            raise LocustError(
                f"bad settings: {needs} needs the extensions of an EHLO reply, but "
                f"hello_command is {self._hello!r}"
            )
        if address.tls and self.starttls != "no":
            raise LocustError(
                "bad settings: an smtps:// host speaks TLS from the first byte: "
                'starttls must be "no" (STARTTLS is for plaintext ports)'
            )
        self._pid = os.getpid()
        self._same_recipients: list[str] | None = None
        self._id_fd = -2
        self._id_prefix = ""
        self.messages_reported = 0
        """``message`` requests this user has reported (attempted messages)."""
        self._counting = False
        self._reconnect_wait = 0.0
        self._outcomes: Outcomes | None = None
        self._accepted_in_message = 0
        self._refused_in_message = 0
        self._codes = codes_for(environment, self.request_type)
        self._arrivals = schedule_for(environment)
        self._scheduled: float | None = None
        """The scheduled start of the message being sent, under an arrival rate."""
        drawn = wants_composer(self)
        self._tracer: Tracer | None = None
        """Numbers each message in the run: for the trace header and templates."""
        if self.trace_delivery or drawn:
            self._tracer = make_tracer(environment)
        self._seq: int | None = None
        """The run's number of the message being sent, once drawn (:meth:`_seq_of`)."""
        self._number: int | None = None
        """The pool's number of the message being sent (None without a pool)."""
        self._user_number = next(_user_numbers)
        self._composer: Composer | None = None
        self._quota: ConnectionQuota | None = None
        try:
            if drawn:
                self._composer = Composer(
                    self,
                    user_number=self._user_number,
                    worker=worker_index(environment) or 0,
                    workers=_worker_count(environment),
                )
            if self.messages_per_connection:
                self.reuse_connection = True
                rng = self._composer.rng if self._composer else random.Random()
                self._quota = ConnectionQuota(self.messages_per_connection, rng)
        except ValueError as exc:
            raise LocustError(f"bad workload settings: {exc}") from None
        self._log: MessageRecord | None = None
        if self.transaction_log:
            self._log = MessageRecord(
                transaction_log_for(environment, self.transaction_log),
                f"{worker_index(environment) or 0}:{self._user_number}",
            )
        self._lean = self._batched and self._log is None
        """Successes go to the statistics only (no events, no log): the short way."""
        self._accepting_stage = stages.END_OF_DATA if self._lmtp else stages.RCPT
        """The stage whose positive reply counts a recipient as accepted."""

    # -- configuration hooks ---------------------------------------------------------------

    def make_client(self, address: ServerAddress, lmtp: bool) -> SmtpClient:
        """The client of this user, reporting its stages to Locust."""
        uses_tls = address.tls or self.starttls != "no"
        return SmtpClient(
            address,
            lmtp=lmtp,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            on_stage=self._on_stage,
            tls_context=self.make_tls_context() if uses_tls else None,
            tls_server_name=self.tls_server_name,
            tls_resume=self.tls_resume,
        )

    def make_tls_context(self) -> ssl.SSLContext:
        """The TLS settings of this user's connections, from the ``tls_*`` attributes;
        override for anything else."""
        try:
            return context_for(self)
        except ValueError as exc:
            raise LocustError(f"bad TLS settings: {exc}") from None

    def _check_identity(self) -> tuple[AddressPool, str] | None:
        identity = self.client_identity
        if identity is None:
            return None
        if identity not in IDENTITIES:
            raise LocustError(f"bad client_identity: {identity!r} (one of {', '.join(IDENTITIES)})")
        if self.client_address_per not in ("user", "connection"):
            raise LocustError(
                f"bad client_address_per: {self.client_address_per!r} (user or connection)"
            )
        try:
            return AddressPool.parse(self.client_addresses), identity
        except ValueError as exc:
            raise LocustError(f"bad {exc}") from None

    def _next_client_address(self) -> str:
        """The synthetic address of this user's next connection."""
        if self.client_address_per == "user" or self._identity is None:
            return self._client_address
        self._client_address = self._identity[0].address(next_client_number(self.environment))
        return self._client_address

    def _proxy_header(self, address: str) -> bytes | None:
        identity = self._identity
        if identity is None or not identity[1].startswith("proxy"):
            return None
        client = self.client
        if client.address.is_unix:
            destination, port = "127.0.0.1", 25
        else:
            destination, port = client.resolve()[1][:2]  # type: ignore[index]
        source_port = 1024 + int(ipaddress.ip_address(address)) % 64000
        return proxy_header(int(identity[1][-1]), address, source_port, destination, port)

    def _say_who(self, address: str) -> SmtpError | None:
        """XCLIENT (then EHLO again) right after the greeting command; the failure, or
        None. XFORWARD is only checked here: it goes before each MAIL."""
        identity = self._identity
        if identity is None or identity[1].startswith("proxy"):
            return None
        client = self.client
        keyword = identity[1].upper()
        if keyword not in client.session.extensions:
            failure = NotOffered(
                stages.XCLIENT if keyword == "XCLIENT" else stages.XFORWARD,
                keyword,
                f"{keyword} not offered by the server (Postfix: list this client in "
                f"smtpd_authorized_{identity[1]}_hosts)",
            )
            self._on_stage(failure.stage, time.time(), 0.0, 0, None, failure)
            return failure
        if keyword == "XFORWARD":
            return None
        reply = client.xclient(address, self.my_hostname)
        if reply.code != 220:
            return client.rejection(stages.XCLIENT, reply)
        reply = client.hello(self.my_hostname, self._hello)
        if not reply.positive:
            return client.rejection(stages.hello_stage(self._hello), reply)
        return None

    def make_mail_options(self) -> MailOptions:
        """The ESMTP settings of this user's transactions, from its attributes."""
        return MailOptions.from_settings(self)

    def mail_plan(self) -> Plan:
        """How this connection's transactions go (its EHLO reply decides: worked out once
        per reply); raises ``NotOffered`` when something required is missing."""
        extensions = self.client.session.extensions
        if extensions is not self._planned_for:
            self._plan = self._mail_options.plan(extensions)
            self._planned_for = extensions
        return self._plan

    def build_template(self) -> MessageTemplate:
        """The message every :meth:`send_message` sends (plain content, not dot-stuffed:
        the writer frames it); override for other content."""
        content = None
        if self.message_file is not None:
            with open(self.message_file, "rb") as f:
                content = f.read()
        return SourceMessage(
            sender=self.envelope_sender,
            recipient=self.envelope_recipient,
            myhostname=self.my_hostname,
            subject=self.subject,
            length=self.message_size,
            file_content=content,
            headers=self.headers,
        ).template()

    def message_id(self, number: int | None = None) -> str:
        """The Message-Id local part for the next message (``PPPP.FFFF.CCCC``)."""
        if number is None:
            number = next(_message_numbers)
        fd = self.client.fileno
        if fd != self._id_fd:  # the first two fields change only with the connection
            self._id_fd = fd
            self._id_prefix = message_id_prefix(self._pid, max(fd, 0))
        return self._id_prefix + hex4(number)

    def recipients(self) -> list[str]:
        """The RCPT addresses of the next message."""
        if self.number_recipients:
            return source_recipients(
                self.envelope_recipient, self.recipients_per_message, _recipient_numbers
            )
        if self._same_recipients is None:  # the same for every message: made once
            self._same_recipients = source_recipients(
                self.envelope_recipient, self.recipients_per_message
            )
        return self._same_recipients.copy()

    # -- reporting -------------------------------------------------------------------------

    def _on_stage(
        self,
        stage: str,
        start_time: float,
        response_time: float,
        sent: int,
        reply: Reply | None,
        exception: BaseException | None,
    ) -> None:
        if exception is None and self._lean:
            # a success that only the statistics hear of: every positive reply of every
            # message comes here, so the accounting and StageRecord.add are written out
            if stage is self._accepting_stage:  # RCPT (SMTP) or end of data (LMTP)
                self._accepted_in_message += 1
            elif stage is _MESSAGE:
                self._count_message(start_time, response_time, None)
            record = self._records.get(stage)
            if record is None:
                record = self._recorder.record(self.request_type, stage)
            if reply is not None:
                record.seen.append(reply)  # counted by code once a second
            times = record.times
            times.append(response_time)
            record.length += sent
            if len(times) == 1 and record.recorder is not None:  # the first of a batch
                record.recorder.start()
            return
        if self._log is not None:
            self._log_stage(stage, start_time, response_time, sent, reply, exception)
        if stage in _COUNTED_STAGES:  # the run's accounting (locust_smtp.plugin.outcomes)
            if stage == stages.MESSAGE:
                self._count_message(start_time, response_time, exception)
            elif reply is not None:  # a RCPT reply, or an end-of-data reply
                if exception is None:
                    # a recipient counts as accepted at RCPT (SMTP), or when delivered (LMTP)
                    if (stage == stages.END_OF_DATA) is self._lmtp:
                        self._accepted_in_message += 1
                elif self._lmtp or stage == stages.RCPT:
                    self._refused_in_message += 1
        record = self._records.get(stage)
        if record is None:
            record = self._recorder.record(self.request_type, stage)
        if reply is not None:  # the reply codes by stage (.codes), sorted when read
            counted = record.replies.get(id(reply))
            if counted is None:
                record.replies[id(reply)] = [reply, 1]
            else:
                counted[1] += 1
        if exception is None and self._batched:
            record.add(response_time, sent)
            return
        if reply is None and exception is not None and stage not in _NOT_REPLIES:
            self._codes.no_reply(stage, exception)
        record.record_event(response_time)
        self._fire(
            request_type=self.request_type,
            name=stage,
            response_time=response_time,
            response_length=sent,
            response=reply,
            context=self.context() if self._own_context else {},
            exception=exception,
            start_time=start_time,
        )

    def _log_stage(
        self,
        stage: str,
        start_time: float,
        response_time: float,
        sent: int,
        reply: Reply | None,
        exception: BaseException | None,
    ) -> None:
        log = self._log
        assert log is not None
        if stage != stages.MESSAGE:
            log.stage(stage, response_time, sent, reply, exception)
            return
        refused = self._refused_in_message
        outcome = outcome_of(exception)
        log.message(
            self.request_type,
            start_time,
            response_time,
            outcome,
            self._accepted_in_message if outcome == "accepted" else 0,
            refused,
            exception,
            self._scheduled,
        )

    def _count_message(
        self, start_time: float, response_time: float, exception: BaseException | None
    ) -> None:
        """Count a reported message's outcome, and its recipients as their replies came."""
        self.messages_reported += 1
        outcome = outcome_of(exception)
        refused = self._refused_in_message
        outcomes = self._outcomes
        if outcomes is None:
            outcomes = self._outcomes = outcomes_for(self.environment, self.request_type)
        outcomes.count(outcome, start_time + response_time / 1000.0, refused > 0)
        if outcome == "accepted":
            outcomes.recipients_accepted += self._accepted_in_message
        outcomes.recipients_refused += refused
        self._accepted_in_message = self._refused_in_message = 0
        scheduled = self._scheduled
        if scheduled is not None:  # the same message, timed from when it was due
            self._scheduled = None
            late = start_time + response_time / 1000.0 - scheduled
            self._on_stage(FROM_SCHEDULE, scheduled, late * 1000.0, 0, None, exception)

    # -- sending ---------------------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: object) -> None:
        # Locust adds a base class's tasks to a subclass's own; the default task is only
        # for users that define none, so a locustfile's @task methods replace it
        super().__init_subclass__(**kwargs)
        own = [t for t in cls.tasks if t is not send_one_message]
        cls.tasks = own or [send_one_message]

    @contextlib.contextmanager
    def counted_message(self) -> Iterator[int | None]:
        """One message of the run's exact count (``--smtp-messages``), around the code
        that sends it; yields its number for the Message-Id (None when the run has no
        count, or inside another ``counted_message``: nested uses count once).

        It claims the message from the pool first; when none is left, it ends the
        session (QUIT) and stops the user (:class:`~locust.exception.StopUser`). However
        the block ends, the message is accounted for once: attempted (finished), or given
        back for another user to send if this user was stopped before the message went
        out. An unexpected exception in the block that left the message unreported is
        reported as a failed ``message``.

        :meth:`send_message`, :meth:`send_raw_message` and :meth:`send_transaction` use
        it already: wrap your own code in it only when a task drives :attr:`client`
        directly."""
        pool = get_pool(self.environment)
        if self._counting:
            yield None
            return
        self._seq = None  # a new message: its run number is drawn when first needed
        if self._arrivals is not None:
            self.await_arrival()
        if pool is None:
            self._number = None
            yield None
            return
        number = self._number = pool.claim()
        if number is None:
            self.end_session()
            raise StopUser()
        self._counting = True
        reported = self.messages_reported
        start, t0 = time.time(), time.perf_counter()
        try:
            yield number
        except GreenletExit:
            if self.messages_reported != reported:
                pool.finish()  # done; stopped while saying QUIT
            elif self.client.content_sent:
                # stopped after the content went out: the server may have it; never resend
                self.report_stopped_message()
                pool.finish()
            else:
                pool.release(number)  # stopped before the message went out
            raise
        except StopUser:
            if self.messages_reported == reported:
                pool.release(number)  # the task stopped the user before sending anything
            else:
                pool.finish()
            raise
        except BaseException as exc:
            if self.messages_reported == reported:
                self.client.close()
                self._on_stage(
                    stages.MESSAGE, start, (time.perf_counter() - t0) * 1000.0, 0, None, exc
                )
            pool.finish()
            raise
        finally:
            self._counting = False
        pool.finish()

    def await_arrival(self) -> None:
        """Under an arrival rate (``--smtp-rate``): wait for the next scheduled start
        (:mod:`locust_smtp.plugin.arrivals`); a message that starts late is reported as a
        ``start lag`` sample. :meth:`counted_message` calls it."""
        assert self._arrivals is not None
        scheduled, lag = self._arrivals.wait()
        self._scheduled = scheduled
        if lag:
            self._on_stage(START_LAG, scheduled, lag * 1000.0, 0, None, None)

    def send_message(self, number: int | None = None) -> MailResult | None:
        """Send the configured message (a new connection first if there is none);
        ``number`` is the Message-Id's third field, by default the pool's number."""
        with self.counted_message() as claimed:
            # the Message-Id shows the socket's fd, so connect before rendering
            if not self.client.connected and not self.open_session():
                return None
            number = claimed if number is None else number
            if self._composer is not None:
                message = self.compose_message(number)
                payload = data_payload(message.content)
                return self._send_counted(message.sender, message.recipients, payload)
            payload = self.payload_template.render(self.message_id(number))
            return self._send_counted(self.envelope_sender, self.recipients(), payload)

    def _seq_of(self, number: int | None) -> int:
        """The run's number of the message being sent: the same for its template and its
        trace header (the pool's ``number`` counts down; this counts up from 0)."""
        assert self._tracer is not None
        if self._seq is None:
            self._seq = self._tracer.seq(number)
        return self._seq

    def compose_message(self, number: int | None) -> Message:
        """The next message drawn from the workload settings (:mod:`.compose`)."""
        composer = self._composer
        assert composer is not None
        local = self.message_id(number)
        content = None if composer.corpus or composer.template else self.template.render(local)
        fields: dict[str, object] = {}
        if self._tracer is not None:
            fields = {"seq": self._seq_of(number), "run_id": self._tracer.run_id}
        return composer.compose(
            sender=self.envelope_sender,
            recipients=self.recipients(),
            content=content,
            message_id=f"<{local}@{self.my_hostname}>",
            fields=fields,
            headers=self.template.has_message_id,  # (no generated headers: -o, -F)
        )

    def send_raw_message(
        self, sender: str, recipients: Sequence[str], message: bytes
    ) -> MailResult | None:
        """Send your own envelope and message (dot-stuffed here), with the same accounting."""
        return self.send_transaction(sender, recipients, data_payload(message))

    def open_session(self) -> bool:
        """Connect, read the greeting and say HELO/EHLO/LHLO. On failure the ``message``
        stage is reported failed (the message was attempted) and False returned.

        After a connect failure, lost connection or timeout, the next connect waits
        :attr:`reconnect_delay`, doubled after every further failure up to
        :attr:`reconnect_delay_max`, so that a server that is down is not hammered."""
        client = self.client
        if self._quota is not None:
            self._quota.connection_ended()  # a new connection: a new share
        if self._reconnect_wait:
            gevent.sleep(self._reconnect_wait)
        start, t0 = time.time(), time.perf_counter()
        failure: BaseException | None = None
        address = self._next_client_address()
        client.proxy_header = self._proxy_header(address)
        try:
            reply = client.connect()
            if not reply.positive:
                failure = client.rejection(stages.BANNER, reply)
            elif self._hello:
                reply = client.hello(self.my_hostname, self._hello)
                if not reply.positive:
                    failure = client.rejection(stages.hello_stage(self._hello), reply)
                else:
                    failure = self._say_who(address)
                if failure is None and self.starttls != "no":
                    failure = self._start_tls()
                if failure is None and self.auth_mechanism is not None:
                    failure = self._authenticate()
            if failure is None:
                failure = self._plan_transactions()
        except SmtpError as exc:
            failure = exc
        if failure is None:
            return True
        self.end_session()
        self._after_failure(failure)
        self._on_stage(stages.MESSAGE, start, (time.perf_counter() - t0) * 1000.0, 0, None, failure)
        return False

    def _plan_transactions(self) -> SmtpError | None:
        """Decide this connection's ESMTP use from its EHLO reply (:meth:`mail_plan`); a
        required extension that is missing is the stage ``MAIL``'s failure, returned."""
        try:
            self.mail_plan()
        except NotOffered as failure:
            self._on_stage(stages.MAIL, time.time(), 0.0, 0, None, failure)
            return failure
        return None

    def _start_tls(self) -> SmtpError | None:
        """STARTTLS if the server offers it (or fail when it is required), then EHLO
        again; the failure to report, or None."""
        client = self.client
        if "STARTTLS" not in client.session.extensions:
            if self.starttls != "required":
                return None  # opportunistic: on in the clear
            failure = NotOffered(
                stages.STARTTLS,
                "STARTTLS",
                "STARTTLS not offered by the server (not in its EHLO reply): TLS is required "
                '(starttls = "opportunistic" would go on in the clear; a server on an '
                "implicit-TLS port wants an smtps:// host)",
            )
            self._on_stage(stages.STARTTLS, time.time(), 0.0, 0, None, failure)
            return failure
        reply = client.starttls()  # a TLS failure raises (reported as its stage)
        if reply.code != 220:
            if self.starttls == "opportunistic" and not client.session.closing:
                return None  # refused (454): on in the clear, the refusal in the stats
            return client.rejection(stages.STARTTLS, reply)
        reply = client.hello(self.my_hostname, self._hello)
        if not reply.positive:
            return client.rejection(stages.hello_stage(self._hello), reply)
        return None

    def _authenticate(self) -> SmtpError | None:
        """AUTH with this user's credentials; the failure to report, or None."""
        client = self.client
        if not client.encrypted and not self.auth_allow_plaintext:
            failure = NotOffered(
                stages.AUTH,
                "STARTTLS",
                "AUTH refused on a connection that is not encrypted ("
                + ("the server offered no STARTTLS" if self.starttls != "no" else "set starttls")
                + "): or set auth_allow_plaintext = True to send credentials in the clear",
            )
            self._on_stage(stages.AUTH, time.time(), 0.0, 0, None, failure)
            return failure
        name = self.auth_mechanism or ""
        if not auth_offered(client.session.extensions, name):
            failure = NotOffered(
                stages.AUTH, f"AUTH {name.upper()}", not_offered_text(name, client.encrypted)
            )
            self._on_stage(stages.AUTH, time.time(), 0.0, 0, None, failure)
            return failure
        username, secret = self._account()
        reply = client.auth(name, username, secret)
        if reply.code != 235:
            return client.rejection(stages.AUTH, reply)
        return None

    def _load_credentials(self) -> tuple[str, str]:
        """(username, secret) of this user: :attr:`auth_username` with :attr:`auth_password`
        or :attr:`auth_token_file`; with :attr:`auth_credentials_file` the file is read
        (and checked) here and the row is taken at the first AUTH (:meth:`_account`)."""
        try:
            if self.auth_credentials_file:
                _credential_rows(self.auth_credentials_file)
                return "", ""
            secret = self.auth_password or ""
            if self.auth_token_file:
                with open(self.auth_token_file, encoding="utf-8") as f:
                    secret = f.read().strip()
        except (OSError, ValueError) as exc:
            raise LocustError(f"bad AUTH settings: {exc}") from None
        if not self.auth_username:
            raise LocustError("bad AUTH settings: auth_username (or auth_credentials_file) needed")
        return self.auth_username, secret

    def _account(self) -> tuple[str, str]:
        """This user's (username, secret); from a credentials file, the lowest row no
        other user of the run holds (:mod:`.accounts`), kept until the user stops."""
        if self.auth_credentials_file and self._account_number is None:
            number = accounts_of(self.environment).take(self.environment)  # or NoAccount
            self._account_number = number
            rows = _credential_rows(self.auth_credentials_file)
            self._credentials = rows[number % len(rows)]
        return self._credentials

    def _give_account_back(self) -> None:
        number, self._account_number = self._account_number, None
        if number is not None:
            accounts_of(self.environment).give_back(self.environment, number)

    def _after_failure(self, failure: BaseException | None) -> None:
        """Lengthen the wait before the next connect after a failure with no reply."""
        if isinstance(failure, (ConnectError, ConnectionLost, SmtpTimeout)):
            self._reconnect_wait = min(
                max(self._reconnect_wait * 2, self.reconnect_delay), self.reconnect_delay_max
            )
        else:
            self._reconnect_wait = 0.0

    def send_transaction(
        self, sender: str, recipients: Sequence[str], payload: bytes
    ) -> MailResult | None:
        """One transaction with an already encoded ``payload`` (dot-stuffed, ending in the
        ``.`` line). Reports every stage and the ``message``; after a rejection the
        connection is reset (RSET) or, after 421/521, dropped, and the next message goes
        on. Returns None when the message failed."""
        with self.counted_message():
            return self._send_counted(sender, recipients, payload)

    def _send_counted(
        self, sender: str, recipients: Sequence[str], payload: bytes
    ) -> MailResult | None:
        """:meth:`send_transaction`'s work, inside a counted message."""
        client = self.client
        if not client.connected and not self.open_session():
            return None
        result: MailResult | None = None
        failure: SmtpError | None = None
        if self._tracer is not None and self.trace_delivery:
            payload = self._tracer.header(self._seq_of(self._number)) + payload
        self._seq = None
        plan = self._plan
        if plan is not PLAIN_PLAN:
            payload, mail_params = plan.prepare(payload)
        if self.client_identity == "xforward" and not self._xforward():
            return None
        try:
            if plan is PLAIN_PLAN:
                result = client.send_mail(sender, recipients, payload)
            else:
                result = client.send_mail(
                    sender,
                    recipients,
                    payload,
                    mail_params=mail_params,
                    rcpt_params=plan.rcpt_params,
                    writer=plan.writer,
                    pipelining=plan.pipelining,
                )
        except ReplyError as exc:
            failure = exc
            # the session says whether the server still holds part of the transaction;
            # send_mail has already dropped the connection after 421/521
            transaction = client.session.transaction
            if client.connected and transaction is not None and transaction.reset_needed:
                self._reset()
        except SmtpError as exc:
            failure = exc
            client.close()
        if failure is not None or self._reconnect_wait:
            self._after_failure(failure)
        if not self.reuse_connection:
            self.end_session()
        elif self._quota is not None and self._quota.sent_one():
            self.end_session()  # this connection has carried its share
        return result

    def _xforward(self) -> bool:
        """XFORWARD before a transaction; on failure the ``message`` is reported failed
        (it was attempted) and False returned."""
        client = self.client
        start, t0 = time.time(), time.perf_counter()
        failure: SmtpError | None = None
        try:
            reply = client.xforward(self._client_address, self.my_hostname)
            if not reply.positive:
                failure = client.rejection(stages.XFORWARD, reply)
                if client.session.closing:
                    client.close()
        except SmtpError as exc:
            failure = exc
            client.close()
        if failure is None:
            return True
        self._after_failure(failure)
        self._on_stage(stages.MESSAGE, start, (time.perf_counter() - t0) * 1000.0, 0, None, failure)
        if not self.reuse_connection:
            self.end_session()
        return False

    def _reset(self) -> None:
        try:
            reply = self.client.rset()
        except SmtpError:
            return
        if not reply.positive:
            self.client.close()

    def report_stopped_message(self) -> None:
        """A ``message`` in flight when the user was stopped after its content went out
        (the server may have it): reported with :class:`UserStopped`, which counts it as
        interrupted."""
        self._on_stage(stages.MESSAGE, time.time(), 0.0, 0, None, UserStopped(stages.END_OF_DATA))

    def end_session(self) -> None:
        """QUIT and close the connection, if there is one; errors are reported, not raised."""
        client = self.client
        if not client.connected:
            return
        with contextlib.suppress(SmtpError):
            client.quit()  # closes the connection whatever happens

    def on_stop(self) -> None:
        """Say QUIT on an idle connection (briefly: Locust is stopping), else just close."""
        try:
            if self.client.connected:
                with Timeout(min(self.timeout, _QUIT_ON_STOP_TIMEOUT), False):  # type: ignore[no-untyped-call]
                    self.end_session()
            self.client.close()
        finally:
            self._give_account_back()
            self._recorder.flush()  # this user's last samples reach Locust's statistics now


class UserStopped(SmtpError):
    """The user was stopped (ramp-down, end of test, a signal) in the middle of a message:
    counted as *interrupted*, not failed."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage, f"user stopped while {stages.CONTEXT[stage]}")


def send_one_message(user: SmtpUser) -> None:
    """The default task of a user class that defines none: one message, claimed from the
    run's message pool when it has one (``--smtp-messages``); when the pool is empty the
    user ends its session (QUIT) and stops."""
    user.send_message()


class LmtpUser(SmtpUser):
    """A Locust user speaking LMTP (RFC 2033): LHLO, and one end-of-data reply per accepted
    recipient, each reported as an ``end of data`` request."""

    abstract = True
    lmtp = True
    request_type: str = "LMTP"


__all__ = ["LmtpUser", "SmtpUser"]
