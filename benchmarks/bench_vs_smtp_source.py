#!/usr/bin/env python3
"""locust-smtp against Postfix's smtp-source, driving one smtp-sink in the same run.

    python benchmarks/bench_vs_smtp_source.py [--runs 3] [--sink smtp-sink|locust-smtp-sink]

Cases (each run --runs times, medians printed):

  (a)  smtp-source -s 20 -d -m 50000                        reference, connections kept
  (b)  Locust headless, SmtpUser x20, reuse, 50000 messages
  (b') locust-smtp -s 20 -d -m 50000                         the same through our command
  (d)  locust-smtp -s 20 -d --pipelining -m 50000            EHLO, MAIL+RCPT+DATA in one write
  (d') Locust headless, SmtpUser x20, reuse, EHLO (PIPELINING when offered)
  (c)  smtp-source -s 20 -m 20000                            reference, a connection per message
  (c') Locust headless, SmtpUser x20, no reuse, 20000 messages
  (c") locust-smtp -s 20 -m 20000

The package's bytecode is compiled first, as ``pip install`` does. For each:
messages/s over the whole command (start-up included) and the
generator's CPU seconds (user+sys, from wait4) per 1,000 messages; then the
ratio of locust-smtp's messages/s to smtp-source's in the same run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "benchmarks" / "bench_locustfile.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_sink(kind: str, port: int) -> subprocess.Popen[bytes]:
    if kind == "smtp-sink":
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        cmd = ["/usr/sbin/smtp-sink", *user, f"127.0.0.1:{port}", "1000"]
    else:
        cmd = [sys.executable, "-m", "locust_smtp.sink", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Run ``cmd``; return (wall seconds, CPU seconds of it and its children, exit status)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"warning: {' '.join(cmd)} exited {code}: {stderr[-500:]}", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, code


def cases(port: int, big: int, small: int) -> list[tuple[str, str, int, list[str]]]:
    host = f"127.0.0.1:{port}"
    locust = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        "20",
        "-r",
        "20",
        "--host",
        host,
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    cli = [sys.executable, "-m", "locust_smtp"]
    rows = [
        (
            "a",
            "smtp-source -s 20 -d",
            big,
            ["/usr/sbin/smtp-source", "-s", "20", "-d", "-m", str(big), host],
        ),
        (
            "b",
            "Locust SmtpUser x20, reuse",
            big,
            [*locust, "--smtp-messages", str(big), "--smtp-reuse"],
        ),
    ]
    rows.append(("b'", "locust-smtp -s 20 -d", big, [*cli, "-s", "20", "-d", "-m", str(big), host]))
    rows.append(
        (
            "d",
            "locust-smtp -s 20 -d --pipelining",
            big,
            [*cli, "-s", "20", "-d", "--pipelining", "-m", str(big), host],
        )
    )
    rows.append(
        (
            "d'",
            "Locust SmtpUser x20, reuse, EHLO+PIPELINING",
            big,
            [*locust, "--smtp-messages", str(big), "--smtp-reuse", "--smtp-hello-command", "EHLO"],
        )
    )
    rows += [
        (
            "c",
            "smtp-source -s 20",
            small,
            ["/usr/sbin/smtp-source", "-s", "20", "-m", str(small), host],
        ),
        ("c'", "Locust SmtpUser x20, no reuse", small, [*locust, "--smtp-messages", str(small)]),
    ]
    rows.append(('c"', "locust-smtp -s 20", small, [*cli, "-s", "20", "-m", str(small), host]))
    return rows


def compare_sinks(runs: int, messages: int) -> None:
    """smtp-source -s 20 -d against Postfix's smtp-sink and against locust-smtp-sink."""
    rates: dict[str, list[float]] = {"smtp-sink": [], "locust-smtp-sink": []}
    for _ in range(runs):
        for kind in rates:
            port = free_port()
            sink = start_sink(kind, port)
            try:
                cmd = [
                    "/usr/sbin/smtp-source",
                    "-s",
                    "20",
                    "-d",
                    "-m",
                    str(messages),
                    f"127.0.0.1:{port}",
                ]
                wall, _cpu, _code = timed(cmd)
            finally:
                sink.terminate()
                sink.wait()
            rates[kind].append(messages / wall)
    postfix, ours = (statistics.median(rates[k]) for k in ("smtp-sink", "locust-smtp-sink"))
    print(f"smtp-source -s 20 -d -m {messages}; runs: {runs}")
    print(f"{'sink':18} {'msg/s':>9}")
    print(f"{'smtp-sink':18} {postfix:9.0f}")
    print(f"{'locust-smtp-sink':18} {ours:9.0f}   ({postfix / ours:.2f}x slower)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sink", choices=["smtp-sink", "locust-smtp-sink"], default="smtp-sink")
    parser.add_argument("--messages", type=int, default=50000, help="messages for (a)/(b)")
    parser.add_argument("--session-messages", type=int, default=20000, help="for (c)")
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated case keys to run (default all), e.g. a,b\\'",
    )
    parser.add_argument(
        "--sinks",
        action="store_true",
        help="instead: compare locust-smtp-sink with smtp-sink under smtp-source",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if args.sinks:
        compare_sinks(args.runs, args.messages)
        return 0

    # the package's bytecode, as `pip install` compiles it (an editable install under
    # PYTHONDONTWRITEBYTECODE would otherwise compile every module at every start)
    import compileall

    compileall.compile_dir(str(ROOT / "locust_smtp"), quiet=1)
    port = free_port()
    sink = start_sink(args.sink, port)
    results: dict[str, tuple[str, int, list[float], list[float]]] = {}
    try:
        for _ in range(args.runs):
            for key, label, count, cmd in cases(port, args.messages, args.session_messages):
                if args.cases and key not in args.cases.split(","):
                    continue
                wall, cpu, _code = timed(cmd)
                entry = results.setdefault(key, (label, count, [], []))
                entry[2].append(count / wall)
                entry[3].append(cpu / count * 1000)
    finally:
        sink.terminate()
        sink.wait()

    ref = {"b": "a", "b'": "a", "d": "a", "d'": "a", "c'": "c", 'c"': "c"}
    print(f"sink: {args.sink}; runs: {args.runs}; machine: {os.cpu_count()} CPUs")
    print(f"{'case':5} {'command':34} {'messages':>9} {'msg/s':>9} {'CPU s/1k':>9} {'ratio':>6}")
    for key, (label, count, rates, cpus) in results.items():
        rate = statistics.median(rates)
        ratio = ""
        if key in ref and ref[key] in results:
            ratio = f"{rate / statistics.median(results[ref[key]][2]):.2f}"
        cpu = statistics.median(cpus)
        print(f"{key:5} {label:34} {count:9d} {rate:9.0f} {cpu:9.3f} {ratio:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
