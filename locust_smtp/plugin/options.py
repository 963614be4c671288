"""SMTP settings as Locust options (``locust -f ... --smtp-messages 1000``).

Importing :mod:`locust_smtp` registers them: Locust accepts them, the web UI's
start form shows the main ones, and workers get them from the master. A value
given on the command line (or in the form) overrides the user class attribute.
``locust --help`` does not list them (Locust prints its help before it loads
the locustfile); docs/library.md does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from locust import events
from locust.exception import LocustError

from ..protocol._auth import MECHANISMS
from ..protocol.client_identity import IDENTITIES
from ..protocol.mail_options import BODY_TYPES, DSN_RET, USE
from ..tls import TLS_VERSION_NAMES
from . import accounts, codes, dashboard, outcomes, recorder, webui
from .arrivals import ARRIVALS, RATE_MESSAGE, on_rate_message, start_schedule
from .pool import MessagePool, get_pool, set_pool
from .recorder import REQUEST_EVENTS
from .trace import name_run

if TYPE_CHECKING:
    from locust.argument_parser import LocustArgumentParser
    from locust.env import Environment

DEFAULT = "default"
"""The first choice of every option with choices, meaning "as the user class says": the
web UI's form shows such an option as a select and always sends one of its choices."""

#: option dest -> SmtpUser attribute it sets
USER_ATTRIBUTES = {
    "smtp_sender": "sender",
    "smtp_recipient": "recipient",
    "smtp_recipients_per_message": "recipients_per_message",
    "smtp_message_size": "message_size",
    "smtp_subject": "subject",
    "smtp_helo_name": "helo_name",
    "smtp_hello_command": "hello_command",
    "smtp_timeout": "timeout",
    "smtp_request_events": "request_events",
    "smtp_starttls": "starttls",
    "smtp_tls_ca": "tls_ca_file",
    "smtp_tls_cert": "tls_cert_file",
    "smtp_tls_key": "tls_key_file",
    "smtp_tls_server_name": "tls_server_name",
    "smtp_tls_min_version": "tls_min_version",
    "smtp_tls_max_version": "tls_max_version",
    "smtp_tls_ciphers": "tls_ciphers",
    "smtp_auth_mechanism": "auth_mechanism",
    "smtp_auth_username": "auth_username",
    "smtp_auth_credentials_file": "auth_credentials_file",
    "smtp_auth_token_file": "auth_token_file",
    "smtp_pipelining": "pipelining",
    "smtp_chunking": "chunking",
    "smtp_bdat_chunk_size": "bdat_chunk_size",
    "smtp_mail_size": "mail_size",
    "smtp_body_type": "body_type",
    "smtp_smtputf8": "smtputf8",
    "smtp_dsn_notify": "dsn_notify",
    "smtp_dsn_ret": "dsn_ret",
    "smtp_dsn_envid": "dsn_envid",
    "smtp_client_identity": "client_identity",
    "smtp_client_addresses": "client_addresses",
    "smtp_client_address_per": "client_address_per",
    "smtp_transaction_log": "transaction_log",
    "smtp_corpus": "corpus",
    "smtp_message_template": "message_template",
    "smtp_message_sizes": "message_sizes",
    "smtp_attachments": "attachments",
    "smtp_recipient_counts": "recipient_counts",
    "smtp_recipient_domains": "recipient_domains",
    "smtp_invalid_recipients": "invalid_recipients",
    "smtp_recipient_file": "recipient_file",
    "smtp_sender_file": "sender_file",
    "smtp_messages_per_connection": "messages_per_connection",
    "smtp_workload_seed": "workload_seed",
}


