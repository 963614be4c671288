"""``locust-smtp-sink``'s command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..protocol.address import AddressError
from .delivery import LATE_AFTER, RUN_ID, DeliveryTracker
from .server import Sink, listen, write_report
from .state import COMMANDS, EXTENSIONS, PROGRAM, SinkConfig, read_credentials


def _commands(value: str) -> frozenset[str]:
    """``CMD,...``, each optionally ``CMD/N`` (only every Nth such command); returns the
    items as given, lowercased (:func:`_split_every` separates them)."""
    items = frozenset(c.strip().lower() for c in value.split(",") if c.strip())
    names = set()
    for item in items:
        name, slash, every = item.partition("/")
        if slash and not (every.isdigit() and int(every) > 0):
            raise argparse.ArgumentTypeError(f"bad frequency: {item} (CMD/N, N from 1)")
        names.add(name)
    unknown = names - COMMANDS
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown command: {', '.join(sorted(unknown))}")
    return items


def _split_every(items: frozenset[str], every: dict[str, int]) -> frozenset[str]:
    """The command names of ``CMD[/N]`` items; each N goes into ``every``."""
    names = set()
    for item in items:
        name, _, n = item.partition("/")
        names.add(name)
        if n:
            every[name] = int(n)
    return frozenset(names)


def _late(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"bad late threshold: {value}")
    return seconds


def _expect(value: str) -> tuple[str, int]:
    run, equals, count = value.rpartition("=")
    if not equals or not RUN_ID.match(run):
        raise argparse.ArgumentTypeError(f"not RUN=N: {value}")
    if not count.isascii() or not count.isdigit():
        raise argparse.ArgumentTypeError(f"bad message count: {count}")
    return run, int(count)


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
    parser.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="each connection starts with a PROXY protocol header, v1 or v2 (as behind "
        "HAProxy); its source addresses are counted as clients",
    )
    parser.add_argument(
        "--hide",
        metavar="EXT,...",
        help="do not offer these extensions after EHLO, and refuse their commands and "
        f"parameters (of {', '.join(EXTENSIONS)})",
    )
    for short, long, action in (
        ("-r", "--soft-reject", "answer these commands with 450 (CMD/N: every Nth only)"),
        ("-f", "--hard-reject", "answer these commands with 550 (CMD/N: every Nth only)"),
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
        "--starttls", action="store_true", help="offer STARTTLS (in the EHLO reply)"
    )
    parser.add_argument(
        "--smtps", action="store_true", help="implicit TLS: TLS from the first byte"
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="certificate chain (PEM) for TLS; default: a self-signed one made at start-up",
    )
    parser.add_argument("--tls-key", metavar="FILE", help="its key, if not in --tls-cert")
    parser.add_argument(
        "--tls-cert-out",
        type=Path,
        metavar="FILE",
        help="write the self-signed certificate here (for clients to trust it)",
    )
    parser.add_argument(
        "--auth-file",
        metavar="FILE",
        help="offer AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER: the password is the "
        "token), checked against FILE's user:password lines",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="write each connection's client bytes to DIR/NNNNNN.client (AUTH credentials "
        "replaced by ****)",
    )
    parser.add_argument(
        "--delivery-report",
        type=Path,
        metavar="FILE",
        help="write the delivery tracking of traced messages (the X-Locust-Smtp-Trace header) "
        "to FILE as JSON, at start, at each --report-interval and at exit",
    )
    parser.add_argument(
        "--delivery-log",
        type=Path,
        metavar="FILE",
        help="append one JSON line per traced arrival to FILE (run, seq, sent, arrived, us)",
    )
    parser.add_argument(
        "--late",
        type=_late,
        default=LATE_AFTER,
        metavar="SECONDS",
        help=f"a traced message delivered later than this is late (default {LATE_AFTER:g})",
    )
    parser.add_argument(
        "--expect",
        type=_expect,
        action="append",
        default=[],
        metavar="RUN=N",
        help="run RUN sent N traced messages: report how many were lost (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    hidden = frozenset(
        word.strip().upper() for word in (args.hide or "").split(",") if word.strip()
    )
    unknown = sorted(hidden - set(EXTENSIONS))
    if unknown:
        print(
            f"{PROGRAM}: fatal: --hide: unknown extension {', '.join(unknown)} "
            f"(one of {', '.join(EXTENSIONS)})",
            file=sys.stderr,
        )
        return 1
    every: dict[str, int] = {}
    config = SinkConfig(
        hostname=args.hostname,
        lmtp=args.lmtp,
        soft_reject=_split_every(args.soft_reject, every),
        hard_reject=_split_every(args.hard_reject, every),
        hang_up=_split_every(args.hang_up, every),
        close_421=_split_every(args.close_421, every),
        delay=args.delay,
        record=args.record,
        fault_every=max(1, args.fault_every),
        every=every,
        starttls=args.starttls,
        smtps=args.smtps,
        hidden=hidden,
        proxy_protocol=args.proxy_protocol,
        late_after=args.late,
        expected=dict(args.expect),
        delivery_report=args.delivery_report,
        delivery_log=args.delivery_log,
    )
    if args.auth_file:
        try:
            config.credentials = read_credentials(args.auth_file)
        except (OSError, ValueError) as exc:
            print(f"{PROGRAM}: fatal: --auth-file: {exc}", file=sys.stderr)
            return 1
    tls_context = None
    if args.starttls or args.smtps:
        from .certificate import server_context

        try:
            tls_context = server_context(
                args.tls_cert, args.tls_key, args.hostname, args.tls_cert_out
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            print(f"{PROGRAM}: fatal: TLS certificate: {exc}", file=sys.stderr)
            return 1
    if config.delivery_report is not None:
        try:  # an empty report at once: a path that cannot be written fails now
            write_report(
                config.delivery_report,
                DeliveryTracker(config.late_after, config.expected).report(),
            )
        except OSError as exc:
            print(f"{PROGRAM}: fatal: --delivery-report: {exc}", file=sys.stderr)
            return 1
    if config.delivery_log is not None:
        try:
            open(config.delivery_log, "a").close()
        except OSError as exc:
            print(f"{PROGRAM}: fatal: --delivery-log: {exc}", file=sys.stderr)
            return 1
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

    Sink(listener, config, tls_context).serve_forever(args.report_interval, out, ready)
    return 0


def entry_point() -> None:
    sys.exit(main())
