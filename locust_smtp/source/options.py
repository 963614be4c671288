"""smtp-source's command line: options, defaults, validation and error texts.

See ``docs/smtp-source.md`` §1-§3. Parsing follows glibc ``getopt`` in
POSIX mode (options end at the first operand); numbers are read like C
``atoi`` (``-m 3x`` is 3, ``-m x`` is 0); each bad value is fatal as soon as
it is parsed, so the first error on the command line wins.

Long options are ours: ``--timeout SECONDS``, ``--quiet`` (no summary),
``--keep-going``, ``--request-events MODE``,
``--help``. Locust's own options follow the operand after ``--``.
"""

from __future__ import annotations

import getopt
import os
import re
import socket
from dataclasses import dataclass, field

from ..plugin.arrivals import ARRIVALS, parse_profile
from ..plugin.compose import Composer, wants_composer
from ..plugin.trace import check_run_id
from ..protocol._auth import MECHANISMS
from ..protocol.address import address_literal_problem, hostname_problem
from ..protocol.client_identity import AddressPool
from ..protocol.mail_options import MailOptions
from ..workload import parse_distribution

PROGRAM = "locust-smtp"
SHORT_OPTIONS = "46AcC:df:F:l:Lm:M:Nor:R:s:S:t:T:vw:"
LONG_OPTIONS = [
    "timeout=",
    "keep-going",
    "quiet",
    "request-events=",
    "ehlo",
    "starttls",
    "starttls-if-offered",
    "smtps",
    "tls-no-verify",
    "tls-ca=",
    "tls-cert=",
    "tls-key=",
    "tls-server-name=",
    "tls-min-version=",
    "tls-max-version=",
    "tls-ciphers=",
    "no-tls-resume",
    "auth=",
    "auth-user=",
    "auth-password=",
    "auth-password-file=",
    "auth-token-file=",
    "auth-credentials=",
    "auth-plaintext",
    "pipelining",
    "force-pipelining",
    "bdat",
    "force-bdat",
    "bdat-chunk-size=",
    "size",
    "body=",
    "smtputf8",
    "dsn-notify=",
    "dsn-ret=",
    "dsn-envid=",
    "dsn-orcpt",
    "xclient",
    "xforward",
    "proxy-protocol=",
    "client-addresses=",
    "address-per-connection",
    "transaction-log=",
    "rate=",
    "arrivals=",
    "rate-seed=",
    "trace-delivery",
    "run-id=",
    "corpus=",
    "keep-headers",
    "template=",
    "message-sizes=",
    "attachments=",
    "recipient-counts=",
    "recipient-domains=",
    "invalid-recipients=",
    "recipient-file=",
    "sender-file=",
    "unique-addresses",
    "messages-per-connection=",
    "seed=",
    "help",
]
#: long options of the ESMTP extensions -> (SourceConfig field, value); each implies EHLO
ESMTP_FLAG_OPTIONS = {
    "--pipelining": ("pipelining", "auto"),
    "--force-pipelining": ("pipelining", "force"),
    "--bdat": ("chunking", "on"),
    "--force-bdat": ("chunking", "force"),
    "--size": ("mail_size", "auto"),
    "--smtputf8": ("smtputf8", "on"),
    "--dsn-orcpt": ("dsn_orcpt", True),
}
ESMTP_VALUE_OPTIONS = {
    "--body": "body_type",
    "--dsn-notify": "dsn_notify",
    "--dsn-ret": "dsn_ret",
    "--dsn-envid": "dsn_envid",
}
#: long option -> SourceConfig field, for the ones that take a value as it is
TLS_VALUE_OPTIONS = {
    "--tls-ca": "tls_ca_file",
    "--tls-cert": "tls_cert_file",
    "--tls-key": "tls_key_file",
    "--tls-server-name": "tls_server_name",
    "--tls-min-version": "tls_min_version",
    "--tls-max-version": "tls_max_version",
    "--tls-ciphers": "tls_ciphers",
    "--auth-user": "auth_username",
    "--auth-password": "auth_password",
    "--auth-token-file": "auth_token_file",
    "--auth-credentials": "auth_credentials_file",
}
REQUEST_EVENTS = ("auto", "stage", "failures")
USAGE = (
    f"usage: {PROGRAM} -cdLNov -s sess -l msglen -m msgs -C count -M myhostname -f from "
    "-t to -r rcptcount -R delay -w delay host[:port]"
)
HELP = f"""\
{PROGRAM} [options] [inet:]host[:port] [-- locust options]
{PROGRAM} [options] unix:pathname [-- locust options]

smtp-source's options (docs/smtp-source.md):
  -4 / -6        IPv4 / IPv6 only          -L             speak LMTP
  -A             go on after rejections    -m count       messages in total (1)
  -c             running counter on stdout -M name        HELO name (hostname)
  -C count       connect attempts (1)      -N             number every recipient
  -d             keep connections open     -o             no HELO, no headers
  -f from        sender (foo@hostname)     -r count       recipients per message (1)
  -F file        message content from file -R secs        random delay after messages
  -l length      body of length bytes      -s count       parallel sessions (1)
  -S subject     Subject header            -t to          recipient (foo@hostname)
  -T size        socket buffer size        -v             show the dialogue on stderr
  -w secs        fixed delay after messages
Ours:
  --timeout SECONDS   limit on each reply and each write wait (300)
  --keep-going        count lost connections, timeouts and connect failures as
                      failed messages and reconnect, instead of a fatal exit
  --quiet             no summary on stderr at the end
  --transaction-log FILE  append one JSON line per message to FILE (docs/workloads.md)
  --rate PROFILE      open model: start messages at this rate (msg/s), or a profile
                      like 10-200/60s,200/5m,1000/10s,200; -s sessions are the capacity
  --arrivals constant|poisson   with --rate: evenly spaced (default) or Poisson
  --rate-seed N       seed of the Poisson arrivals
  --trace-delivery    an X-Locust-Smtp-Trace header in every message, for the sink
                      to measure delivery end to end (docs/delivery.md)
  --run-id ID         the run id in that header (default: made at the start)
Real traffic (docs/workloads.md):
  --corpus PATH[=W],...   messages from Maildirs, .eml trees, mboxes or files
  --keep-headers      send corpus messages' From/To/Message-Id/Date unchanged
  --template FILE     a message template ({{seq}}, {{words:20}}, {{pad:64K}} ...)
  --message-sizes DIST    pad to sizes drawn from DIST (lognormal:64K,1.2 ...)
  --attachments SIZES     attach random files of these sizes (100K,2M)
  --recipient-counts DIST recipients per message (weights:1=80,5=15,50=5)
  --recipient-domains MIX recipients over domains (gmail.com:67,outlook.com:20)
  --invalid-recipients SHARE  share of drawn recipients meant to be refused
  --recipient-file CSV, --sender-file CSV   addresses from CSV files
  --unique-addresses  each worker takes its own slice of the address files
  --messages-per-connection DIST  QUIT after this many (implies -d)
  --seed N            seed of the workload's draws
  --request-events stage|failures|auto
                      which stages are Locust request events (auto: failures
                      unless a Locust listener such as --otel needs them all)
  --ehlo              EHLO instead of HELO
  --starttls          STARTTLS after EHLO, fatal when not offered (implies --ehlo)
  --starttls-if-offered  STARTTLS when offered, else go on in the clear
  --smtps             implicit TLS from the first byte (port 465)
  --tls-no-verify     accept any server certificate (test servers)
  --tls-ca FILE       CA certificates to trust   --tls-server-name NAME  SNI name
  --tls-cert FILE, --tls-key FILE                client certificate and key
  --tls-min-version V, --tls-max-version V       TLSv1.2 or TLSv1.3
  --tls-ciphers STRING                           OpenSSL cipher list (TLS 1.2)
  --no-tls-resume     a full handshake on every connection
  --auth MECHANISM    AUTH PLAIN, LOGIN, CRAM-MD5, XOAUTH2 or OAUTHBEARER (implies --ehlo)
  --auth-user NAME and --auth-password PASS (or --auth-password-file FILE, or
                      --auth-token-file FILE for XOAUTH2/OAUTHBEARER), or
  --auth-credentials FILE   CSV username,password rows, one per session in turn
  --auth-plaintext    allow AUTH without TLS (credentials in the clear)
ESMTP (each implies --ehlo):
  --pipelining        MAIL, RCPTs and DATA in one write when PIPELINING is offered
  --force-pipelining  the same even when it is not offered
  --bdat              the content in BDAT chunks (CHUNKING; fatal when not offered)
  --force-bdat        BDAT even when not offered
  --bdat-chunk-size BYTES  chunks of this size (default: one BDAT n LAST)
  --size              SIZE= the message size on MAIL, when SIZE is offered
  --body TYPE         BODY=7BIT, 8BITMIME or BINARYMIME (needs --bdat) on MAIL
  --smtputf8          SMTPUTF8 on MAIL (UTF-8 addresses and headers)
  --dsn-notify LIST   NOTIFY= on each RCPT: NEVER, or SUCCESS,FAILURE,DELAY
  --dsn-ret FULL|HDRS, --dsn-envid ID, --dsn-orcpt   DSN's RET=, ENVID=, ORCPT=
Client identity (one machine as many clients):
  --xclient           XCLIENT ADDR=... after EHLO (Postfix), then EHLO again
  --xforward          XFORWARD ADDR=... before each MAIL (Postfix)
  --proxy-protocol 1|2  a PROXY protocol header before the first byte (HAProxy's)
  --client-addresses CIDR  where the addresses come from (198.18.0.0/15)
  --address-per-connection  a new address for each connection (default: per session)
Locust options go after the operand and --, e.g. -- --csv out --processes 2.
"""

