"""The fault matrix: locust-smtp against a misbehaving server never hangs and never loses
count.

Each case runs the real ``locust-smtp`` command against :mod:`fault_server` with one
fault and checks the exit status, the time it took (timeouts bound every reply as a
whole: silence, endless continuation lines and trickled bytes end within ``--timeout``
plus a second), the diagnostic smtp-source would print, and the accounting: the
summary's ``attempted = accepted + rejected + failed + interrupted``, each as expected,
and what the server itself counted. Where smtp-source terminates too, the same fault is
put to the real binary and its exit status and diagnostics must be ours.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import time
from dataclasses import dataclass

import gevent
import pytest
from fault_server import Fault, FaultServer, blackhole_address, fault_server
from servers import LOCUST_SMTP, SMTP_SOURCE, free_port, our_sink, require_binary

SUMMARY = re.compile(
    r"locust-smtp: (\d+) messages in ([\d.]+) s \(\d+/s\): (\d+) accepted, (\d+) rejected, "
    r"(\d+) failed(?:, (\d+) interrupted)?"
)
RECIPIENTS = re.compile(r"recipients: (\d+) accepted, (\d+) refused; (\d+) messages accepted")
TIMEOUT = 1.0


@dataclass(frozen=True)
class Summary:
    attempted: int
    elapsed: float
    accepted: int
    rejected: int
    failed: int
    interrupted: int

    @property
    def outcomes(self) -> tuple[int, int, int, int]:
        return self.accepted, self.rejected, self.failed, self.interrupted


def summary_of(stderr: str) -> Summary:
    match = SUMMARY.search(stderr)
    assert match is not None, stderr
    attempted, elapsed, accepted, rejected, failed, interrupted = match.groups()
    summary = Summary(
        int(attempted), float(elapsed), int(accepted), int(rejected), int(failed),
        int(interrupted or 0),
    )  # fmt: skip
    assert summary.attempted == sum(summary.outcomes), "the accounting does not add up"
    return summary


def diagnostics(stderr: str, program: str) -> list[str]:
    """The smtp-source lines of stderr (warnings and fatal), with our program name."""
    return [
        line.replace(program, "locust-smtp")
        for line in stderr.splitlines()
        if line.startswith(f"{program}: warning:") or line.startswith(f"{program}: fatal:")
    ]


def run(
    command: list[str], args: tuple[str, ...], address: str, limit: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = subprocess.run([*command, *args, address], capture_output=True, text=True, timeout=limit)
    return proc, time.monotonic() - t0


@dataclass(frozen=True)
class Case:
    id: str
    faults: tuple[Fault, ...]
    args: tuple[str, ...]
    status: int
    lines: tuple[str, ...]
    """Diagnostics expected on stderr, in order (each counted where repeated)."""
    outcomes: tuple[int, int, int, int]
    """(accepted, rejected, failed, interrupted) messages."""
    delivered: int | None = None
    """Messages the server accepted (default: the accepted count)."""
    within: float | None = None
    """The most the run may report as its duration (the summary's seconds)."""
    reference: bool = False
    """smtp-source terminates on this fault too: compare status and diagnostics."""
    lmtp: bool = False
    recipients: tuple[int, int, int] | None = None
    """(accepted, refused, messages partly accepted)."""


def reply(on: str, text: bytes, **kw: object) -> Fault:
    return Fault(on, "reply", text=text, **kw)  # type: ignore[arg-type]


REJECTED_AT = {
    "connect": "rejected at server banner",
    "helo": "HELO rejected",
    "mail": "sender rejected",
    "rcpt": "recipient rejected",
    "data": "data rejected",
    ".": "end of data rejected",
}
CONTEXT = {
    "connect": "reading server greeting",
    "helo": "sending HELO",
    "mail": "sending sender",
    "rcpt": "sending recipient",
    "data": "sending DATA command",
    ".": "sending message",
    "quit": "sending message",
}
FATAL = "locust-smtp: fatal: "
WARNING = "locust-smtp: warning: "
T = ("--timeout", str(TIMEOUT))
# a greeting that never comes may be a server waiting for TLS (a trickled one is not)
SMTPS_HINT = " (a server that speaks TLS from the first byte sends no greeting: if so, use --smtps)"

CASES = [
    # a 4xx at each stage, no -A: fatal after the first attempt, as smtp-source
    *[
        Case(
            f"450-{on}",
            (reply(on, b"450 4.3.0 busy\r\n"),),
            ("-m", "3"),
            1,
            (f"{FATAL}{text}: 450 4.3.0 busy",),
            (0, 1, 0, 0),
            reference=True,
        )
        for on, text in REJECTED_AT.items()
    ],
    # -A: every other MAIL/RCPT/DATA/. refused, the rest delivered; RSET after a refusal
    *[
        Case(
            f"550-every-2nd-{on}-A",
            (reply(on, b"550 5.7.1 no\r\n", every=2),),
            ("-A", "-m", "6"),
            0,
            (f"{WARNING}{REJECTED_AT[on]}: 550 5.7.1 no",) * 3,
            (3, 3, 0, 0),
            reference=True,
        )
        for on in ("mail", "rcpt", "data", ".")
    ],
    # -A: a refused greeting or HELO is only a warning; the message still goes
    *[
        Case(
            f"550-{on}-A",
            (reply(on, b"554 5.7.1 go away\r\n", every=2),),
            ("-A", "-m", "4"),
            0,
            (f"{WARNING}{REJECTED_AT[on]}: 554 5.7.1 go away",) * 2,
            (4, 0, 0, 0),
            reference=True,
        )
        for on in ("connect", "helo")
    ],
    # -A and 421: the connection is dropped and the next message uses a new one, also -d
    *[
        Case(
            f"421-every-2nd-{on}-A-d",
            (Fault(on, "close-421", every=2),),
            ("-A", "-d", "-m", "6"),
            0,
            (f"{WARNING}{REJECTED_AT[on]}: 421 4.3.2 fault.test closing (fault)",) * 3,
            (3, 3, 0, 0),
            reference=True,
        )
        for on in ("mail", "rcpt", "data", ".")
    ],
    # a hang-up at each stage: fatal "lost connection"; at QUIT the message still counts
    *[
        Case(
            f"hang-up-{on}",
            (Fault(on, "hang-up"),),
            ("-m", "3"),
            1,
            (f"{FATAL}lost connection while {context}",),
            (1, 0, 0, 0) if on == "quit" else (0, 0, 1, 0),
            delivered=1 if on == "quit" else 0,
            reference=True,
        )
        for on, context in CONTEXT.items()
    ],
    # silence at each stage: a timeout after --timeout, never a hang (smtp-source hangs)
    *[
        Case(
            f"silence-{on}",
            (Fault(on, "silence"),),
            ("-m", "3", *T),
            1,
            (f"{FATAL}timeout while {context}" + (SMTPS_HINT if on == "connect" else ""),),
            (1, 0, 0, 0) if on == "quit" else (0, 0, 1, 0),
            delivered=1 if on == "quit" else 0,
            within=TIMEOUT + 1,
        )
        for on, context in CONTEXT.items()
    ],
    Case(
        "partial-line-then-stall",
        (Fault("mail", "partial"),),
        ("-m", "2", *T),
        1,
        (f"{FATAL}timeout while sending sender",),
        (0, 0, 1, 0),
        within=TIMEOUT + 1,
    ),
    Case(
        "endless-continuation-lines",
        (Fault("helo", "endless"),),
        ("-m", "2", *T),
        1,
        (f"{FATAL}timeout while sending HELO",),
        (0, 0, 1, 0),
        within=TIMEOUT + 1,
    ),
    Case(
        "trickled-reply-slower-than-the-timeout",
        (Fault("connect", "trickle", text=b"220 a greeting that takes a while\r\n", interval=0.1),),
        ("-m", "2", *T),
        1,
        (f"{FATAL}timeout while reading server greeting",),
        (0, 0, 1, 0),
        within=TIMEOUT + 1,
    ),
    Case(
        "trickled-reply-within-the-timeout",
        (Fault("mail", "trickle", interval=0.02),),
        ("-m", "2", *T),
        0,
        (),
        (2, 0, 0, 0),
    ),
    Case(
        "huge-reply-line",
        (Fault("mail", "huge"),),
        ("-m", "2"),
        0,
        (),
        (2, 0, 0, 0),
        reference=True,
    ),
    Case(
        "bare-lf-replies",
        tuple(Fault(on, "bare-lf") for on in ("connect", "helo", "mail", "rcpt", "data", ".")),
        ("-m", "2"),
        0,
        (),
        (2, 0, 0, 0),
        reference=True,
    ),
    Case("nul-in-reply", (Fault("rcpt", "nul"),), ("-m", "2"), 0, (), (2, 0, 0, 0), reference=True),
    Case(
        "garbage-greeting",
        (Fault("connect", "garbage"),),
        ("-m", "2"),
        1,
        (f"{FATAL}rejected at server banner: 0 HTTP/1.1 400 Bad Request",),
        (0, 1, 0, 0),
        reference=True,
    ),
    Case(
        "garbage-greeting-A",
        (Fault("connect", "garbage"),),
        ("-A", "-m", "2"),
        1,
        (
            f"{WARNING}rejected at server banner: 0 HTTP/1.1 400 Bad Request",
            f"{WARNING}HELO rejected: 0 ",  # the empty line after the garbage
            f"{FATAL}lost connection while sending sender",
        ),
        (0, 0, 1, 0),
        reference=True,
    ),
    # the timeout is per reply, not a running total: 10 messages of 6 replies 50 ms late
    # per session is 3 s of waiting each, three times the timeout
    Case(
        "every-reply-50ms-late",
        tuple(
            Fault(on, "delay", delay=0.05)
            for on in ("connect", "helo", "mail", "rcpt", "data", ".", "quit")
        ),
        ("-s", "4", "-m", "40", *T),
        0,
        (),
        (40, 0, 0, 0),
    ),
    Case(
        "a-run-longer-than-its-timeout",
        (),
        ("-d", "-m", "3000", "--timeout", "0.5"),
        0,
        (),
        (3000, 0, 0, 0),
    ),
    # --keep-going: no answer is a failed message and the session goes on
    Case(
        "keep-going-hang-ups",
        (Fault("mail", "hang-up", every=2),),
        ("--keep-going", "-m", "6"),
        0,
        (f"{WARNING}lost connection while sending sender",) * 3,
        (3, 0, 3, 0),
    ),
    Case(
        "keep-going-timeouts",
        (Fault("rcpt", "silence", every=3),),
        ("--keep-going", "-d", "-m", "6", "--timeout", "0.3"),
        0,
        (f"{WARNING}timeout while sending recipient",) * 2,
        (4, 0, 2, 0),
    ),
    Case(
        "keep-going-lost-quit",
        (Fault("quit", "hang-up"),),
        ("--keep-going", "-m", "3"),
        0,
        (f"{WARNING}lost connection while sending message",) * 3,
        (3, 0, 0, 0),
    ),
    # LMTP: one end-of-data reply per accepted recipient; a refused one is just that one
    Case(
        "lmtp-one-recipient-refused-A",
        (reply(".", b"550 5.1.1 no such user\r\n", recipient=2),),
        ("-L", "-A", "-r", "3", "-m", "2"),
        0,
        (f"{WARNING}end of data rejected: 550 5.1.1 no such user",) * 2,
        (2, 0, 0, 0),
        lmtp=True,
        recipients=(4, 2, 2),
        reference=True,
    ),
    Case(
        "lmtp-one-recipient-refused",
        (reply(".", b"550 5.1.1 no such user\r\n", recipient=2),),
        ("-L", "-r", "3", "-m", "2"),
        1,
        (f"{FATAL}end of data rejected: 550 5.1.1 no such user",),
        (1, 0, 0, 0),
        lmtp=True,
        reference=True,
    ),
    Case(
        "lmtp-all-recipients-refused-A",
        (reply(".", b"452 4.2.2 mailbox full\r\n"),),
        ("-L", "-A", "-r", "2", "-m", "2"),
        0,
        (f"{WARNING}end of data rejected: 452 4.2.2 mailbox full",) * 4,
        (0, 2, 0, 0),
        lmtp=True,
        recipients=(0, 4, 0),
        reference=True,
    ),
    Case(
        "lmtp-421-after-first-recipient-A",
        (Fault(".", "close-421", recipient=2),),
        ("-L", "-A", "-d", "-r", "3", "-m", "2"),
        0,
        (f"{WARNING}end of data rejected: 421 4.3.2 fault.test closing (fault)",) * 2,
        (2, 0, 0, 0),
        lmtp=True,
        recipients=(2, 2, 2),
        reference=True,
    ),
    Case(
        "lmtp-rcpt-refused-A",  # smtp-source would wait 300 s for a third reply
        (reply("rcpt", b"550 5.1.1 unknown\r\n", every=3),),
        ("-L", "-A", "-r", "3", "-m", "2"),
        0,
        (f"{WARNING}recipient rejected: 550 5.1.1 unknown",) * 2,
        (2, 0, 0, 0),
        lmtp=True,
        recipients=(4, 2, 2),
    ),
]


def check(case: Case, server: FaultServer, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == case.status, proc.stderr
    assert "Traceback" not in proc.stderr and "didn't have proper args" not in proc.stderr
    assert diagnostics(proc.stderr, "locust-smtp") == list(case.lines)
    summary = summary_of(proc.stderr)
    assert summary.outcomes == case.outcomes
    if case.within is not None:
        assert summary.elapsed <= case.within
    delivered = case.delivered if case.delivered is not None else case.outcomes[0]
    assert server.messages == delivered
    if case.recipients is not None:
        match = RECIPIENTS.search(proc.stderr)
        assert match is not None and tuple(map(int, match.groups())) == case.recipients


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case) -> None:
    with fault_server(*case.faults, lmtp=case.lmtp) as server:
        proc, wall = run(LOCUST_SMTP, case.args, server.address)
    check(case, server, proc)
    assert server.open_connections == 0
    if case.within is not None:
        assert wall < case.within + 15  # start-up and shut-down of Locust included
    if case.reference:
        require_binary(SMTP_SOURCE)
        with fault_server(*case.faults, lmtp=case.lmtp) as server:
            ref, _ = run([SMTP_SOURCE], case.args, server.address)
        assert ref.returncode == proc.returncode, ref.stderr
        assert diagnostics(ref.stderr, SMTP_SOURCE) == diagnostics(proc.stderr, "locust-smtp")


def test_refused_connect_is_fatal_as_in_smtp_source() -> None:
    address = f"127.0.0.1:{free_port()}"
    proc, _ = run(LOCUST_SMTP, ("-m", "2"), address)
    assert proc.returncode == 1
    assert diagnostics(proc.stderr, "locust-smtp") == [f"{FATAL}connect: Connection refused"]
    assert summary_of(proc.stderr).outcomes == (0, 0, 1, 0)
    require_binary(SMTP_SOURCE)
    ref, _ = run([SMTP_SOURCE], ("-m", "2"), address)
    assert (ref.returncode, diagnostics(ref.stderr, SMTP_SOURCE)) == (1, diagnostics(
        proc.stderr, "locust-smtp"
    ))  # fmt: skip


@pytest.mark.parametrize("keep_going", [False, True], ids=["fatal", "--keep-going"])
def test_black_holed_connect_times_out(keep_going: bool) -> None:
    with blackhole_address() as address:
        args = ("--keep-going",) * keep_going + ("-m", "2", *T)
        proc, _ = run(LOCUST_SMTP, args, address)
    summary = summary_of(proc.stderr)
    line = "connect: Connection timed out"
    if keep_going:
        assert proc.returncode == 0
        assert diagnostics(proc.stderr, "locust-smtp") == [f"{WARNING}{line}"] * 2
        assert summary.outcomes == (0, 0, 2, 0)
        assert summary.elapsed <= 2 * TIMEOUT + 1  # plus one back-off of 0.1 s
    else:
        assert proc.returncode == 1
        assert diagnostics(proc.stderr, "locust-smtp") == [f"{FATAL}{line}"]
        assert summary.outcomes == (0, 0, 1, 0)
        assert summary.elapsed <= TIMEOUT + 1


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*LOCUST_SMTP, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], limit: float = 60) -> tuple[bytes, str]:
    """Wait for the run to end (cooperatively: the server lives in this process)."""
    stdout, stderr = proc.communicate(timeout=limit)
    return stdout, stderr.decode()


