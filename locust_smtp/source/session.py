"""smtp-source's session, step by step, as a Locust user (reference §5-§8).

Each task iteration of :class:`SourceUser` is one message of the ``-m`` pool:
connect if needed (``-C`` attempts), greeting, HELO/LHLO (unless ``-o``), the
transaction, then QUIT unless ``-d`` keeps the connection. Rejections are
fatal for the whole run unless ``-A``, which applies smtp-source's table
(§6.3): RSET after a refused MAIL/DATA or when every RCPT was refused, and a
dropped connection after 421/521. Lost connections and timeouts are always
fatal. What differs from smtp-source on purpose (docs/flags.md): no hang on a
silent server, LMTP reads one reply per *accepted* recipient, no 1 s sleep
before a fatal exit, every clean session end sends QUIT and no delay follows
a session's last message.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import gevent
from gevent import GreenletExit
from locust.exception import StopUser

from ..client import SmtpClient
from ..plugin.compose import SETTINGS as COMPOSE_SETTINGS
from ..plugin.distributed import FATAL, WorkerPool
from ..plugin.pool import MessagePool, get_pool
from ..plugin.users import SmtpUser, UserStopped
from ..protocol import stages
from ..protocol._auth import not_offered_text
from ..protocol._auth import offered as auth_offered
from ..protocol._content import MessageTemplate, data_payload
from ..protocol._envelope import RecipientNumbers, numbered_recipient
from ..protocol._errors import (
    ConnectError,
    NotOffered,
    ReplyError,
    SmtpError,
    SmtpTimeout,
    SocketError,
    TlsError,
)
from ..protocol.address import ServerAddress
from ..protocol.codes import CLOSING_CODES
from ..protocol.mail_options import PLAIN_PLAN, Plan
from ..protocol.session import Command, Transaction
from .options import IDENTITY_SETTINGS, MAIL_SETTINGS, PROGRAM, SourceConfig, printable

IMPLICIT_TLS_PORTS = (465,)
"""Ports where a server waits for the client's TLS hello instead of greeting (SMTPS)."""

#: SourceConfig fields that are SmtpUser attributes of the same name
_TLS_SETTINGS = (
    "tls_verify",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_server_name",
    "tls_min_version",
    "tls_max_version",
    "tls_ciphers",
    "tls_resume",
    "auth_mechanism",
    "auth_username",
    "auth_password",
    "auth_token_file",
    "auth_credentials_file",
    "auth_allow_plaintext",
)

if TYPE_CHECKING:
    from locust.env import Environment

    from ..protocol._replies import Reply