#: the workload's long options that take a value -> SourceConfig field
WORKLOAD_VALUE_OPTIONS = {
    "--corpus": "corpus",
    "--template": "message_template",
    "--message-sizes": "message_sizes",
    "--attachments": "attachments",
    "--recipient-counts": "recipient_counts",
    "--recipient-domains": "recipient_domains",
    "--recipient-file": "recipient_file",
    "--sender-file": "sender_file",
    "--messages-per-connection": "messages_per_connection",
}

#: The --smtp-* Locust options (for locustfiles) and what locust-smtp takes instead.
SMTP_OPTION_EQUIVALENTS = {
    "--smtp-messages": "-m",
    "--smtp-sender": "-f",
    "--smtp-recipient": "-t",
    "--smtp-recipients-per-message": "-r",
    "--smtp-message-size": "-l",
    "--smtp-subject": "-S",
    "--smtp-helo-name": "-M",
    "--smtp-lmtp": "-L",
    "--smtp-reuse": "-d",
    "--smtp-timeout": "--timeout",
    "--smtp-request-events": "--request-events",
    "--smtp-transaction-log": "--transaction-log",
    "--smtp-rate": "--rate",
    "--smtp-arrivals": "--arrivals",
    "--smtp-rate-seed": "--rate-seed",
    "--smtp-trace-delivery": "--trace-delivery",
    "--smtp-run-id": "--run-id",
    "--smtp-corpus": "--corpus",
    "--smtp-keep-headers": "--keep-headers",
    "--smtp-message-template": "--template",
    "--smtp-message-sizes": "--message-sizes",
    "--smtp-attachments": "--attachments",
    "--smtp-recipient-counts": "--recipient-counts",
    "--smtp-recipient-domains": "--recipient-domains",
    "--smtp-invalid-recipients": "--invalid-recipients",
    "--smtp-recipient-file": "--recipient-file",
    "--smtp-sender-file": "--sender-file",
    "--smtp-unique-addresses": "--unique-addresses",
    "--smtp-messages-per-connection": "--messages-per-connection",
    "--smtp-workload-seed": "--seed",
    "--smtp-starttls": "--starttls or --starttls-if-offered",
    "--smtp-tls-no-verify": "--tls-no-verify",
    "--smtp-tls-ca": "--tls-ca",
    "--smtp-auth-mechanism": "--auth",
    "--smtp-auth-username": "--auth-user",
    "--smtp-auth-credentials-file": "--auth-credentials",
    "--smtp-auth-token-file": "--auth-token-file",
    "--smtp-auth-plaintext": "--auth-plaintext",
    "--smtp-tls-cert": "--tls-cert",
    "--smtp-tls-key": "--tls-key",
    "--smtp-tls-server-name": "--tls-server-name",
    "--smtp-tls-min-version": "--tls-min-version",
    "--smtp-tls-max-version": "--tls-max-version",
    "--smtp-tls-ciphers": "--tls-ciphers",
    "--smtp-tls-no-resume": "--no-tls-resume",
    "--smtp-pipelining": "--pipelining or --force-pipelining",
    "--smtp-chunking": "--bdat or --force-bdat",
    "--smtp-bdat-chunk-size": "--bdat-chunk-size",
    "--smtp-mail-size": "--size",
    "--smtp-body-type": "--body",
    "--smtp-smtputf8": "--smtputf8",
    "--smtp-dsn-notify": "--dsn-notify",
    "--smtp-dsn-ret": "--dsn-ret",
    "--smtp-dsn-envid": "--dsn-envid",
    "--smtp-dsn-orcpt": "--dsn-orcpt",
    "--smtp-client-identity": "--xclient, --xforward or --proxy-protocol",
    "--smtp-client-addresses": "--client-addresses",
    "--smtp-client-address-per": "--address-per-connection",
}
_ATOI = re.compile(r"\s*([+-]?\d+)")