def wait_for(condition: object, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        gevent.sleep(0.01)


def test_keep_going_survives_a_server_restart() -> None:
    with fault_server(delay=0.002) as server:
        proc = spawn("--keep-going", "-s", "2", "-d", "-m", "400", server.address)
        wait_for(lambda: server.messages >= 50)
        server.stop()  # killed: every connection dropped, new ones refused
        gevent.sleep(1.0)  # an outage of a second
        before = server.messages
        server.start()
        _, stderr = finish(proc)
    assert proc.returncode == 0, stderr
    summary = summary_of(stderr)
    assert summary.attempted == 400 and summary.rejected == 0 and summary.interrupted == 0
    assert summary.failed >= 2  # both sessions lost their connection, then were refused
    assert server.messages > before  # it came back, and the sessions with it
    # a message the server took just before it was killed may be counted failed here
    assert summary.accepted <= server.messages <= summary.accepted + 2
    assert "failed messages by time since the start: " in stderr
    warnings = diagnostics(stderr, "locust-smtp")
    assert len(warnings) == summary.failed
    assert {w.split(": ", 2)[2] for w in warnings} <= {
        "lost connection while sending sender",
        "lost connection while sending recipient",
        "lost connection while sending DATA command",
        "lost connection while sending message",
        "connect: Connection refused",
    }


def test_without_keep_going_a_server_restart_is_fatal() -> None:
    with fault_server(delay=0.002) as server:
        proc = spawn("-s", "2", "-d", "-m", "400", server.address)
        wait_for(lambda: server.messages >= 20)
        server.stop()
        _, stderr = finish(proc)
    assert proc.returncode == 1
    assert len(diagnostics(stderr, "locust-smtp")) == 1
    assert diagnostics(stderr, "locust-smtp")[0].startswith(f"{FATAL}lost connection while ")
    summary = summary_of(stderr)
    assert summary.failed >= 1 and summary.attempted < 400


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_with_its_status_and_a_summary(signum: int) -> None:
    with fault_server(delay=0.01) as server:
        proc = spawn("-c", "-s", "3", "-m", "100000", server.address)
        wait_for(lambda: server.messages >= 10)
        proc.send_signal(signum)
        stdout, stderr = finish(proc, limit=10)  # promptly
    assert proc.returncode == 128 + signum
    assert "KeyboardInterrupt" not in stderr and "Traceback" not in stderr
    summary = summary_of(stderr)
    assert summary.failed == summary.rejected == 0
    assert summary.attempted == summary.accepted + summary.interrupted < 100000
    assert summary.interrupted <= 3  # the sessions' messages in flight
    # every delivered message was counted; an interrupted one may have been delivered
    assert summary.accepted <= server.messages <= summary.accepted + summary.interrupted
    assert stdout.endswith(b"\r")  # no final LF: that means "completed" after -c


def test_out_of_file_descriptors_is_a_clear_fatal_as_in_smtp_source() -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (150, 150))

    results = []
    for program in (LOCUST_SMTP, [require_binary(SMTP_SOURCE)]):
        # greetings come late, so that every session holds its socket at once
        with our_sink("--delay", "0.5") as sink:
            results.append(
                subprocess.run(
                    [*program, "-s", "300", "-m", "600", sink.address],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    preexec_fn=limit,
                )
            )
    proc, ref = results
    assert proc.returncode == ref.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = diagnostics(proc.stderr, "locust-smtp")
    ours = f"{WARNING}300 sessions need about 364 open files, but the limit is 150: "
    assert lines[1].startswith(ours)
    assert (
        [lines[0], *lines[2:]]
        == diagnostics(ref.stderr, SMTP_SOURCE)
        == [
            f"{WARNING}could allocate space for only 150 open files",
            f"{FATAL}socket: Too many open files",
        ]
    )
    summary = summary_of(proc.stderr)
    assert summary.failed >= 1
    assert "connect (SocketError)" in proc.stderr


def test_a_signal_to_a_run_with_processes_counts_the_workers_messages_once() -> None:
    # ^C in a terminal signals the whole process group: the master and its workers
    with fault_server(delay=0.01) as server:
        proc = subprocess.Popen(
            [*LOCUST_SMTP, "-s", "4", "-m", "100000", server.address, "--", "--processes", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        wait_for(lambda: server.messages >= 20)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = finish(proc, limit=20)
    assert proc.returncode == 130, stderr
    summary = summary_of(stderr)
    # one connection per message: every attempt is one connection, counted once
    assert summary.attempted == server.connections, stderr
    assert summary.failed == summary.rejected == 0
    assert summary.accepted <= server.messages <= summary.accepted + summary.interrupted