def add_options(parser: LocustArgumentParser, **_kwargs: Any) -> None:
    group = parser  # Locust's own add_argument understands include_in_web_ui
    group.add_argument(
        "--smtp-messages",
        type=int,
        default=0,
        metavar="COUNT",
        include_in_web_ui=True,
        help="Send exactly this many messages in total, then stop (0: no limit)",
    )
    group.add_argument(
        "--smtp-sender",
        metavar="ADDRESS",
        include_in_web_ui=True,
        help="Envelope sender (default foo@ + HELO name)",
    )
    group.add_argument(
        "--smtp-recipient",
        metavar="ADDRESS",
        include_in_web_ui=True,
        help="Recipient (default foo@ + HELO name)",
    )
    group.add_argument(
        "--smtp-recipients-per-message",
        type=int,
        metavar="N",
        include_in_web_ui=True,
        help="RCPT commands per message",
    )
    group.add_argument(
        "--smtp-message-size",
        type=int,
        metavar="BYTES",
        include_in_web_ui=True,
        help="Body size (as smtp-source -l)",
    )
    group.add_argument("--smtp-subject", metavar="TEXT", help="Subject header")
    group.add_argument("--smtp-helo-name", metavar="NAME", help="HELO/EHLO/LHLO name")
    group.add_argument(
        "--smtp-hello-command",
        choices=[DEFAULT, "HELO", "EHLO", "LHLO"],
        help="Greeting command (default: HELO; EHLO with STARTTLS or AUTH; LHLO for LMTP)",
    )
    group.add_argument(
        "--smtp-lmtp", action="store_true", default=False, include_in_web_ui=True, help="Speak LMTP"
    )
    group.add_argument(
        "--smtp-reuse",
        action="store_true",
        default=False,
        include_in_web_ui=True,
        help="Keep connections open between messages (smtp-source -d)",
    )
    group.add_argument(
        "--smtp-timeout",
        type=float,
        metavar="SECONDS",
        help="Timeout of every read and write (default 300)",
    )
    group.add_argument(
        "--smtp-starttls",
        choices=[DEFAULT, "no", "opportunistic", "required"],
        include_in_web_ui=True,
        help="STARTTLS after EHLO: when offered (opportunistic) or always (required); "
        "for implicit TLS use an smtps://host:465 host",
    )
    group.add_argument(
        "--smtp-tls-no-verify",
        action="store_true",
        default=False,
        include_in_web_ui=True,
        help="Accept any server certificate (test servers)",
    )
    group.add_argument(
        "--smtp-tls-ca",
        metavar="FILE",
        include_in_web_ui=True,
        help="CA certificates (PEM) to trust",
    )
    group.add_argument(
        "--smtp-tls-cert",
        metavar="FILE",
        include_in_web_ui=True,
        help="Client certificate (PEM; with its key unless --smtp-tls-key)",
    )
    group.add_argument(
        "--smtp-tls-key", metavar="FILE", include_in_web_ui=True, help="Client certificate's key"
    )
    group.add_argument(
        "--smtp-tls-server-name",
        metavar="NAME",
        include_in_web_ui=True,
        help="Name to send (SNI) and verify (default: the host)",
    )
    for bound in ("min", "max"):
        group.add_argument(
            f"--smtp-tls-{bound}-version",
            choices=[DEFAULT, *TLS_VERSION_NAMES],
            include_in_web_ui=True,
            help=f"{'Lowest' if bound == 'min' else 'Highest'} TLS version to use",
        )
    group.add_argument(
        "--smtp-tls-ciphers",
        metavar="OPENSSL_CIPHERS",
        include_in_web_ui=True,
        help="Cipher string for TLS 1.2 (OpenSSL's syntax)",
    )
    group.add_argument(
        "--smtp-tls-no-resume",
        action="store_true",
        default=False,
        include_in_web_ui=True,
        help="A full handshake on every connection (default: a user resumes its TLS session)",
    )
    group.add_argument(
        "--smtp-auth-mechanism",
        choices=[DEFAULT, *MECHANISMS],
        include_in_web_ui=True,
        help="AUTH after EHLO (and STARTTLS)",
    )
    group.add_argument(
        "--smtp-auth-username", metavar="NAME", include_in_web_ui=True, help="AUTH user name"
    )
    group.add_argument(
        "--smtp-auth-credentials-file",
        metavar="FILE",
        include_in_web_ui=True,
        help="CSV username,password rows: each user takes the next (there is no password "
        "option: secrets stay off command lines and out of the web UI)",
    )
    group.add_argument(
        "--smtp-auth-token-file",
        metavar="FILE",
        include_in_web_ui=True,
        help="OAuth token for XOAUTH2/OAUTHBEARER, or the password for the others",
    )
    group.add_argument(
        "--smtp-auth-plaintext",
        action="store_true",
        default=False,
        include_in_web_ui=True,
        help="Allow AUTH without TLS",
    )
    for name, what in (
        ("pipelining", "PIPELINING: MAIL, RCPTs and DATA/BDAT in one write"),
        ("chunking", "CHUNKING: the content in BDAT chunks instead of DATA"),
        ("mail-size", "SIZE= on MAIL"),
        ("smtputf8", "SMTPUTF8 on MAIL"),
    ):
        group.add_argument(
            f"--smtp-{name}",
            choices=[DEFAULT, *USE],
            include_in_web_ui=True,
            help=f"{what}: auto (when offered, after EHLO), on (required), force, off",
        )
    group.add_argument(
        "--smtp-bdat-chunk-size",
        type=int,
        metavar="BYTES",
        include_in_web_ui=True,
        help="Bytes per BDAT chunk (0: one BDAT n LAST)",
    )
    group.add_argument(
        "--smtp-body-type",
        choices=[DEFAULT, *BODY_TYPES],
        include_in_web_ui=True,
        help="BODY= on MAIL",
    )
    group.add_argument(
        "--smtp-dsn-notify",
        metavar="NEVER|SUCCESS,FAILURE,DELAY",
        include_in_web_ui=True,
        help="DSN NOTIFY= on each RCPT",
    )
    group.add_argument(
        "--smtp-dsn-ret", choices=[DEFAULT, *DSN_RET], include_in_web_ui=True, help="DSN RET="
    )
    group.add_argument("--smtp-dsn-envid", metavar="ID", include_in_web_ui=True, help="DSN ENVID=")
    group.add_argument(
        "--smtp-dsn-orcpt",
        action="store_true",
        default=False,
        include_in_web_ui=True,
        help="DSN ORCPT=rfc822;recipient on each RCPT",
    )
    group.add_argument(
        "--smtp-client-identity",
        choices=[DEFAULT, *IDENTITIES],
        include_in_web_ui=True,
        help="Synthetic client addresses by XCLIENT, XFORWARD or a PROXY protocol header",
    )
    group.add_argument(
        "--smtp-client-addresses",
        metavar="CIDR",
        include_in_web_ui=True,
        help="Where the synthetic addresses come from (default 198.18.0.0/15)",
    )
    group.add_argument(
        "--smtp-client-address-per",
        choices=[DEFAULT, "user", "connection"],
        include_in_web_ui=True,
        help="One address per user, or a new one per connection",
    )
    group.add_argument(
        "--smtp-request-events",
        choices=[DEFAULT, *REQUEST_EVENTS],
        help="Which stages are Locust request events: 'stage' every one, 'failures' only "
        "failed ones (successes reach the statistics in batches), 'auto' (default) 'stage' "
        "when a listener other than Locust's statistics is registered, else 'failures'",
    )
    group.add_argument(
        "--smtp-rate",
        metavar="PROFILE",
        include_in_web_ui=True,
        help="Open model: start messages at this rate (messages/s), or a profile such as "
        "'10-200/60s,200/5m,1000/10s,200'; the users are the capacity",
    )
    group.add_argument(
        "--smtp-arrivals",
        choices=[DEFAULT, *ARRIVALS],
        include_in_web_ui=True,
        help="With --smtp-rate: evenly spaced (constant, the default) or a Poisson process",
    )
    group.add_argument(
        "--smtp-rate-seed",
        type=int,
        help="Seed of the Poisson arrivals (default: random, the same on every worker)",
    )
    group.add_argument(
        "--smtp-trace-delivery",
        action="store_true",
        default=False,
        include_in_web_ui=True,
        help="Put an X-Locust-Smtp-Trace header (run id, number, send time) in every "
        "message, for the bundled sink to measure delivery end to end",
    )
    group.add_argument(
        "--smtp-run-id",
        metavar="ID",
        help="The run id of --smtp-trace-delivery (default: made at the start)",
    )
    group.add_argument(
        "--smtp-corpus",
        metavar="PATH[=W],...",
        include_in_web_ui=True,
        help="Messages from Maildirs, .eml trees, mboxes or files, weighted",
    )
    group.add_argument(
        "--smtp-keep-headers",
        action="store_true",
        default=False,
        help="Send corpus messages' From, To, Message-Id and Date as they are",
    )
    group.add_argument(
        "--smtp-message-template", metavar="FILE", help="A message template ({seq}, {pad:64K} ...)"
    )
    group.add_argument(
        "--smtp-message-sizes",
        metavar="DIST",
        include_in_web_ui=True,
        help="Pad messages to sizes drawn from DIST (lognormal:64K,1.2; uniform:2K-1M; "
        "weights:4K=70,1M=30; empirical:CORPUS)",
    )
    group.add_argument("--smtp-attachments", metavar="SIZES", help="Attachments (100K,2M)")
    group.add_argument(
        "--smtp-recipient-counts",
        metavar="DIST",
        include_in_web_ui=True,
        help="Recipients per message, drawn (weights:1=80,5=15,50=5)",
    )
    group.add_argument(
        "--smtp-recipient-domains",
        metavar="MIX",
        include_in_web_ui=True,
        help="Recipients over a domain mix (gmail.com:67,outlook.com:20,example.net:13)",
    )
    group.add_argument(
        "--smtp-invalid-recipients",
        metavar="SHARE",
        help="Share (0 to 1) of drawn recipients meant to be refused",
    )
    group.add_argument("--smtp-recipient-file", metavar="CSV", help="Recipients from a CSV file")
    group.add_argument("--smtp-sender-file", metavar="CSV", help="Senders from a CSV file")
    group.add_argument(
        "--smtp-unique-addresses",
        action="store_true",
        default=False,
        help="Each worker takes its own slice of the address files",
    )
    group.add_argument(
        "--smtp-messages-per-connection",
        metavar="DIST",
        help="Messages per connection before QUIT, drawn per connection (uniform:1-20)",
    )
    group.add_argument("--smtp-workload-seed", metavar="N", help="Seed of the workload's draws")
    group.add_argument(
        "--smtp-transaction-log",
        metavar="PATH",
        help="Append one JSON line per message to PATH (PATH.worker-N on a worker): "
        "each stage's µs, reply codes, queue id, bytes, recipients",
    )


