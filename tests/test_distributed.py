"""Exact message counts across Locust processes and workers, real processes on loopback."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import LOCUST_SMTP, free_port, our_sink

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "smtp_basic.py")
POOL = re.compile(r"message pool: (\d+) messages, (\d+) claimed, (\d+) attempted, (\d+) lost")


def test_processes_deliver_exactly_m() -> None:
    with our_sink() as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-s", "6", "-m", "999", sink.address, "--", "--processes", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert sink.counts["messages"] == 999
    assert "999 messages" in proc.stderr


def test_processes_share_one_c_counter() -> None:
    """-c counts the whole run, as smtp-source's one counter, not one per process."""
    with our_sink() as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-c", "-s", "6", "-m", "300", sink.address, "--", "--processes", "2"],
            capture_output=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert sink.counts["messages"] == 300
    assert proc.stdout == b"".join(b"%d\r" % n for n in range(1, 301)) + b"\n"


def test_processes_number_recipients_uniquely(tmp_path: Path) -> None:
    """-N across processes: no shared counter, but every recipient number is used once."""
    args = ["-N", "-r", "2", "-s", "4", "-m", "50"]
    with our_sink(record=tmp_path) as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, *args, sink.address, "--", "--processes", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    rcpts = [
        line
        for f in tmp_path.iterdir()
        for line in f.read_bytes().split(b"\r\n")
        if line.startswith(b"RCPT TO:<")
    ]
    numbers = sorted(int(re.match(rb"RCPT TO:<(\d+)", r).group(1)) for r in rcpts)  # type: ignore[union-attr]
    assert numbers == list(range(1, 101))


def start_workers(count: int, port: int) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                LOCUSTFILE,
                "--worker",
                "--master-port",
                str(port),
                "--loglevel",
                "WARNING",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def run_master(
    address: str, users: int, workers: int, messages: int, kill_after: float | None = None
) -> tuple[int, str]:
    port = free_port()
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            LOCUSTFILE,
            "--master",
            "--headless",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "-u",
            str(users),
            "-r",
            str(users),
            "--host",
            address,
            "--smtp-messages",
            str(messages),
            "--smtp-reuse",
            "--only-summary",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs = start_workers(workers, port)
    try:
        if kill_after is not None:
            time.sleep(kill_after)  # let mail flow, then a worker dies mid-run
            procs[0].send_signal(signal.SIGKILL)
        _out, err = master.communicate(timeout=180)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait(30)
    return master.returncode, err


@pytest.mark.parametrize(("users", "workers"), [(6, 2), (1, 3)])
def test_master_and_separate_workers_deliver_exactly_m(users: int, workers: int) -> None:
    with our_sink() as sink:
        code, err = run_master(sink.address, users, workers, 999)
    assert code == 0, err
    assert sink.counts["messages"] == 999
    # --smtp-reuse was given to the master only: workers got it, each user kept one connection
    assert sink.counts["connections"] == users
    total, claimed, attempted, lost = map(int, POOL.search(err).groups())  # type: ignore[union-attr]
    assert (total, claimed, attempted, lost) == (999, 999, 999, 0)


def test_a_worker_killed_mid_run_leaves_exact_accounting() -> None:
    # each reply waits 5 ms so that the run is still going when the worker dies
    with our_sink("--delay", "0.005") as sink:
        code, err = run_master(sink.address, 4, 2, 600, kill_after=3.0)
    assert code == 1, "lost messages are failures, and Locust exits 1 on failures"
    match = POOL.search(err)
    assert match is not None, err
    total, claimed, attempted, lost = map(int, match.groups())
    assert total == claimed == 600
    assert attempted + lost == 600
    assert lost >= 1, "the killed worker held messages"
    assert attempted <= sink.counts["messages"] <= 600
    assert "WorkerLost" in err