class UsageError(Exception):
    """Print ``lines`` (without the program prefix) and exit 1."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[-1])
        self.lines = lines


_PRINTABLE_BYTES = bytes(b if 0x20 <= b <= 0x7E else ord("?") for b in range(256))


def printable(text: str) -> str:
    """Postfix's ``printable()`` of a diagnostic: every byte outside printable ASCII
    (line breaks, 8-bit bytes of an argument) shown as ``?``."""
    return text.encode("utf-8", "surrogateescape").translate(_PRINTABLE_BYTES).decode("ascii")


def atoi(text: str) -> int:
    """glibc's ``atoi``: leading whitespace and sign, digits, anything after ignored, else
    0; the value is ``(int) strtol(...)``: clamped to a 64-bit long, then its low 32 bits
    as a C int (``-m 4294967296`` is 0, ``-T 4294967297`` is 1)."""
    match = _ATOI.match(text)
    if match is None:
        return 0
    value = max(-(2**63), min(int(match.group(1)), 2**63 - 1))
    return (value + 2**31) % 2**32 - 2**31


@dataclass
class SourceConfig:
    """Everything an smtp-source command line says, with its defaults. A setting that
    :class:`~locust_smtp.SmtpUser` has too goes by the user attribute's name
    (``reuse_connection`` for -d, ``recipients_per_message`` for -r, ``message_size`` for
    -l, ``helo_name`` for -M, ``sender``, ``recipient``, ``subject``, ``timeout``)."""

    operand: str = ""
    family: int = socket.AF_UNSPEC
    abort_on_reject: bool = True  # -A turns this off
    counter: bool = False
    connect_count: int = 1
    reuse_connection: bool = False
    sender: str | None = None
    message_file: str | None = None
    message_size: int | None = None
    lmtp: bool = False
    messages: int = 1
    helo_name: str | None = None
    number_recipients: bool = False
    old_mode: bool = False
    recipients_per_message: int = 1
    random_delay: int = 0
    sessions: int = 1
    subject: str | None = None
    recipient: str | None = None
    window_size: int = 0
    verbose: bool = False
    fixed_delay: int = 0
    timeout: float = 300.0
    keep_going: bool = False
    quiet: bool = False
    request_events: str = "auto"
    ehlo: bool = False
    starttls: str = "no"
    smtps: bool = False
    tls_verify: bool = True
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_server_name: str | None = None
    tls_min_version: str | None = None
    tls_max_version: str | None = None
    tls_ciphers: str | None = None
    tls_resume: bool = True
    auth_mechanism: str | None = None
    auth_username: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    auth_token_file: str | None = None
    auth_credentials_file: str | None = None
    auth_allow_plaintext: bool = False
    pipelining: str = "off"
    chunking: str = "off"
    bdat_chunk_size: int = 0
    mail_size: str = "off"
    body_type: str | None = None
    smtputf8: str = "off"
    dsn_notify: str | None = None
    dsn_ret: str | None = None
    dsn_envid: str | None = None
    dsn_orcpt: bool = False
    client_identity: str | None = None
    client_addresses: str = "198.18.0.0/15"
    client_address_per: str = "user"
    transaction_log: str | None = None
    rate: str | None = None
    arrivals: str = "constant"
    rate_seed: int | None = None
    trace_delivery: bool = False
    run_id: str | None = None
    corpus: str | None = None
    rewrite_headers: bool = True
    message_template: str | None = None
    message_sizes: str | None = None
    attachments: str | None = None
    recipient_counts: str | None = None
    recipient_domains: str | None = None
    invalid_recipients: float = 0.0
    recipient_file: str | None = None
    sender_file: str | None = None
    unique_addresses: bool = False
    messages_per_connection: str | None = None
    workload_seed: int | None = None
    show_help: bool = False
    locust_args: list[str] = field(default_factory=list)


def _positive(value: str, what: str) -> int:
    number = atoi(value)
    if number <= 0:
        raise UsageError(f"fatal: bad {what}: {value}")
    return number


def _seed(value: str, what: str) -> int:
    """A seed is a whole number written as one: no atoi-style prefix parsing."""
    if not value.strip().isdigit():
        raise UsageError(f"fatal: bad {what}: {value}")
    return int(value)


def _no_line_breaks(value: str, what: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value:
        raise UsageError(f"fatal: bad {what}: {value!r} contains CR, LF or NUL")
    return value


def check_myhostname(name: str) -> str:
    if name.startswith("["):
        problem = address_literal_problem(name)
        if problem is not None:
            warning = [f"warning: {problem}"] if problem.startswith("valid_") else []
            raise UsageError(*warning, f"fatal: bad address literal: {name}")
        return name
    problem = hostname_problem(name)
    if problem is not None:
        raise UsageError(f"warning: valid_hostname: {problem}", f"fatal: bad hostname: {name}")
    return name


def parse_args(argv: list[str]) -> SourceConfig:
    """Parse the arguments (without the program name). Raises :class:`UsageError`."""
    config = SourceConfig()
    try:
        options, operands = getopt.getopt(argv, SHORT_OPTIONS, LONG_OPTIONS)
    except getopt.GetoptError as exc:
        glibc = (
            f"option requires an argument -- '{exc.opt}'"
            if "requires argument" in exc.msg
            else f"invalid option -- '{exc.opt}'"
        )
        if exc.opt and len(exc.opt) > 1:  # a long option
            glibc = f"unrecognized option '--{exc.opt}'"
            if "requires argument" in exc.msg:
                glibc = f"option '--{exc.opt}' requires an argument"
        raise UsageError(glibc, f"fatal: {USAGE}") from None
    for opt, value in options:
        if opt == "-4":
            config.family = socket.AF_INET
        elif opt == "-6":
            config.family = socket.AF_INET6
        elif opt == "-A":
            config.abort_on_reject = False
        elif opt == "-c":
            config.counter = True
        elif opt == "-C":
            config.connect_count = _positive(value, "connection count")
        elif opt == "-d":
            config.reuse_connection = True
        elif opt == "-f":
            config.sender = _no_line_breaks(value, "sender address")
        elif opt == "-F":
            if config.message_size is not None:
                raise UsageError("fatal: -l option cannot be used with -F")
            config.message_file = value
        elif opt == "-l":
            if config.message_file is not None:
                raise UsageError("fatal: -l option cannot be used with -F")
            config.message_size = _positive(value, "message length")
        elif opt == "-L":
            config.lmtp = True
        elif opt == "-m":
            config.messages = _positive(value, "message count")
        elif opt == "-M":
            config.helo_name = check_myhostname(value)
        elif opt == "-N":
            config.number_recipients = True
        elif opt == "-o":
            config.old_mode = True
        elif opt == "-r":
            config.recipients_per_message = _positive(value, "recipient count")
        elif opt == "-R":
            if config.fixed_delay:
                raise UsageError("fatal: do not use -w and -R options at the same time")
            config.random_delay = _positive(value, "random delay")
        elif opt == "-s":
            config.sessions = _positive(value, "session count")
        elif opt == "-S":
            config.subject = _no_line_breaks(value, "subject")
        elif opt == "-t":
            config.recipient = _no_line_breaks(value, "recipient address")
        elif opt == "-T":
            config.window_size = _positive(value, "TCP window size")
        elif opt == "-v":
            config.verbose = True
        elif opt == "-w":
            if config.random_delay:
                raise UsageError("fatal: do not use -w and -R options at the same time")
            config.fixed_delay = _positive(value, "fixed delay")
        elif opt == "--timeout":
            try:
                config.timeout = float(value)
            except ValueError:
                config.timeout = 0
            if not 0 < config.timeout < 1e9:  # not 0, negative, NaN or infinite
                raise UsageError(f"fatal: bad timeout: {value}")
        elif opt == "--keep-going":
            config.keep_going = True
        elif opt == "--quiet":
            config.quiet = True
        elif opt == "--request-events":
            if value not in REQUEST_EVENTS:
                raise UsageError(
                    f"fatal: bad request events: {value} (one of {', '.join(REQUEST_EVENTS)})"
                )
            config.request_events = value
        elif opt == "--ehlo":
            config.ehlo = True
        elif opt == "--starttls":
            config.starttls = "required"
        elif opt == "--starttls-if-offered":
            config.starttls = "opportunistic"
        elif opt == "--smtps":
            config.smtps = True
        elif opt == "--tls-no-verify":
            config.tls_verify = False
        elif opt == "--no-tls-resume":
            config.tls_resume = False
        elif opt == "--auth":
            if value.upper() not in MECHANISMS:
                raise UsageError(
                    f"fatal: bad AUTH mechanism: {value} (one of {', '.join(MECHANISMS)})"
                )
            config.auth_mechanism = value.upper()
        elif opt == "--auth-password-file":
            try:
                with open(value, encoding="utf-8") as f:
                    config.auth_password = f.read().rstrip("\r\n")
            except OSError as exc:
                raise UsageError(f"fatal: open {value}: {os.strerror(exc.errno or 0)}") from None
        elif opt == "--auth-plaintext":
            config.auth_allow_plaintext = True
        elif opt in TLS_VALUE_OPTIONS:
            setattr(config, TLS_VALUE_OPTIONS[opt], value)
        elif opt in ESMTP_FLAG_OPTIONS:
            field_name, setting = ESMTP_FLAG_OPTIONS[opt]
            setattr(config, field_name, setting)
            config.ehlo = True
        elif opt in ESMTP_VALUE_OPTIONS:
            setattr(config, ESMTP_VALUE_OPTIONS[opt], _no_line_breaks(value, opt[2:]))
            config.ehlo = True
        elif opt in ("--xclient", "--xforward"):
            config.client_identity = opt[2:]
            config.ehlo = True
        elif opt == "--proxy-protocol":
            if value not in ("1", "2"):
                raise UsageError(f"fatal: bad PROXY protocol version: {value} (1 or 2)")
            config.client_identity = f"proxy-v{value}"
        elif opt == "--client-addresses":
            try:
                AddressPool.parse(value)
            except ValueError as exc:
                raise UsageError(f"fatal: bad {exc}") from None
            config.client_addresses = value
        elif opt == "--address-per-connection":
            config.client_address_per = "connection"
        elif opt == "--rate":
            try:
                parse_profile(value)
            except ValueError as exc:
                raise UsageError(f"fatal: {exc}") from None
            config.rate = value
        elif opt == "--arrivals":
            if value not in ARRIVALS:
                raise UsageError(f"fatal: bad arrivals: {value} (one of {', '.join(ARRIVALS)})")
            config.arrivals = value
        elif opt == "--rate-seed":
            config.rate_seed = _seed(value, "rate seed")
        elif opt == "--trace-delivery":
            config.trace_delivery = True
        elif opt == "--run-id":
            try:
                config.run_id = check_run_id(value)
            except ValueError as exc:
                raise UsageError(f"fatal: {exc}") from None
        elif opt in WORKLOAD_VALUE_OPTIONS:
            setattr(config, WORKLOAD_VALUE_OPTIONS[opt], value)
        elif opt == "--keep-headers":
            config.rewrite_headers = False
        elif opt == "--unique-addresses":
            config.unique_addresses = True
        elif opt == "--invalid-recipients":
            try:
                config.invalid_recipients = float(value)
            except ValueError:
                config.invalid_recipients = -1.0
            if not 0.0 <= config.invalid_recipients <= 1.0:
                raise UsageError(f"fatal: bad invalid recipients share: {value} (0 to 1)")
        elif opt == "--seed":
            config.workload_seed = _seed(value, "seed")
        elif opt == "--transaction-log":
            try:
                open(value, "a").close()
            except OSError as exc:
                raise UsageError(f"fatal: open {value}: {os.strerror(exc.errno or 0)}") from None
            config.transaction_log = value
        elif opt == "--bdat-chunk-size":
            config.bdat_chunk_size = _positive(value, "BDAT chunk size")
        elif opt == "--help":
            config.show_help = True
            return config
    if "--" in operands:
        split = operands.index("--")
        operands, config.locust_args = operands[:split], operands[split + 1 :]
        for arg in config.locust_args:
            name = arg.split("=", 1)[0]
            if name.startswith("--smtp-"):
                instead = SMTP_OPTION_EQUIVALENTS.get(name)
                hint = f"use {instead}" if instead else "locust-smtp has no such setting"
                raise UsageError(f"fatal: {name} is for locust -f locustfiles: {hint}")
    if len(operands) != 1:
        raise UsageError(f"fatal: {USAGE}")
    if config.old_mode and (config.starttls != "no" or config.auth_mechanism or config.ehlo):
        if config.starttls != "no":
            what = "--starttls"
        elif config.auth_mechanism:
            what = "--auth"
        else:
            what = "--ehlo (or an ESMTP option, which implies it)"
        raise UsageError(f"fatal: -o sends no HELO or EHLO: {what} needs an EHLO reply")
    if config.smtps and config.starttls != "no":
        raise UsageError("fatal: --smtps and --starttls: TLS from the first byte, or STARTTLS")
    if config.auth_mechanism and not (config.auth_username or config.auth_credentials_file):
        raise UsageError("fatal: --auth needs --auth-user (or --auth-credentials)")
    secret = config.auth_password is not None or config.auth_token_file
    if config.auth_username and not config.auth_credentials_file and not secret:
        raise UsageError(
            "fatal: --auth-user needs --auth-password-file (or --auth-password, --auth-token-file)"
        )
    try:
        mail_options(config).check()
    except ValueError as exc:
        raise UsageError(f"fatal: bad {exc}") from None
    if config.messages_per_connection:
        config.reuse_connection = True  # QUIT when a connection has had its share
    try:  # read the corpus, template and address files now: errors before the start
        if wants_composer(config):
            Composer(config, user_number=0)
        if config.messages_per_connection:
            parse_distribution(config.messages_per_connection)
    except ValueError as exc:
        raise UsageError(f"fatal: {exc}") from None
    config.operand = operands[0]
    return config


#: SourceConfig fields that are SmtpUser's client identity settings too (same names)
IDENTITY_SETTINGS = ("client_identity", "client_addresses", "client_address_per")
#: SourceConfig fields that are SmtpUser's ESMTP settings too (same names)
MAIL_SETTINGS = (
    "pipelining",
    "chunking",
    "bdat_chunk_size",
    "mail_size",
    "body_type",
    "smtputf8",
    "dsn_notify",
    "dsn_ret",
    "dsn_envid",
    "dsn_orcpt",
)


def mail_options(config: SourceConfig) -> MailOptions:
    return MailOptions.from_settings(config)