def apply_options(user: Any, environment: Environment) -> None:
    """Copy the SMTP options given to ``environment`` onto a user instance."""
    options = environment.parsed_options
    if options is None:
        return
    for dest, attribute in USER_ATTRIBUTES.items():
        value = option_value(options, dest)
        if value is not None:
            setattr(user, attribute, value)
    if option_value(options, "smtp_lmtp"):
        user.lmtp = True
    if option_value(options, "smtp_reuse"):
        user.reuse_connection = True
    if option_value(options, "smtp_tls_no_verify"):
        user.tls_verify = False
    if option_value(options, "smtp_auth_plaintext"):
        user.auth_allow_plaintext = True
    if option_value(options, "smtp_tls_no_resume"):
        user.tls_resume = False
    if option_value(options, "smtp_dsn_orcpt"):
        user.dsn_orcpt = True
    if option_value(options, "smtp_trace_delivery"):
        user.trace_delivery = True
    if option_value(options, "smtp_keep_headers"):
        user.rewrite_headers = False
    if option_value(options, "smtp_unique_addresses"):
        user.unique_addresses = True


#: Types of the options whose default is None: the web UI's form sends them as text.
OPTION_TYPES: dict[str, Callable[[str], Any]] = {
    "smtp_recipients_per_message": int,
    "smtp_message_size": int,
    "smtp_timeout": float,
    "smtp_messages": int,
    "smtp_bdat_chunk_size": int,
    "smtp_invalid_recipients": float,
    "smtp_workload_seed": int,
}


