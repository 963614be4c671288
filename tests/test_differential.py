"""smtp-source against locust-smtp: same arguments, same recording server, same bytes.

Each case runs the real /usr/sbin/smtp-source and then locust-smtp against a
fresh locust-smtp-sink that records every connection's client bytes. The
streams must be identical per connection (Date and Message-Id values
normalised; with several sessions the order of connections is not
deterministic, so the sorted lists are compared), the number of connections
must match, exit statuses must agree and a fatal error must carry the same
reason.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import LOCUST_SMTP, SMTP_SOURCE, our_sink, require_binary

from locust_smtp.protocol._envelope import local_hostname

DATE = re.compile(rb"^Date: .*$", re.M)
MESSAGE_ID = re.compile(rb"^Message-Id: <[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+@", re.M)


def normalise(stream: bytes) -> bytes:
    return MESSAGE_ID.sub(b"Message-Id: <ID@", DATE.sub(b"Date: DATE", stream))


@dataclass
class Outcome:
    status: int
    streams: list[bytes]
    stdout: bytes
    stderr: str
    counts: dict[str, int]

    @property
    def fatal(self) -> str | None:
        """The reason of the fatal error, without the program name."""
        for line in self.stderr.splitlines():
            if ": fatal: " in line:
                return line.split(": fatal: ", 1)[1]
        return None

    @property
    def warnings(self) -> list[str]:
        return [
            ln.split(": warning: ", 1)[1] for ln in self.stderr.splitlines() if ": warning: " in ln
        ]


def run(
    program: list[str],
    args: list[str],
    tmp: Path,
    sink_options: tuple[str, ...] = (),
    operand: str | None = None,
    unix: bool = False,
    ipv6: bool = False,
) -> Outcome:
    record = tmp / "record"
    sock = str(tmp / "sink.sock") if unix else None
    with our_sink(*sink_options, record=record, unix_path=sock, ipv6=ipv6) as sink:
        target = operand if operand is not None else sink.address
        proc = subprocess.run([*program, *args, target], capture_output=True, timeout=120)
    streams = sorted(normalise(f.read_bytes()) for f in sorted(record.iterdir()))
    return Outcome(proc.returncode, streams, proc.stdout, proc.stderr.decode(), sink.counts)


def both(
    tmp_path: Path,
    args: list[str],
    sink_options: tuple[str, ...] = (),
    unix: bool = False,
    ipv6: bool = False,
) -> tuple[Outcome, Outcome]:
    require_binary(SMTP_SOURCE)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    reference = run([SMTP_SOURCE], args, tmp_path / "a", sink_options, unix=unix, ipv6=ipv6)
    ours = run(LOCUST_SMTP, args, tmp_path / "b", sink_options, unix=unix, ipv6=ipv6)
    return reference, ours


def assert_same(reference: Outcome, ours: Outcome) -> None:
    assert len(ours.streams) == len(reference.streams), "connection count differs"
    for theirs, mine in zip(reference.streams, ours.streams, strict=True):
        assert mine == theirs
    assert ours.status == reference.status
    assert ours.fatal == reference.fatal


@pytest.fixture
def message_file(tmp_path: Path) -> str:
    path = tmp_path / "message.txt"
    path.write_bytes(b"Subject: from a file\r\nX-Bare: lf\n\n.leading dot\n..two\nno final newline")
    return str(path)


NORMAL = [
    [],
    ["-m", "5"],
    ["-d", "-m", "5"],
    ["-s", "3", "-m", "7"],
    ["-s", "3", "-d", "-m", "7"],
    ["-s", "5", "-m", "2"],
    ["-r", "3"],
    ["-N", "-r", "2", "-m", "2"],
    ["-N", "-m", "3", "-d"],
    ["-f", "sender@example.com", "-t", "rcpt@example.net"],
    ["-f", "", "-t", ""],
    ["-f", "<a@b>", "-t", "<x@y>", "-r", "2"],
    ["-S", "hello there"],
    ["-S", ""],
    ["-o"],
    ["-o", "-S", "ignored", "-d", "-m", "2"],
    ["-l", "1"],
    ["-l", "80"],
    ["-l", "161"],
    ["-l", "10000", "-m", "2", "-d"],
    ["-M", "client.example"],
    ["-M", "[192.0.2.1]"],
    ["-c", "-m", "3"],
    ["-v", "-m", "2"],
    ["-T", "65536", "-m", "2"],
    ["-4", "-m", "2"],
    ["-C", "3", "-m", "2"],
    ["-w", "1", "-m", "1"],
    ["-R", "1", "-m", "1"],
    ["-m", "3", "-m", "2", "-f", "x@y", "-f", "z@w"],
]


@pytest.mark.parametrize("args", NORMAL, ids=lambda a: " ".join(a) or "defaults")
def test_normal_paths(tmp_path: Path, args: list[str]) -> None:
    reference, ours = both(tmp_path, args)
    assert reference.status == 0
    assert_same(reference, ours)
    assert ours.counts["messages"] == reference.counts["messages"]
    if "-c" in args:
        assert ours.stdout == reference.stdout == b"1\r2\r3\r\n"
    else:
        assert ours.stdout == b""


def test_verbose_dialogue_lines(tmp_path: Path) -> None:
    reference, ours = both(tmp_path, ["-v", "-r", "2"])

    def dialogue(stderr: str) -> list[str]:
        lines = [ln.split(": ", 1)[1] for ln in stderr.splitlines() if ": " in ln]
        commands = ("HELO", "MAIL", "RCPT", "DATA", ".", "QUIT", "<<<")
        return [ln for ln in lines if ln.split(" ")[0] in commands]

    assert dialogue(ours.stderr) == dialogue(reference.stderr)
    assert dialogue(ours.stderr)[:2] == [
        "<<< 220 locust-smtp-sink ESMTP locust-smtp-sink",
        f"HELO {local_hostname()}",
    ]


def test_message_file(tmp_path: Path, message_file: str) -> None:
    reference, ours = both(tmp_path, ["-F", message_file, "-S", "ignored", "-m", "2"])
    assert_same(reference, ours)
    assert b"\r\n..leading dot\r\n...two\r\nno final newline\r\n\r\n.\r\n" in ours.streams[0]


def test_empty_message_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    reference, ours = both(tmp_path, ["-F", str(empty)])
    assert_same(reference, ours)


def test_lmtp(tmp_path: Path) -> None:
    reference, ours = both(tmp_path, ["-L", "-r", "3", "-m", "2", "-d"], ("--lmtp",))
    assert_same(reference, ours)
    assert ours.streams[0].startswith(b"LHLO ")


@pytest.mark.parametrize("family", [[], ["-6"]], ids=["any", "-6"])
def test_ipv6_literal(tmp_path: Path, family: list[str]) -> None:
    reference, ours = both(tmp_path, [*family, "-s", "2", "-m", "3"], ipv6=True)
    assert reference.status == 0
    assert ours.counts["messages"] == 3
    assert_same(reference, ours)


def test_unix_socket(tmp_path: Path) -> None:
    reference, ours = both(tmp_path, ["-m", "3", "-d"], unix=True)
    assert reference.status == 0
    assert_same(reference, ours)


REJECTIONS = [
    ("-r", "mail"),
    ("-f", "mail"),
    ("-f", "rcpt"),
    ("-r", "data"),
    ("-f", "."),
    ("-f", "helo"),
    ("-f", "connect"),
    ("-f", "rset"),
    ("-Q", "mail"),
    ("-Q", "rcpt"),
    ("-Q", "data"),
    ("-Q", "helo"),
    ("-Q", "."),
]


@pytest.mark.parametrize(("flag", "command"), REJECTIONS, ids=lambda x: x)
@pytest.mark.parametrize("keep", [False, True], ids=["new-connection", "-d"])
def test_A_continues_past_rejections(tmp_path: Path, flag: str, command: str, keep: bool) -> None:
    args = ["-A", "-m", "3", "-r", "2"] + (["-d"] if keep else [])
    sink = (flag, command)
    if command == "rset":
        sink = ("-f", "rset,mail")
    reference, ours = both(tmp_path, args, sink)
    assert reference.status == 0
    assert_same(reference, ours)
    assert ours.warnings == reference.warnings


@pytest.mark.parametrize(
    "sink", [("-f", ".", "--fault-every", "2"), ("-f", "data", "--fault-every", "2")], ids=str
)
def test_counter_under_A_counts_written_messages(tmp_path: Path, sink: tuple[str, ...]) -> None:
    """-c counts a message once its "." is written, rejected or not; never after a refused
    DATA (reference §8)."""
    reference, ours = both(tmp_path, ["-c", "-A", "-d", "-m", "6"], sink)
    assert reference.status == 0
    assert_same(reference, ours)
    assert ours.stdout == reference.stdout
    assert ours.stdout == (b"1\r2\r3\r4\r5\r6\r\n" if "." in sink else b"1\r2\r3\r\n")


def test_counter_after_a_fatal_has_no_final_newline(tmp_path: Path) -> None:
    reference, ours = both(tmp_path, ["-c", "-m", "5"], ("-f", ".", "--fault-every", "3"))
    assert reference.status == 1
    assert_same(reference, ours)
    assert ours.stdout == reference.stdout == b"1\r2\r3\r"


@pytest.mark.parametrize(
    ("flag", "command"),
    [
        ("-f", "mail"),
        ("-r", "rcpt"),
        ("-f", "data"),
        ("-r", "."),
        ("-f", "helo"),
        ("-f", "connect"),
        ("-Q", "rcpt"),
    ],
    ids=lambda x: x,
)
def test_rejection_without_A_is_fatal(tmp_path: Path, flag: str, command: str) -> None:
    reference, ours = both(tmp_path, ["-m", "3"], (flag, command))
    assert reference.status == 1
    assert_same(reference, ours)
    assert ours.fatal is not None and "rejected" in ours.fatal


@pytest.mark.parametrize("command", ["mail", "rcpt", "data", "."])
def test_hang_up_is_fatal_even_with_A(tmp_path: Path, command: str) -> None:
    reference, ours = both(tmp_path, ["-A", "-m", "2"], ("-q", command))
    assert reference.status == 1
    assert_same(reference, ours)
    assert ours.fatal is not None and ours.fatal.startswith("lost connection while")


def test_connect_refused_with_retries(tmp_path: Path) -> None:
    from servers import free_port

    require_binary(SMTP_SOURCE)
    operand = f"127.0.0.1:{free_port()}"
    results = []
    for program in ([SMTP_SOURCE], LOCUST_SMTP):
        proc = subprocess.run([*program, "-C", "3", operand], capture_output=True, timeout=60)
        lines = [ln.split(": ", 1)[1] for ln in proc.stderr.decode().splitlines() if ": " in ln]
        results.append(
            (proc.returncode, [ln for ln in lines if ln.startswith(("warning", "fatal"))])
        )
    assert results[0] == results[1]
    assert results[0] == (
        1,
        ["warning: connect: Connection refused"] * 2 + ["fatal: connect: Connection refused"],
    )


BAD_ARGUMENTS = [
    ["-m", "0", "h"],
    ["-m", "4294967296", "h"],  # C int: wraps to 0
    ["-T", "2147483648", "h"],  # wraps negative
    ["-m", "x", "h"],
    ["-m", "-1", "h"],
    ["-s", "0", "h"],
    ["-r", "0", "h"],
    ["-l", "0", "h"],
    ["-C", "0", "h"],
    ["-T", "0", "h"],
    ["-w", "0", "h"],
    ["-R", "0", "h"],
    ["-l", "10", "-F", "/etc/hostname", "h"],
    ["-F", "/etc/hostname", "-l", "10", "h"],
    ["-w", "1", "-R", "1", "h"],
    ["-R", "1", "-w", "1", "h"],
    ["-x", "h"],
    ["-m"],
    [],
    ["h", "h2"],
    ["h", "-m", "2"],
    ["-M", "a..b", "h"],
    ["-M", "[1.2.3]", "h"],
    ["-M", "-bad", "h"],
    ["-M", "[1.2.3.256]", "h"],
    ["-M", "[::1]", "h"],
    ["-M", "[1..2.3]", "h"],
    ["-M", "a\r\nb", "h"],
    ["-M", "caf\u00e9", "h"],
    ["-F", "/nonexistent/file", "h"],
    ["::1"],
    [":25"],
    ["[::1"],
    ["[::1]x"],
    ["[ipv6:1.2.3.4]:25"],
    ["127.0.0.1:25x"],
    ["inet:bad!host:25"],
    ["unix:/" + "x" * 120],
    ["no-such-host.invalid:25"],
    ["-4", "[::1]:25"],
    ["127.0.0.1:nosuchservice"],
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=lambda a: " ".join(a)[:40] or "none")
def test_bad_arguments(args: list[str]) -> None:
    require_binary(SMTP_SOURCE)
    outputs = []
    for program, name in (([SMTP_SOURCE], "smtp-source"), (LOCUST_SMTP, "locust-smtp")):
        proc = subprocess.run([*program, *args], capture_output=True, timeout=30)
        stderr = proc.stderr.decode().replace(SMTP_SOURCE, "smtp-source")
        outputs.append((proc.returncode, stderr.replace(name, "PROG"), proc.stdout))
    (ref_code, ref_err, _), (code, err, stdout) = outputs
    assert (code, stdout) == (ref_code, b"") and code == 1
    assert err == ref_err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "sink_options"),
    [
        (["-A", "-m", "2"], ("-Q", "connect")),
        (["-m", "2"], ("-q", "quit")),
        (["-A", "-L", "-r", "2", "-m", "2", "-d"], ("--lmtp", "-f", ".")),
        (["-A", "-L", "-r", "2", "-m", "2"], ("--lmtp", "-Q", ".")),
        (["-A", "-m", "4", "-d"], ("-f", "mail", "--fault-every", "2")),
        (["-A", "-o", "-m", "2"], ("-f", "rcpt")),
    ],
    ids=lambda x: " ".join(x),
)
def test_more_error_paths(tmp_path: Path, args: list[str], sink_options: tuple[str, ...]) -> None:
    reference, ours = both(tmp_path, args, sink_options)
    assert_same(reference, ours)
    assert ours.warnings == reference.warnings
