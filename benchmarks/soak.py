#!/usr/bin/env python3
"""Soak: locust-smtp -d at full speed for about --minutes, with exact counts checked.

    python benchmarks/soak.py [--minutes 10] [--sessions 20]

Starts locust-smtp-sink on a free 127.0.0.1 port, measures the rate with

    locust-smtp -s S -d -m 20000 --timeout 10 127.0.0.1:PORT

(20,000 / the summary's T, the seconds from the first message to the last), then
runs the same command with M = rate * 60 * minutes messages against a fresh sink,
sampling locust-smtp's VmRSS every 10 s. Checked afterwards: the sink's final ``messages`` count
(printed at SIGTERM) is M, locust-smtp's summary line
``locust-smtp: N messages in T s (R/s): A accepted, R rejected, F failed`` has
N == A == M, and the exit status is 0. Printed: messages, seconds, msg/s,
accepted, sink count, exit status and the RSS first/max/last (the memory should
stay flat), then every RSS sample and whatever locust-smtp wrote on stderr
before its summary.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bundled_sink import free_port, start_sink, stop_sink, vm_rss_kb

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION = 20000
SAMPLE_EVERY = 10.0
SUMMARY = re.compile(
    r"^locust-smtp: (\d+) messages in ([\d.]+) s \((\d+)/s\): (\d+) accepted, "
    r"(\d+) rejected, (\d+) failed(.*)$"
)


@dataclass
class Result:
    messages: int
    wall: float = 0.0
    status: int = 0
    summary: tuple[int, int, int, int] | None = None
    """(N messages, A accepted, R rejected, F failed) from the summary line."""
    sending: float = 0.0
    """T of the summary line: seconds from the first request to the last."""
    summary_tail: str = ""
    sink_messages: int = -1
    rss_kb: list[int] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)
    """What locust-smtp (and the sink) wrote on stderr besides the summary."""
    stderr: str = ""


def run_once(sessions: int, messages: int, limit: float) -> Result:
    """locust-smtp -s sessions -d -m messages against a fresh sink; killed after ``limit``
    seconds (a hang)."""
    result = Result(messages)
    port = free_port()
    sink = start_sink(port)
    cmd = [
        sys.executable,
        "-m",
        "locust_smtp",
        "-s",
        str(sessions),
        "-d",
        "-m",
        str(messages),
        "--timeout",
        "10",
        f"127.0.0.1:{port}",
    ]
    try:
        with tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
            next_sample = started + SAMPLE_EVERY
            deadline = limit
            while True:
                pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                now = time.perf_counter()
                if now >= next_sample:
                    rss = vm_rss_kb(proc.pid)
                    if rss is not None:
                        result.rss_kb.append(rss)
                    next_sample += SAMPLE_EVERY
                if now - started > limit:
                    # a hang: SIGTERM (locust-smtp then reports), SIGKILL 30 s later
                    kill = signal.SIGTERM if limit == deadline else signal.SIGKILL
                    result.diagnostics.append(
                        f"sent {kill.name} after {now - started:.0f} s (hang?)"
                    )
                    proc.send_signal(kill)
                    limit += 30
                time.sleep(0.1)
            result.wall = time.perf_counter() - started
            result.status = os.waitstatus_to_exitcode(status)
            proc.returncode = result.status
            err.seek(0)
            result.stderr = err.read()
    finally:
        _, result.sink_messages, sink_err = stop_sink(sink)
    if sink_err.strip():
        result.diagnostics.append(f"sink stderr: {sink_err.strip()}")
    lines = result.stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if SUMMARY.match(line)), None)
    if start is None:
        result.diagnostics.append("no summary line; stderr ends with:")
        result.diagnostics.extend(lines[-20:])
        return result
    n, seconds, _r, accepted, rejected, failed, tail = SUMMARY.findall(lines[start])[0]
    result.summary = (int(n), int(accepted), int(rejected), int(failed))
    result.sending = float(seconds)
    result.summary_tail = tail
    result.diagnostics[:0] = lines[:start]  # anything before the summary is a diagnostic
    return result


def checks(result: Result) -> list[str]:
    """What does not match: empty when every count is exact."""
    wrong = []
    m = result.messages
    if result.sink_messages != m:
        wrong.append(f"sink counted {result.sink_messages} messages, not {m}")
    if result.summary is None:
        wrong.append("no summary line")
    else:
        n, accepted, rejected, failed = result.summary
        if not n == accepted == m:
            wrong.append(
                f"summary: {n} messages, {accepted} accepted, {rejected} rejected, "
                f"{failed} failed{result.summary_tail}; expected {m} and {m}"
            )
    if result.status != 0:
        wrong.append(f"exit status {result.status}")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    calibration = run_once(args.sessions, CALIBRATION, limit=600)
    # the sending rate (the summary's T), not the wall time: start-up would weigh too much
    rate = CALIBRATION / (calibration.sending or calibration.wall)
    messages = max(1, round(rate * 60 * args.minutes))
    # a hang: well past the expected time (the machine is shared, rates vary)
    soak = run_once(args.sessions, messages, limit=3 * 60 * args.minutes + 300)

    print(
        f"locust-smtp -s {args.sessions} -d --timeout 10, against locust-smtp-sink; "
        f"machine: {os.cpu_count()} CPUs, shared (figures are noisy); M = "
        f"{rate:.0f}/s (calibration, first to last message) * 60 * {args.minutes:g}"
    )
    print(
        f"{'run':11} {'messages':>9} {'seconds':>8} {'msg/s':>7} {'accepted':>9} "
        f"{'sink count':>10} {'exit':>4} {'RSS first/max/last MB':>22}"
    )
    for name, result in (("calibration", calibration), ("soak", soak)):
        accepted = result.summary[1] if result.summary else -1
        rss = result.rss_kb
        memory = f"{rss[0] / 1024:.1f}/{max(rss) / 1024:.1f}/{rss[-1] / 1024:.1f}" if rss else "-"
        print(
            f"{name:11} {result.messages:9d} {result.wall:8.1f} "
            f"{result.messages / result.wall:7.0f} {accepted:9d} {result.sink_messages:10d} "
            f"{result.status:4d} {memory:>22}"
        )
    print(f"RSS every {SAMPLE_EVERY:g} s (MB): " + " ".join(f"{k / 1024:.1f}" for k in soak.rss_kb))
    for name, result in (("calibration", calibration), ("soak", soak)):
        wrong = checks(result)
        print(f"{name}: " + ("counts exact, exit 0" if not wrong else "; ".join(wrong)))
        for line in result.diagnostics:
            print(f"{name} stderr: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
