#!/usr/bin/env python3
"""Memory per session: N sessions open at once in one locust-smtp process.

    python benchmarks/bench_sessions.py [--sessions 10000 [2000 ...]] [--runs 1]
                                        [--delay 20] [--tracemalloc]

Each case starts a fresh locust-smtp-sink on a free 127.0.0.1 port with
``--delay`` (it waits that long before every reply, the greeting included), so
that every session is connected and waiting at the same time, then runs

    locust-smtp -s N -m N --timeout 120 127.0.0.1:PORT      (one message per session)

as ``python -m locust_smtp`` (the PID is the Python process itself) and samples
its VmRSS and its open sockets every 0.2 s. The baseline is the same command
with ``-s 1 -m 1`` against the same kind of sink: Locust's own memory. Printed
per case: sessions open at once (most sockets seen), peak RSS, baseline peak RSS,
(peak - baseline) / sessions, the kernel's maximum RSS (wait4), the slowest
connect (a full listen queue shows as SYN retries at 1 s, 3 s ...), messages
counted by the sink (its ``connections C messages M`` line at SIGTERM) and by
locust-smtp's summary, the exit status and the wall time. The goal is at most
30 KB per session.

The sink listens with backlog 1024; sessions beyond it wait in the kernel (SYN
retries), which only delays their connect. Both processes need a descriptor per
session: this script raises its RLIMIT_NOFILE soft limit to the hard one, and the
children inherit it.

``--tracemalloc`` also runs the largest case once under ``python -X tracemalloc``
and prints what the memory allocated between Locust's start and the moment all
sessions are open goes to, per session, by source line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bundled_sink import free_port, start_sink, stop_sink, vm_rss_kb

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 0.2
TIMEOUT = 120
SUMMARY = re.compile(
    r"^locust-smtp: (\d+) messages in ([\d.]+) s \((\d+)/s\): (\d+) accepted, "
    r"(\d+) rejected, (\d+) failed"
)
CONNECT_ROW = re.compile(r"^connect\s+\d+\s+\d+\s+[\d.]+\s+\S+\s+\S+\s+\S+\s+([\d.]+)$")

# Run as `python -X tracemalloc=1 -c TRACE_CODE <locust-smtp arguments>`: a snapshot
# before Locust starts, another once every session has its socket open, the difference
# by source line written to $BENCH_TRACE_OUT.
TRACE_CODE = r"""
import os, sys, time, tracemalloc
import gevent
import locust, locust.main
from locust_smtp import cli

sessions = int(sys.argv[sys.argv.index("-s") + 1])
out = os.environ["BENCH_TRACE_OUT"]

def sockets():
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink("/proc/self/fd/" + fd).startswith("socket:")
        except OSError:
            pass
    return n

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def watch(base, base_rss):
    while sockets() < sessions:
        gevent.sleep(0.2)
    gevent.sleep(1.0)
    rss = rss_kb()  # before the snapshot, which is large
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    stats = snap.compare_to(base, "lineno")
    with open(out, "w") as f:
        total = sum(s.size_diff for s in stats)
        count = sum(s.count_diff for s in stats)
        f.write(f"total {total} {count} {(rss - base_rss) * 1024}\n")
        for s in stats[:25]:
            frame = s.traceback[0]
            f.write(f"{s.size_diff} {s.count_diff} {frame.filename}:{frame.lineno}\n")

