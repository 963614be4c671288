"""``locust-smtp``: smtp-source's command line, run as a headless Locust test.

    locust-smtp [options] [inet:]host[:port] [-- locust options]
    locust-smtp [options] unix:pathname [-- locust options]

Start-up checks run in smtp-source's order (reference §1.3) before Locust
starts, so a bad command line fails fast with smtp-source's words. Then
Locust runs ``-s`` users of :class:`~locust_smtp.source.session.SourceUser`
sharing a pool of exactly ``-m`` messages; stdout carries only what
smtp-source prints (the ``-c`` counter), stderr the diagnostics and, at the
end, a summary.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..plugin.distributed import DELIVERED, FATAL
from ..plugin.options import MASTER_HANDLERS
from ..protocol._content import SourceMessage
from ..protocol._envelope import default_address, local_hostname
from ..protocol.address import AddressError, hostname_problem, parse_source_address
from .options import HELP, PROGRAM, SourceConfig, UsageError, parse_args, printable
from .session import SourceRun, set_current_run

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SPAWN_AT_ONCE = 10_000  # users per second: every session starts at once
FILES_RESERVED = 64  # open files Locust and Python need besides the sessions' sockets
WORKERS_STOP_TIMEOUT = 5.0


def prepare_run(config: SourceConfig) -> SourceRun:
    """Steps 4-6 of smtp-source's start-up: content, server address, own hostname."""
    content = None
    if config.message_file is not None:
        try:
            with open(config.message_file, "rb") as f:
                content = f.read()
        except OSError as exc:
            raise UsageError(
                f"fatal: open {config.message_file}: {os.strerror(exc.errno or 0)}"
            ) from None
    try:
        address = parse_source_address(config.operand)
        sockaddr = None if address.is_unix else address.resolve(config.family)
    except AddressError as exc:
        raise UsageError(f"fatal: {exc}") from None
    if config.smtps or config.starttls != "no":
        from ..tls import context_for

        try:  # the sessions make it again: here a bad setting is a usage error
            context_for(config)
        except ValueError as exc:
            raise UsageError(f"fatal: bad {exc}") from None
    try:  # the sessions read them again: here a bad file is a usage error
        if config.auth_credentials_file:
            from ..plugin.users import _credential_rows

            _credential_rows(config.auth_credentials_file)
        if config.auth_token_file:
            with open(config.auth_token_file, encoding="utf-8") as f:
                f.read()
    except (OSError, ValueError) as exc:
        raise UsageError(f"fatal: AUTH: {exc}") from None
    myhostname = config.helo_name
    if myhostname is None:
        myhostname = local_hostname()
        problem = hostname_problem(myhostname)
        if problem is not None:
            raise UsageError(
                f"warning: valid_hostname: {problem}", "fatal: unable to use my own hostname"
            )
    sender = config.sender if config.sender is not None else default_address(myhostname)
    recipient = config.recipient if config.recipient is not None else default_address(myhostname)
    template = SourceMessage(
        sender=sender,
        recipient=recipient,
        myhostname=myhostname,
        subject=config.subject,
        length=config.message_size,
        file_content=content,
        headers=not config.old_mode,
    ).template()
    return SourceRun(config, myhostname, sender, recipient, template, sockaddr)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROGRAM}: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR)
    # Locust logs this when a session that just ended (a fatal stops the run at that
    # moment) is still listed among the running users; it is skipped, nothing is wrong
    logging.getLogger("locust.runners").addFilter(
        lambda record: "didn't have proper args" not in record.getMessage()
    )


def _locust_argv(config: SourceConfig) -> list[str]:
    return [
        PROGRAM,
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--skip-log-setup",
        "-u",
        str(config.sessions),
        "-r",
        str(SPAWN_AT_ONCE),
        "--host",
        config.operand,
        "--smtp-messages",
        str(config.messages),
        *(["--smtp-rate", config.rate] if config.rate else []),
        *(["--smtp-arrivals", config.arrivals] if config.rate else []),
        *(["--smtp-rate-seed", str(config.rate_seed)] if config.rate_seed is not None else []),
        *(["--smtp-run-id", config.run_id] if config.run_id else []),
        *_own_master_port(config.locust_args),
        *config.locust_args,
    ]


def _own_master_port(locust_args: list[str]) -> list[str]:
    """With ``-- --processes N`` and no port of the user's: a free port for the master and
    its forked workers, instead of Locust's fixed 5557, so that two runs on one machine
    do not meet (the second failed to bind, and its workers joined the first's master)."""
    names = {arg.split("=", 1)[0] for arg in locust_args}
    if "--processes" not in names or names & {"--master-bind-port", "--master-port"}:
        return []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    return ["--master-bind-port", port, "--master-port", port]


def raise_file_limit(sessions: int, stderr: Any = sys.stderr) -> None:
    """Raise the soft open-file limit to the hard one, and say at the start when ``-s``
    sessions (one socket each, besides Locust's own) cannot fit in it."""
    try:
        import resource
    except ImportError:  # not on this system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < 256:
        # smtp-source's event loop says this of any limit below 256
        print(f"{PROGRAM}: warning: could allocate space for only {soft} open files", file=stderr)
    need = sessions + FILES_RESERVED
    if soft != resource.RLIM_INFINITY and need > soft:
        print(
            f"{PROGRAM}: warning: {sessions} sessions need about {need} open files, but the "
            f"limit is {soft}: connects beyond it fail with 'socket: Too many open files' "
            "(raise the limit with ulimit -n)",
            file=stderr,
            flush=True,
        )