FLAGS = frozenset(
    (
        "smtp_lmtp",
        "smtp_reuse",
        "smtp_tls_no_verify",
        "smtp_tls_no_resume",
        "smtp_auth_plaintext",
        "smtp_dsn_orcpt",
        "smtp_trace_delivery",
        "smtp_keep_headers",
        "smtp_unique_addresses",
    )
)
#: Options whose first choice means "not set" (the web UI's select always has a value).


def option_value(options: Any, dest: str) -> Any:
    """An SMTP option's value, with the web UI's text turned into its type ("" is None)."""
    value = getattr(options, dest, None)
    if isinstance(value, str):
        if value.strip() in ("", "None", DEFAULT):
            return None
        if dest in FLAGS:
            return value.lower() in ("true", "on", "1", "yes")

        convert = OPTION_TYPES.get(dest)
        if convert is not None:
            try:
                return convert(value)
            except ValueError:
                raise LocustError(f"bad value for --{dest.replace('_', '-')}: {value}") from None
    return value


def install_pool(environment: Environment, total: int) -> MessagePool:
    """Give ``environment`` a pool of ``total`` messages; when it is used up and every user
    has ended its session, the run stops (headless: Locust exits; web UI: the test stops
    and the UI keeps the final numbers)."""
    pool = MessagePool(total)
    set_pool(environment, pool)

    def stop_when_users_are_done() -> None:
        runner = environment.runner
        if runner is None:
            return
        # users end their sessions (QUIT) and stop by themselves once the pool is empty;
        # users whose tasks send without it never would, so they are stopped after a while
        if not runner.user_greenlets.join(timeout=USERS_DONE_TIMEOUT) and runner.user_count:
            logging.getLogger("locust_smtp").warning(
                "%d user(s) still running after the last of --smtp-messages: stopping them "
                "(tasks that send with self.client directly should use counted_message())",
                runner.user_count,
            )
        if _headless(environment):
            runner.quit()
        else:
            runner.stop()

    pool.on_exhausted(lambda: gevent.spawn(stop_when_users_are_done))
    return pool