def test_locust_smtp_master_with_a_locust_smtp_worker() -> None:
    """The smtp-source command line on both sides (docs/distributed.md): exact count, one
    -c counter on the master, nothing on the worker's stdout."""
    port = free_port()
    with our_sink() as sink:
        args = ["-c", "-d", "-s", "4", "-m", "200", sink.address, "--"]
        on_master = ["--master", "--master-bind-port", str(port), "--expect-workers", "1"]
        worker = subprocess.Popen(
            [*LOCUST_SMTP, *args, "--worker", "--master-port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            master = subprocess.run(
                [*LOCUST_SMTP, *args, *on_master],
                capture_output=True,
                timeout=120,
            )
            worker_out, _ = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert master.returncode == 0, master.stderr
    assert sink.counts["messages"] == 200
    assert sink.counts["connections"] == 4
    assert master.stdout == b"".join(b"%d\r" % n for n in range(1, 201)) + b"\n"
    assert worker_out == b""
    assert b"200 messages in" in master.stderr


def _run_with_a_worker_fault(sink_address: str, fault: Callable[[int], None]) -> tuple[int, str]:
    """``locust-smtp -c -s 4 -d -m 200 -- --processes 2`` (every reply 50 ms late, so about
    5 s of mail): once 20 messages are delivered (the -c counter says so), ``fault(pid)``
    of one worker process; returns the exit status and stderr."""
    proc = subprocess.Popen(
        [*LOCUST_SMTP, "-c", "-s", "4", "-d", "-m", "200", sink_address, "--", "--processes", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = b""
        while b"20\r" not in seen:  # ends: the counter reaches 200, or the pipe closes
            # (the pipe may be non-blocking: gevent in the child sets its stdout so)
            readable, _, _ = select.select([proc.stdout], [], [], 60)
            assert readable, "no -c counter within 60 s"
            try:
                chunk = os.read(proc.stdout.fileno(), 4096)
            except BlockingIOError:
                continue
            assert chunk, "the run ended before 20 messages"
            seen += chunk
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 2, children  # the two forked workers
        fault(int(children[0]))
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode()


def test_a_stalled_worker_comes_back_and_reports_its_own_messages() -> None:
    """A worker paused long enough for Locust to mark it missing (about 3 s without a
    heartbeat) but back within the grace: its messages are its own, counted once."""

    def stall(pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(6)  # the fault itself: 6 s without a heartbeat
        finally:
            os.kill(pid, signal.SIGCONT)

    with our_sink("--delay", "0.05") as sink:
        code, err = _run_with_a_worker_fault(sink.address, stall)
    assert code == 0, err
    assert "200 messages in" in err and "0 failed" in err, err
    assert sink.counts["messages"] == 200


def test_a_killed_worker_fails_the_command_with_every_message_counted() -> None:
    """locust-smtp: the messages a dead worker held, and those whose results it took with
    it, are failed (once each); the summary counts exactly -m; exit status 1."""
    with our_sink("--delay", "0.05") as sink:
        code, err = _run_with_a_worker_fault(sink.address, lambda pid: os.kill(pid, signal.SIGKILL))
    assert code == 1, err
    found = re.search(r"fatal: the results of (\d+) message\(s\) were lost with a worker", err)
    assert found is not None, err
    failed = int(found.group(1))
    summary = re.search(r"(\d+) messages in .*: (\d+) accepted, 0 rejected, (\d+) failed", err)
    assert summary is not None, err
    assert (int(summary.group(1)), int(summary.group(3))) == (200, failed), err
    assert 200 - failed <= sink.counts["messages"] <= 200


def test_two_runs_with_processes_at_once_keep_to_themselves() -> None:
    """Each `-- --processes` run has its own master port: a second run at the same time
    neither fails to bind Locust's 5557 nor lends its workers to the first's master."""
    with our_sink("--delay", "0.01") as sink:
        args = ["-s", "2", "-d", sink.address, "--", "--processes", "2"]
        first = subprocess.Popen(
            [*LOCUST_SMTP, "-m", "300", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        second = subprocess.run(
            [*LOCUST_SMTP, "-m", "40", *args], capture_output=True, text=True, timeout=120
        )
        _out, first_err = first.communicate(timeout=120)
    assert second.returncode == 0, second.stderr
    assert first.returncode == 0, first_err
    assert "40 messages in" in second.stderr and "300 messages in" in first_err
    assert sink.counts["messages"] == 340