def run_locust(config: SourceConfig, run: SourceRun) -> int:
    import gevent
    import locust.main
    from locust import events
    from locust.runners import MasterRunner, WorkerRunner

    from ..plugin.summary import render

    reported: list[bool] = []
    interrupted: list[int] = []  # the signal that stopped the run, if one did

    def on_quitting(environment: Any, **_kwargs: Any) -> None:
        runner = environment.runner
        ok = run.failed is None
        if isinstance(runner, WorkerRunner):
            environment.process_exit_code = 0 if ok else 1
            return
        if reported:  # Locust may quit twice (a worker's error, then the shutdown)
            return
        reported.append(True)
        master_pool = getattr(environment, "smtp_master_pool", None)
        if master_pool is not None and master_pool.results_lost and run.failed is None:
            run.failed = (
                f"the results of {master_pool.results_lost} message(s) were lost with a "
                "worker that went away"
            )
            print(f"{PROGRAM}: fatal: {run.failed}", file=run.stderr, flush=True)
            ok = False
        if interrupted and runner is not None:
            # SIGTERM reaches here with the sessions still running: stop them first, so
            # that the messages in flight are counted (as interrupted)
            runner.stop()
            if isinstance(runner, MasterRunner):
                _wait_for_workers(runner)
        if config.counter and ok and not interrupted:
            run.stdout.write("\n")
            run.stdout.flush()
        if not config.quiet and runner is not None:
            request_type = "LMTP" if config.lmtp else "SMTP"
            print(render(environment, request_type, PROGRAM), file=run.stderr)
            if config.trace_delivery:
                run_id = getattr(environment.parsed_options, "smtp_run_id", None)
                print(f"delivery traced as run {run_id}", file=run.stderr)
        # a fatal error: 1; stopped by a signal: 128 + its number (130, 143); else 0
        if not ok:
            environment.process_exit_code = 1
        else:
            environment.process_exit_code = 128 + interrupted[0] if interrupted else 0

    def on_worker_fatal(environment: Any, msg: Any, **_kwargs: Any) -> None:
        if run.failed is None:
            run.failed = str(msg.data.get("text", "fatal error on a worker"))
            gevent.spawn(environment.runner.quit)

    def on_worker_delivered(environment: Any, msg: Any, **_kwargs: Any) -> None:
        run.count_delivery()

    environments: list[Any] = []

    def interrupt(environment: Any, signum: int) -> None:
        interrupted.append(signum)
        # the workers stop too; messages they were granted but never started are not
        # lost with a worker: they were never attempted
        master_pool = getattr(environment, "smtp_master_pool", None)
        if master_pool is not None:
            master_pool.close()

    def on_init(environment: Any, **_kwargs: Any) -> None:
        environments.append(environment)
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            # one -c counter for the run, as smtp-source's: the master prints it
            run.forward_delivery = lambda: runner.send_message(DELIVERED, None)

        def on_sigint() -> None:
            # instead of a KeyboardInterrupt (and its line on stderr): stop, then report
            if interrupted:  # a second ^C: do not wait any longer
                os._exit(128 + signal.SIGINT)
            interrupt(environment, signal.SIGINT)
            if not forked_worker:
                gevent.spawn(runner.quit)

        # a --processes child gets the terminal's ^C too; its master stops it, so that
        # its messages in flight are reported (as interrupted) before it goes
        forked_worker = isinstance(runner, WorkerRunner) and bool(
            getattr(environment.parsed_options, "processes", None)
        )
        gevent.signal_handler(signal.SIGINT, on_sigint)

    def recording_signal_handler(signum: int, handler: Any, *args: Any, **kwargs: Any) -> Any:
        # Locust's own SIGTERM handler shuts down at once; note the signal first
        if signum == signal.SIGTERM:
            inner = handler

            def handler(*a: Any, **kw: Any) -> Any:
                if not interrupted and environments:
                    interrupt(environments[0], signal.SIGTERM)
                return inner(*a, **kw)

        return install_signal_handler(signum, handler, *args, **kwargs)

    install_signal_handler = gevent.signal_handler
    MASTER_HANDLERS.extend([(FATAL, on_worker_fatal), (DELIVERED, on_worker_delivered)])
    events.init.add_listener(on_init)  # type: ignore[no-untyped-call]
    events.quitting.add_listener(on_quitting)  # type: ignore[no-untyped-call]
    _configure_logging()
    raise_file_limit(config.sessions, run.stderr)
    saved_argv = sys.argv
    sys.argv = _locust_argv(config)
    gevent.signal_handler = recording_signal_handler
    try:
        locust.main.main()  # type: ignore[no-untyped-call]
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        gevent.signal_handler = install_signal_handler
        sys.argv = saved_argv
        events.quitting.remove_listener(on_quitting)  # type: ignore[no-untyped-call]
        events.init.remove_listener(on_init)  # type: ignore[no-untyped-call]
        MASTER_HANDLERS.clear()
    return 0


def _wait_for_workers(runner: Any, timeout: float = WORKERS_STOP_TIMEOUT) -> None:
    """After a stop, give the workers a moment to send their last statistics."""
    import gevent
    from locust.runners import STATE_MISSING, STATE_STOPPED

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        client.state not in (STATE_STOPPED, STATE_MISSING) for client in runner.clients.values()
    ):
        gevent.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        config = parse_args(args)
        if config.show_help:
            print(HELP, end="")
            return 0
        run = prepare_run(config)
    except UsageError as exc:
        for line in exc.lines:
            print(f"{PROGRAM}: {printable(line)}", file=sys.stderr)
        return 1
    set_current_run(run)
    return run_locust(config, run)