class SourceFatal(Exception):
    """smtp-source would print ``fatal: <message>`` and exit 1. ``error`` is the rejection
    that caused it, if one did."""

    def __init__(self, message: str, error: ReplyError | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.delivered = False
        """The message was delivered to some recipients (LMTP) before the fatal reply."""


@dataclass
class SourceRun:
    """What the sessions of one process share: the configuration, the resolved server,
    the message built once, the ``-N`` and ``-c`` counters and the fatal state."""

    config: SourceConfig
    myhostname: str
    sender: str
    recipient: str
    template: MessageTemplate
    sockaddr: tuple[int, object] | None = None
    numbers: RecipientNumbers = field(default_factory=RecipientNumbers)
    delivered: int = 0
    forward_delivery: Callable[[], None] | None = None
    """On a worker: tells the master, which prints the one ``-c`` counter of the run."""
    failed: str | None = None
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    def warning(self, text: str) -> None:
        print(f"{PROGRAM}: warning: {printable(text)}", file=self.stderr, flush=True)

    def trace(self, text: str) -> None:
        print(f"{PROGRAM}: {printable(text)}", file=self.stderr, flush=True)

    def fatal(self, text: str, environment: Environment) -> None:
        """Report the first fatal error and stop the whole run (every session)."""
        if self.failed is not None:
            return
        self.failed = text
        print(f"{PROGRAM}: fatal: {printable(text)}", file=self.stderr, flush=True)
        from locust.runners import WorkerRunner

        runner: Any = environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(FATAL, {"text": text})  # the master stops every worker
        elif runner is not None:
            gevent.spawn(runner.quit)

    def count_delivery(self) -> None:
        """The ``-c`` counter: bumped when the ``.`` has been written, printed with CR."""
        if self.forward_delivery is not None and self.config.counter:
            self.forward_delivery()
            return
        self.delivered += 1
        if self.config.counter:
            self.stdout.write(f"{self.delivered}\r")
            self.stdout.flush()


_current: SourceRun | None = None


def set_current_run(run: SourceRun | None) -> None:
    global _current
    _current = run


def current_run() -> SourceRun:
    if _current is None:
        raise RuntimeError("no smtp-source run configured in this process")
    return _current


def source_task(user: Any) -> None:
    """The task of :class:`SourceUser`: the session's messages, one after the other, until
    the pool is empty (StopUser). One task call for the whole session spares Locust's
    scheduling and a hub round trip per message; every wait is still cooperative."""
    while True:
        user.source_iteration()


class SourceUser(SmtpUser):
    """One smtp-source session (``-s`` of them run at once)."""

    abstract = True
    tasks = [source_task]

    def __init__(self, environment: Environment) -> None:
        self.source = run = current_run()
        config = run.config
        self.helo_name = run.myhostname
        self.sender = run.sender
        self.recipient = run.recipient
        self.lmtp = config.lmtp
        self.timeout = config.timeout
        self.recipients_per_message = config.recipients_per_message
        self.request_events = config.request_events
        self.starttls = config.starttls
        self.transaction_log = config.transaction_log
        self.trace_delivery = config.trace_delivery
        for name in _TLS_SETTINGS + MAIL_SETTINGS + IDENTITY_SETTINGS + COMPOSE_SETTINGS:
            setattr(self, name, getattr(config, name))
        self._address = ""
        super().__init__(environment)
        self.connect_attempts_left = config.connect_count
        self.next_number: int | None = None
        self._lmtp_judged = False
        self._pool: MessagePool | WorkerPool | None = None
        self._ahead: tuple[int, float, float] | None = None
        """(number, start, perf_counter) of the message whose MAIL, RCPT and DATA went out
        with the previous message's content (:meth:`_start_next`), until it is driven."""
        # the transaction callbacks, bound once (-c's counter only when asked for)
        self._on_reply = self._check_reply
        self._on_written = run.count_delivery if config.counter else None
        self._then = self._start_next
        self._may_overlap = (
            config.reuse_connection
            and not config.lmtp
            and not config.number_recipients
            and not (config.fixed_delay or config.random_delay)
            and config.client_identity != "xforward"
        )

    def make_client(self, address: ServerAddress, lmtp: bool) -> SmtpClient:
        run = self.source
        config = run.config
        if config.smtps:
            address = dataclasses.replace(address, tls=True)
        uses_tls = config.smtps or config.starttls != "no"
        return SmtpClient(
            address,
            lmtp=config.lmtp,
            timeout=config.timeout,
            family=config.family,
            buffer_size=config.window_size or None,
            on_stage=self._on_stage,
            trace=run.trace if config.verbose else None,
            sockaddr=run.sockaddr,
            tls_context=self.make_tls_context() if uses_tls else None,
            tls_server_name=config.tls_server_name,
            tls_resume=config.tls_resume,
        )

    def build_template(self) -> MessageTemplate:
        return current_run().template

    # -- the task --------------------------------------------------------------------------

    def source_iteration(self) -> None:
        run = self.source
        pool = self._pool
        if pool is None:
            pool = self._pool = get_pool(self.environment)  # one per run, as this user
            if pool is None:
                raise StopUser()
        if self.next_number is None:
            self.next_number = pool.claim()
            if self.next_number is None:
                raise StopUser()  # more sessions than messages: this one never connects
        number, self.next_number = self.next_number, None
        if self._arrivals is not None:
            try:
                self.await_arrival()
            except GreenletExit:
                pool.release(number)  # never started: not attempted
                raise
        completed = False
        try:
            self.one_message(number)
            completed = True
        except SourceFatal as exc:
            self.client.close()
            run.fatal(str(exc), self.environment)
            raise StopUser() from None
        finally:
            pool.finish()
            ahead = self._ahead
            if ahead is not None and not (completed and self._ahead_alive()):
                # the next message went out with this one's content, but this one ended
                # the session (or the run): never answered, so never attempted
                self._ahead = None
                pool.release(ahead[0])
        # claim the next message now, so that the last one is not followed by a delay
        self.next_number = self._ahead[0] if self._ahead is not None else pool.claim()
        if self.next_number is None:
            if self.client.connected:
                self.quit_or_fatal()
            raise StopUser()
        config = run.config
        if not (config.fixed_delay or config.random_delay):
            return
        try:
            self.delay()
        except GreenletExit:
            pool.release(self.next_number)  # never started: not attempted
            self.next_number = None
            raise

    def delay(self) -> None:
        config = self.source.config
        seconds = config.fixed_delay or (
            random.randint(0, config.random_delay) if config.random_delay else 0
        )
        if seconds:
            gevent.sleep(seconds)

    # -- one message -----------------------------------------------------------------------

    def one_message(self, number: int) -> None:
        """Send message ``number`` and report it, whatever happens, exactly once; then QUIT
        unless -d. Raises SourceFatal for what ends the run."""
        config = self.source.config
        ahead = self._ahead
        if ahead is not None and ahead[0] == number:  # its commands are on their way
            resuming, start, t0 = True, ahead[1], ahead[2]
        else:
            resuming, start, t0 = False, time.time(), time.perf_counter()
        failure: BaseException | None = None
        try:
            # (resuming: its connection is up, as _ahead_alive said)
            failure = self._resume_ahead() if resuming else self._message(number)
        except SourceFatal as exc:
            self._report_message(start, t0, None if exc.delivered else (exc.error or exc))
            raise
        except SmtpError as exc:  # no reply: connect failure, lost connection, timeout
            self._report_message(start, t0, exc)
            misconfigured = isinstance(exc, TlsError) and exc.kind in ("certificate", "protocol")
            if not config.keep_going or isinstance(exc, SocketError) or misconfigured:
                raise SourceFatal(str(exc) + self._hint(exc)) from None
            self.client.close()
            self.source.warning(str(exc))
            self._after_failure(exc)
            self.connect_attempts_left = config.connect_count  # -C attempts per message
            return
        except GreenletExit:
            stage = stages.END_OF_DATA if self.client.content_sent else stages.MESSAGE
            self.client.close()
            self._report_message(start, t0, UserStopped(stage))
            raise
        except Exception as exc:  # a bug, or the system refusing something: never silent
            self._report_message(start, t0, exc)
            raise SourceFatal(f"unexpected error: {type(exc).__name__}: {exc}") from None
        self._on_stage(stages.MESSAGE, start, (time.perf_counter() - t0) * 1000.0, 0, None, failure)
        if failure is not None or self._reconnect_wait:
            self._after_failure(failure)
        if not config.reuse_connection and self.client.connected:
            self.quit_or_fatal()
        elif self._quota is not None and self.client.connected and self._quota.sent_one():
            self.quit_or_fatal()  # --messages-per-connection: this one has had its share

    def _hint(self, exc: SmtpError) -> str:
        """What a greeting that never came may mean: a port that speaks TLS first."""
        config = self.source.config
        sockaddr = self.source.sockaddr
        port = sockaddr[1][1] if sockaddr and isinstance(sockaddr[1], tuple) else None
        timed_out = isinstance(exc, SmtpTimeout) and exc.stage == stages.BANNER
        if not timed_out or config.smtps or self.client.session.reader.in_reply:
            return ""  # (bytes came: not a server waiting for a TLS client's hello)
        if port in IMPLICIT_TLS_PORTS:
            return f" (port {port} usually speaks TLS from the first byte: use --smtps)"
        return (
            " (a server that speaks TLS from the first byte sends no greeting: if so, use --smtps)"
        )

    def _report_message(self, start: float, t0: float, failure: BaseException | None) -> None:
        self._on_stage(stages.MESSAGE, start, (time.perf_counter() - t0) * 1000.0, 0, None, failure)

    def _reject(self, stage: str, reply: Reply) -> ReplyError:
        """smtp-source's reaction to a non-positive reply: fatal, or a warning under -A."""
        error = self.client.rejection(stage, reply)
        if self.source.config.abort_on_reject:
            raise SourceFatal(str(error), error)
        self.source.warning(str(error))
        return error

    def _message(self, number: int) -> ReplyError | None:
        """One message; returns the rejection that spoiled it (under -A), else None: also
        when some recipients were refused but the message was delivered to the others."""
        client = self.client
        config = self.source.config
        if not client.connected:
            if self._quota is not None:
                self._quota.connection_ended()
            self._connect()
            greeting = client.read_greeting()
            if not greeting.positive:
                self._reject(stages.BANNER, greeting)  # -A: no special case, go on
            if not config.old_mode:
                hello = self._source_hello()
                reply = client.hello(self.my_hostname, hello)
                if not reply.positive:
                    error = self._reject(hello, reply)
                    if reply.code in CLOSING_CODES:
                        client.close()
                        return error
                refused = self._source_identity()
                if refused is not None:
                    return refused
                if config.starttls != "no":
                    refused = self._source_starttls(hello)
                    if refused is not None:
                        return refused
                if config.auth_mechanism:
                    refused = self._source_auth()
                    if refused is not None:
                        return refused
            try:
                self.mail_plan()
            except NotOffered as exc:
                raise SourceFatal(str(exc)) from None
        return self._transaction(number)

    def _source_hello(self) -> str:
        config = self.source.config
        if config.lmtp:
            return stages.LHLO
        ehlo = config.ehlo or config.starttls != "no" or config.auth_mechanism
        return stages.EHLO if ehlo else stages.HELO

    def _source_identity(self) -> ReplyError | None:
        """XCLIENT (--xclient), or the check that XFORWARD is offered (--xforward)."""
        failure = self._say_who(self._address)
        if failure is None:
            return None
        if isinstance(failure, ReplyError):
            error = self._reject(failure.stage, failure.reply)  # fatal unless -A
            self.client.close()
            return error
        raise SourceFatal(str(failure))

    def _source_auth(self) -> ReplyError | None:
        """AUTH (--auth): refused credentials are a rejection (fatal, or a warning with
        -A, and the connection is dropped)."""
        client = self.client
        config = self.source.config
        if not client.encrypted and not config.auth_allow_plaintext:
            raise SourceFatal(
                "AUTH refused on a connection that is not encrypted: use --starttls or "
                "--smtps (or --auth-plaintext to send the credentials in the clear)"
            )
        name = config.auth_mechanism or ""
        if not auth_offered(client.session.extensions, name):
            hint = "" if config.starttls != "no" or config.smtps else ": try --starttls"
            raise SourceFatal(not_offered_text(name, client.encrypted) + hint)
        username, secret = self._account()
        reply = client.auth(name, username, secret)
        if reply.code != 235:
            error = self._reject(stages.AUTH, reply)
            client.close()
            return error
        return None

    def _source_starttls(self, hello: str) -> ReplyError | None:
        """STARTTLS (--starttls, --starttls-if-offered), then the greeting again."""
        client = self.client
        if "STARTTLS" not in client.session.extensions:
            if self.source.config.starttls != "required":
                return None
            raise SourceFatal(
                "STARTTLS not offered by the server (not in its EHLO reply): --starttls "
                "requires it (--starttls-if-offered goes on in the clear; a port that "
                "speaks TLS from the first byte wants --smtps)"
            )
        reply = client.starttls()  # a failed handshake raises TlsError: fatal, as no answer
        if reply.code != 220:
            if self.source.config.starttls == "opportunistic" and not client.session.closing:
                self.source.warning(
                    f"{client.rejection(stages.STARTTLS, reply)}: going on in the clear"
                )
                return None
            error = self._reject(stages.STARTTLS, reply)
            client.close()  # never on in the clear when TLS was asked for
            return error
        reply = client.hello(self.my_hostname, hello)
        if not reply.positive:
            error = self._reject(hello, reply)
            client.close()
            return error
        return None

    def _connect(self) -> None:
        if self._reconnect_wait:  # --keep-going, after a failure: back off
            gevent.sleep(self._reconnect_wait)
        self._address = self._next_client_address()
        self.client.proxy_header = self._proxy_header(self._address)
        while True:
            try:
                self.client.open()
                return
            except ConnectError as exc:
                self.connect_attempts_left -= 1
                if self.connect_attempts_left <= 0 or isinstance(exc, SocketError):
                    raise
                self.source.warning(str(exc))
                gevent.sleep(0)

    def _transaction(self, number: int) -> ReplyError | None:
        client = self.client
        config = self.source.config
        self._lmtp_judged = False
        self._seq = None
        sender = self.envelope_sender
        recipients: Iterable[str]
        if self._composer is not None:  # real traffic: drawn (docs/workloads.md)
            self._number = number
            message = self.compose_message(number)
            sender, recipients = message.sender, message.recipients
            payload = data_payload(message.content)
        else:
            payload = self.payload_template.render(self.message_id(number))
            recipients = self._source_recipients(number)
        if self._tracer is not None and self.trace_delivery:
            payload = self._tracer.header(self._seq_of(number)) + payload
        self._seq = None
        if config.client_identity == "xforward":
            reply = client.xforward(self._address, self.my_hostname)
            if not reply.positive:
                error = self._reject(stages.XFORWARD, reply)
                if client.session.closing:
                    client.close()
                return error
        plan = self._plan
        if plan is PLAIN_PLAN:
            transaction = client.transaction(
                sender,
                recipients,
                payload,
                on_reply=self._on_reply,
                on_written=self._on_written,
            )
        else:
            payload, mail_params = plan.prepare(payload)
            transaction = client.transaction(
                sender,
                recipients,
                payload,
                mail_params=mail_params,
                rcpt_params=plan.rcpt_params,
                writer=plan.writer,
                pipelining=plan.pipelining,
                on_reply=self._on_reply,
                on_written=self._on_written,
                then=self._then if self._overlaps(plan) else None,
            )
        return self._after_transaction(transaction)

    def _resume_ahead(self) -> ReplyError | None:
        """Drive the message whose commands went out with the previous one's content."""
        self._ahead = None
        self._lmtp_judged = False
        self._seq = None
        transaction = self.client.resume(
            on_reply=self._on_reply,
            on_written=self._on_written,
            then=self._then,  # (ahead only when _overlaps said so)
        )
        return self._after_transaction(transaction)

    def _after_transaction(self, transaction: Transaction) -> ReplyError | None:
        client = self.client
        config = self.source.config
        if config.lmtp:
            self._judge_lmtp(transaction)
        failed = transaction.failed
        if failed is None:
            if client.session.closing:  # LMTP: delivered to some, then 421
                client.close()
            return None  # delivered, if only to some recipients
        error = client.rejection(failed.stage, transaction.failure)  # type: ignore[arg-type]
        if client.session.closing:
            client.close()
        elif transaction.reset_needed:
            self._rset()
        return error

    def _overlaps(self, plan: Plan) -> bool:
        """Whether the next message's MAIL, RCPT and DATA may go out with this one's
        content (docs/extensions.md, "Pipelining across messages"): -d with
        --pipelining and DATA, smtp-source's own message, nothing to do between messages."""
        return (
            self._may_overlap
            and plan.pipelining
            and not plan.writer.chunked
            and self._composer is None
            and self._quota is None
            and self._arrivals is None
            and self._log is None
            and not (self._tracer is not None and self.trace_delivery)
        )

    def _start_next(self) -> bool:
        """``then`` of a transaction: claim the next message and begin its transaction,
        so that its commands go in the write of this one's content. False when the pool
        has none left (or one is already ahead)."""
        pool = self._pool
        if pool is None or self._ahead is not None:
            return False
        number = pool.claim()
        if number is None:
            return False
        try:
            plan = self._plan
            payload = self.payload_template.render(self.message_id(number))
            payload, mail_params = plan.prepare(payload)
            recipients = self._same_recipients  # (not -N: the same for every message)
            if recipients is None:
                recipients = self.recipients()
            self.client.session.start_mail(
                self.envelope_sender,
                recipients,
                payload,
                writer=plan.writer,
                pipelining=True,
                mail_params=mail_params,
                rcpt_params=plan.rcpt_params,
                overlap=True,
            )
        except BaseException:
            pool.release(number)
            raise
        self._ahead = (number, time.time(), time.perf_counter())
        return True

    def _ahead_alive(self) -> bool:
        """The message ahead can still be answered: the connection is up and the server
        did not close it (a 421 to the previous message ends it unanswered)."""
        transaction = self.client.session.transaction
        return (
            self.client.connected
            and transaction is not None
            and not transaction.aborted
            and not self.client.session.closing
        )

    def _source_recipients(self, number: int) -> Iterable[str]:
        """smtp-source's recipients of message ``number`` (-r, -N)."""
        config = self.source.config
        if not config.number_recipients:
            return self.recipients()  # the same for every message: made once
        numbers = self.source.numbers
        if isinstance(get_pool(self.environment), WorkerPool):
            # several processes: no common counter, so each message numbers its
            # recipients from its own place in the run; still unique, 1 upwards
            first = (config.messages - 1 - number) * config.recipients_per_message + 1
            numbers = RecipientNumbers(first)
        # numbered as each RCPT is written, so that -N numbers interleave across sessions
        # as in C
        return (
            numbered_recipient(self.envelope_recipient, left, numbers)
            for left in range(config.recipients_per_message, 0, -1)
        )

    def _check_reply(self, command: Command) -> None:
        """smtp-source's reaction to each refused reply of a transaction: fatal, or under
        -A a warning and on with the transaction (the session decides what comes next).
        LMTP's end-of-data replies are judged together once all are in, so that the
        message counts as delivered if another recipient took it."""
        if command.stage is stages.END_OF_DATA and self.source.config.lmtp:
            if self.client.session.closing:  # a 421 among them: no more will come
                self._judge_lmtp(command.done or self.client.session.transaction)
            return
        self._reject(command.stage, command.reply)  # type: ignore[arg-type]

    def _judge_lmtp(self, transaction: Transaction | None) -> None:
        """Warn about (or die of) each refused LMTP end-of-data reply, in order, once."""
        if transaction is None or self._lmtp_judged:
            return
        self._lmtp_judged = True
        delivered = any(reply.positive for reply in transaction.replies)
        for reply in transaction.replies:
            if not reply.positive:
                try:
                    self._reject(stages.END_OF_DATA, reply)
                except SourceFatal as fatal:
                    fatal.delivered = delivered
                    raise

    def _rset(self) -> None:
        reply = self.client.rset()
        if not reply.positive:
            self._reject(stages.RSET, reply)
            if reply.code in CLOSING_CODES:
                self.client.close()

    def quit_or_fatal(self) -> None:
        """QUIT, whatever the reply; a connection lost instead is fatal (as smtp-source),
        or with --keep-going a warning (the QUIT row counts it)."""
        try:
            self.client.quit()
        except SmtpError as exc:
            if self.source.config.keep_going:
                self.source.warning(str(exc))
                return
            self.source.fatal(str(exc), self.environment)
            raise StopUser() from None

    def on_stop(self) -> None:
        # killed by a fatal elsewhere or by Locust: smtp-source resets, it does not QUIT
        self.client.close()
        self._give_account_back()
        self._recorder.flush()  # this user's last samples reach Locust's statistics now
