"""End-to-end delivery through a real relay: locust-smtp sends traced messages to the
private Postfix of tests/postfix_peer.py, which relays every message over LMTP on a UNIX
socket to the bundled sink, which reads each message's trace header on arrival and
reports, per run, what arrived, once or more, and how long after it was sent."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from postfix_peer import Peer, postfix_peer
from postfix_peer import available as postfix_available
from servers import IN_CI, LOCUST_SMTP, SinkHandle, our_sink

RUN, MESSAGES = "e2e-relay-1", 300


@dataclass
class Relay:
    postfix: Peer
    sink: SinkHandle
    report: Path


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    missing = postfix_available()
    if missing is not None:
        if IN_CI:
            pytest.fail(f"private Postfix peer: {missing}; .ci/run must provide it")
        pytest.skip(f"private Postfix peer: {missing}")
    folder = Path(tempfile.mkdtemp(prefix="locust-smtp-e2e-", dir="/tmp"))
    folder.chmod(0o755)  # Postfix's lmtp client (user postfix) reaches the socket
    socket_path, report = folder / "sink.lmtp", folder / "delivery.json"
    arrivals = folder / "arrivals.jsonl"
    try:
        with our_sink("-L", "--delivery-report", str(report), "--report-interval", "0.2",
                      "--delivery-log", str(arrivals), "--expect", f"{RUN}={MESSAGES}",
                      unix_path=str(socket_path)) as sink:  # fmt: skip
            socket_path.chmod(0o666)
            with postfix_peer(relay_lmtp=str(socket_path)) as postfix:
                yield Relay(postfix, sink, report)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_report(relay: Relay, run: str, unique: int, timeout: float = 90) -> dict[str, Any]:
    """The sink's report of ``run`` once ``unique`` of its messages arrived (Postfix
    relays them after accepting them: polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        if relay.report.exists():
            runs = {r["run"]: r for r in json.loads(relay.report.read_text())["runs"]}
            if run in runs and runs[run]["unique"] >= unique:
                return runs[run]
        assert time.monotonic() < deadline, relay.report.read_text()
        time.sleep(0.2)


def test_every_message_arrives_once_through_postfix(relay: Relay) -> None:
    started = time.time()
    proc = subprocess.run(
        [*LOCUST_SMTP, "-s", "10", "-d", "-m", str(MESSAGES), "--trace-delivery",
         "--run-id", RUN, "--pipelining", "--transaction-log", str(relay.report.parent / "log"),
         relay.postfix.smtp],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{MESSAGES} accepted, 0 rejected, 0 failed" in proc.stderr
    run = run_report(relay, RUN, MESSAGES)
    finished = time.time()
    assert run["received"] == run["unique"] == MESSAGES
    assert run["duplicates"] == 0 and run["gaps"] == 0 and run["late"] == 0
    assert run["expected"] == MESSAGES and run["lost"] == 0
    assert run["highest_seq"] == MESSAGES - 1
    latency = run["latency_us"]
    # through smtpd, cleanup, the queue manager and the lmtp client: more than the
    # generator's own reply time, less than the whole test
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < (finished - started) * 1e6
    assert started <= run["first_arrival"] <= run["last_arrival"] <= finished
    # Postfix says where each went: relayed over LMTP to the sink's socket, with the queue
    # ids the generator's transaction log recorded
    maillog = relay.postfix.log.read_text()
    delivered = re.findall(r"postfix/lmtp\[\d+\]: (\w+): to=<[^>]*>, relay=[^,]*sink\.lmtp[^,]*,"
                           r".*status=sent", maillog)  # fmt: skip
    logged = [json.loads(line)["queue_id"] for line in (relay.report.parent / "log").open()]
    assert len(logged) == MESSAGES and None not in logged
    assert set(logged) <= set(delivered)
    # the sink's log of arrivals: each number once, the report's maximum among them
    arrivals = [json.loads(line) for line in (relay.report.parent / "arrivals.jsonl").open()]
    ours = [a for a in arrivals if a["run"] == RUN]
    assert sorted(a["seq"] for a in ours) == list(range(MESSAGES))
    assert max(a["us"] for a in ours) == latency["max"]
    assert all(a["arrived"] - a["sent"] == pytest.approx(a["us"] / 1e6, abs=2e-6) for a in ours)


def test_runs_are_told_apart(relay: Relay) -> None:
    """Another run through the same relay is reported on its own; without an expected
    count the sink cannot say what was lost, and says so (null)."""
    proc = subprocess.run(
        [*LOCUST_SMTP, "-s", "2", "-m", "5", "--trace-delivery", "--run-id", "e2e-short",
         relay.postfix.smtp],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = run_report(relay, "e2e-short", 5)
    assert run["unique"] == 5 and run["highest_seq"] == 4
    assert run["expected"] is None and run["lost"] is None