def _headless(environment: Environment) -> bool:
    options = environment.parsed_options
    return bool(options is not None and options.headless)


def _finish_distributed_run(environment: Environment) -> None:
    """Every message is accounted for: let the workers' users say QUIT (bounded), then stop."""
    runner: Any = environment.runner
    pool = getattr(environment, "smtp_master_pool", None)
    deadline = time.monotonic() + USERS_DONE_TIMEOUT
    while pool is not None and pool.workers_busy() and time.monotonic() < deadline:
        gevent.sleep(0.05)
    if _headless(environment):
        runner.quit()
    else:
        runner.stop()


def create_pool(environment: Environment, **_kwargs: Any) -> None:
    from locust.runners import MasterRunner, WorkerRunner

    from .distributed import MasterPool, WorkerPool

    options = environment.parsed_options
    total = (option_value(options, "smtp_messages") or 0) if options is not None else 0
    old = getattr(environment, "smtp_master_pool", None)
    if old is not None:
        old.close()
    environment.smtp_master_pool = None  # type: ignore[attr-defined]
    if total and total > 0:
        _check_user_classes(environment)
    if not total or total <= 0:
        set_pool(environment, None)
    elif isinstance(environment.runner, MasterRunner):
        environment.smtp_master_pool = MasterPool(  # type: ignore[attr-defined]
            environment, total, lambda: gevent.spawn(_finish_distributed_run, environment)
        )
    elif isinstance(environment.runner, WorkerRunner):
        set_pool(environment, WorkerPool(environment))  # type: ignore[arg-type]
    else:
        install_pool(environment, total)


def _check_user_classes(environment: Environment) -> None:
    """Say at the start when a user class cannot take part in --smtp-messages."""
    from .users import SmtpUser

    others = [cls.__name__ for cls in environment.user_classes if not issubclass(cls, SmtpUser)]
    if others:
        logging.getLogger("locust_smtp").warning(
            "--smtp-messages counts only the messages of SmtpUser classes; %s will not "
            "stop by themselves and are stopped %.0f s after the last message",
            ", ".join(others),
            USERS_DONE_TIMEOUT,
        )


def report_master_pool(environment: Environment, **_kwargs: Any) -> None:
    pool = getattr(environment, "smtp_master_pool", None)
    if pool is not None:
        logging.getLogger("locust_smtp").warning(pool.report())


