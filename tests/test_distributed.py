"""Exact message counts across Locust processes and workers, real processes on loopback."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
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