base = tracemalloc.take_snapshot()
gevent.spawn(watch, base, rss_kb())
sys.exit(cli.main(sys.argv[1:]))
"""


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_sockets(pid: int) -> int:
    base = f"/proc/{pid}/fd"
    count = 0
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        with contextlib.suppress(OSError):
            count += os.readlink(f"{base}/{name}").startswith("socket:")
    return count


@dataclass
class Run:
    sessions: int
    peak_rss_kb: int = 0
    most_sockets: int = 0
    maxrss_kb: int = 0
    status: int = 0
    wall: float = 0.0
    connect_max_ms: float = float("nan")
    summary: tuple[int, ...] | None = None
    sink_connections: int = -1
    sink_messages: int = -1
    problems: list[str] = field(default_factory=list)


def client_command(sessions: int, port: int) -> list[str]:
    return [
        "-s",
        str(sessions),
        "-m",
        str(sessions),
        "--timeout",
        str(TIMEOUT),
        f"127.0.0.1:{port}",
    ]


def parse_stderr(run: Run, text: str) -> None:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if SUMMARY.match(line)), None)
    if start is None:
        run.problems.append("no summary line")
        run.problems.extend(lines[-20:])
        return
    run.summary = tuple(int(float(g)) for g in SUMMARY.findall(lines[start])[0])
    run.problems.extend(lines[:start])  # anything before the summary is a diagnostic
    for line in lines[start:]:
        row = CONNECT_ROW.match(line)
        if row:
            run.connect_max_ms = float(row.group(1))


def measure(sessions: int, delay: float) -> Run:
    """One locust-smtp run of ``sessions`` sessions against a fresh sink, sampled."""
    run = Run(sessions)
    port = free_port()
    sink = start_sink(port, "--delay", str(delay))
    cmd = [sys.executable, "-m", "locust_smtp", *client_command(sessions, port)]
    try:
        with tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                rss = vm_rss_kb(proc.pid)
                sockets = open_sockets(proc.pid)
                if rss is not None:
                    run.peak_rss_kb = max(run.peak_rss_kb, rss)
                    run.most_sockets = max(run.most_sockets, sockets)
                time.sleep(INTERVAL)
            run.wall = time.perf_counter() - started
            run.status = os.waitstatus_to_exitcode(status)
            proc.returncode = run.status
            run.maxrss_kb = usage.ru_maxrss
            err.seek(0)
            parse_stderr(run, err.read())
    finally:
        run.sink_connections, run.sink_messages, sink_err = stop_sink(sink)
    if sink_err.strip():
        run.problems.append(f"sink stderr: {sink_err.strip()}")
    if run.sink_connections != sessions:
        run.problems.append(f"the sink counted {run.sink_connections} connections")
    if run.most_sockets < sessions:
        run.problems.append(
            f"at most {run.most_sockets} of {sessions} sessions were seen open at once"
        )
    return run


def trace(sessions: int, delay: float) -> None:
    """The largest case once more, under tracemalloc: where the memory goes."""
    port = free_port()
    sink = start_sink(port, "--delay", str(delay))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace.txt"
        env = {**os.environ, "BENCH_TRACE_OUT": str(out)}
        cmd = [
            sys.executable,
            "-X",
            "tracemalloc=1",
            "-c",
            TRACE_CODE,
            *client_command(sessions, port),
        ]
        result = subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        stop_sink(sink)
        if not out.exists():
            print(f"tracemalloc run gave no snapshot; exit {result.returncode}")
            print(result.stderr[-2000:])
            return
        lines = out.read_text().splitlines()
    _, total, count, rss = lines[0].split()
    print()
    print(
        f"tracemalloc, {sessions} sessions open (exit {result.returncode}): allocated since "
        f"Locust's start {int(total) / 1024 / sessions:.1f} KB/session in "
        f"{int(count) / sessions:.1f} blocks/session; RSS grew "
        f"{int(rss) / 1024 / sessions:.1f} KB/session (that also counts tracemalloc's own "
        "record of every block, and what it does not see: memory from mmap, such as each "
        "greenlet's Python frame stack, and libev's)"
    )
    print(f"{'KB/session':>10} {'blocks/session':>14}  allocated at")
    for line in lines[1:]:
        size, blocks, where = line.split(" ", 2)
        where = where.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
        print(f"{int(size) / 1024 / sessions:10.2f} {int(blocks) / sessions:14.2f}  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--delay",
        type=float,
        default=20.0,
        help="the sink's delay before every reply (a session lasts about 7 of them)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also run the largest case under tracemalloc and print where memory goes",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    limit = raise_file_limit()
    need = max(args.sessions) + 64
    if limit != resource.RLIM_INFINITY and limit < need:
        print(
            f"warning: RLIMIT_NOFILE is {limit}, below the {need} descriptors the sink and "
            "locust-smtp each need: raise the hard limit (ulimit -Hn) first",
            file=sys.stderr,
        )

    results: list[tuple[Run, Run]] = []
    for _ in range(args.runs):
        baseline = measure(1, args.delay)
        for sessions in args.sessions:
            results.append((measure(sessions, args.delay), baseline))

    print(
        f"sink delay {args.delay:g} s per reply; RLIMIT_NOFILE {limit}; runs: {args.runs}; "
        f"machine: {os.cpu_count()} CPUs, shared (figures are noisy)"
    )
    print(
        f"{'sessions':>8} {'open':>6} {'peak MB':>8} {'base MB':>8} {'KB/sess':>8} "
        f"{'maxrss MB':>9} {'conn max ms':>11} {'sink msgs':>9} {'accepted':>8} "
        f"{'exit':>4} {'wall s':>7}"
    )
    for run, base in results:
        per_session = (run.peak_rss_kb - base.peak_rss_kb) / run.sessions
        accepted = run.summary[3] if run.summary else -1
        print(
            f"{run.sessions:8d} {run.most_sockets:6d} {run.peak_rss_kb / 1024:8.1f} "
            f"{base.peak_rss_kb / 1024:8.1f} {per_session:8.1f} {run.maxrss_kb / 1024:9.1f} "
            f"{run.connect_max_ms:11.1f} {run.sink_messages:9d} {accepted:8d} "
            f"{run.status:4d} {run.wall:7.1f}"
        )
    if args.runs > 1:
        for sessions in args.sessions:
            figures = [
                (r.peak_rss_kb - b.peak_rss_kb) / r.sessions
                for r, b in results
                if r.sessions == sessions
            ]
            print(f"{sessions} sessions: median {statistics.median(figures):.1f} KB/session")
    for run, base in results:
        for who, r in (("baseline", base), (f"{run.sessions} sessions", run)):
            for problem in r.problems:
                print(f"{who}: {problem}")
        if base.problems:
            base.problems.clear()  # said once

    if args.tracemalloc:
        trace(max(args.sessions), args.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