def register_messages(environment: Environment, **_kwargs: Any) -> None:
    """Custom messages of the distributed pool, on the master and on workers."""
    from locust.runners import MasterRunner, WorkerRunner

    from . import distributed

    runner: Any = environment.runner

    def to_master_pool(name: str) -> Any:
        def handler(environment: Environment, msg: Any, **_kw: Any) -> None:
            pool = getattr(environment, "smtp_master_pool", None)
            if pool is not None:
                getattr(pool, name)(environment, msg)
            elif name == "on_claim":  # no pool (no message count): grant nothing
                runner.send_message(distributed.GRANT, {"numbers": []}, client_id=msg.node_id)

        return handler

    def to_worker_pool(environment: Environment, msg: Any, **_kw: Any) -> None:
        pool = get_pool(environment)
        if isinstance(pool, distributed.WorkerPool):
            pool.on_grant(environment, msg)

    def done_to_master(data: dict[str, Any], **_kw: Any) -> None:
        pool = get_pool(environment)
        if isinstance(pool, distributed.WorkerPool):
            pool.report_done_into(data)

    def done_from_worker(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        pool = getattr(environment, "smtp_master_pool", None)
        if pool is None:
            return
        if data.get(distributed.DONE):
            pool.count_done(client_id, int(data[distributed.DONE]))
        pool.count_reported(client_id, data.get("stats", ()))

    accounts.register(environment)
    if isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(done_from_worker)  # type: ignore[no-untyped-call]
        environment.events.worker_report.add_listener(  # type: ignore[no-untyped-call]
            lambda **_kw: dashboard.on_worker_report(environment)
        )
        runner.register_message(distributed.CLAIM, to_master_pool("on_claim"))
        runner.register_message(distributed.DONE, to_master_pool("on_done"))
        runner.register_message(distributed.RELEASE, to_master_pool("on_release"))
        runner.register_message(distributed.IDLE, to_master_pool("on_idle"))
        for name, handler in MASTER_HANDLERS:
            runner.register_message(name, handler)
    elif isinstance(runner, WorkerRunner):
        environment.events.report_to_master.add_listener(done_to_master)  # type: ignore[no-untyped-call]
        runner.register_message(distributed.GRANT, to_worker_pool)
        runner.register_message(RATE_MESSAGE, on_rate_message)


#: More master-side handlers of workers' custom messages, as (name, handler): the
#: locust-smtp command adds its fatal error and ``-c`` counter handlers.
MASTER_HANDLERS: list[tuple[str, Callable[..., None]]] = []
USERS_DONE_TIMEOUT = 30.0


events.init_command_line_parser.add_listener(add_options)  # type: ignore[no-untyped-call]
events.test_start.add_listener(create_pool)  # type: ignore[no-untyped-call]
events.test_start.add_listener(start_schedule)  # type: ignore[no-untyped-call]
events.test_start.add_listener(name_run)  # type: ignore[no-untyped-call]
events.test_start.add_listener(outcomes.reset)  # type: ignore[no-untyped-call]
events.test_start.add_listener(codes.reset)  # type: ignore[no-untyped-call]
events.test_start.add_listener(dashboard.start_history)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(dashboard.stop_history)  # type: ignore[no-untyped-call]
events.init.add_listener(codes.install)  # type: ignore[no-untyped-call]
events.init.add_listener(outcomes.install)  # type: ignore[no-untyped-call]
events.test_start.add_listener(recorder.reset)  # type: ignore[no-untyped-call]
events.test_start.add_listener(accounts.reset)  # type: ignore[no-untyped-call]
events.init.add_listener(recorder.install)  # type: ignore[no-untyped-call]
events.init.add_listener(register_messages)  # type: ignore[no-untyped-call]
events.quitting.add_listener(report_master_pool)  # type: ignore[no-untyped-call]
events.init.add_listener(webui.install_tab)  # type: ignore[no-untyped-call]
events.quitting.add_listener(webui.write_csv)  # type: ignore[no-untyped-call]
events.quitting.add_listener(webui.add_to_html_report)  # type: ignore[no-untyped-call]


def check_options(environment: Environment, **_kwargs: Any) -> None:
    """``events.init``: the run-wide and workload options given on Locust's command line
    checked before the test starts (read the corpus, parse the profile ...), so that a
    bad value is one line on stderr and exit status 1, as ``locust-smtp`` says it, not a
    traceback in every user that then leaves the run waiting with none."""
    import sys
    import types

    from ..workload import parse_distribution
    from .arrivals import parse_profile
    from .compose import SETTINGS, Composer, wants_composer
    from .trace import check_run_id
    from .users import SmtpUser

    options = environment.parsed_options
    if options is None:
        return
    try:
        rate = option_value(options, "smtp_rate")
        if rate:
            parse_profile(str(rate))
        option_value(options, "smtp_rate_seed")
        run_id = option_value(options, "smtp_run_id")
        if run_id:
            check_run_id(str(run_id))
        log = option_value(options, "smtp_transaction_log")
        if log:
            try:
                open(log, "a").close()
            except OSError as exc:
                raise ValueError(f"--smtp-transaction-log {log}: {exc.strerror}") from None
        given = {
            attribute: option_value(options, dest)
            for dest, attribute in USER_ATTRIBUTES.items()
            if attribute in SETTINGS and option_value(options, dest) is not None
        }
        if given:  # a workload from the command line: as a user would build it
            settings = types.SimpleNamespace(
                **{**{name: getattr(SmtpUser, name) for name in SETTINGS}, **given}
            )
            if wants_composer(settings):
                Composer(settings, user_number=0)
            if settings.messages_per_connection:
                parse_distribution(str(settings.messages_per_connection))
    except (ValueError, LocustError) as exc:
        print(f"locust: error: {exc}", file=sys.stderr)
        sys.exit(1)


events.init.add_listener(check_options)  # type: ignore[no-untyped-call]
