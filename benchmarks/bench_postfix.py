#!/usr/bin/env python3
"""locust-smtp with PIPELINING and BDAT against smtp-source, both on a private real Postfix.

    python benchmarks/bench_postfix.py [--runs 3] [--messages 10000]
        [--queue-in-memory] [--in-flow-delay 0]

Starts the private Postfix of tests/postfix_peer.py (root, Debian's postfix and
dovecot-core; it discards the mail after queueing it), then runs, --runs times each,
interleaved:

  (a)  smtp-source -s 20 -d                       the reference (HELO, no pipelining)
  (b)  locust-smtp -s 20 -d                        the same dialogue
  (p)  locust-smtp -s 20 -d --pipelining           EHLO, MAIL+RCPT+DATA in one write
  (pb) locust-smtp -s 20 -d --pipelining --bdat    EHLO, MAIL+RCPT+BDAT LAST+content in one
  (c)  smtp-source -s 20                           a connection per message
  (cp) locust-smtp -s 20 --pipelining --bdat
  (f)  the floor: bench_floor.py's bare greenlet loop (20 greenlets, EHLO, the
       content and the next MAIL+RCPT+DATA in one write, each read's time kept,
       no reply parsing); what any gevent generator could reach here

each started once Postfix's queue is empty again, and prints medians: messages/s over
the whole command, the generator's CPU seconds per 1,000 messages (user+sys, wait4),
the ratio to smtp-source in the same run, and the whole machine's busy CPU seconds
per 1,000 messages (/proc/stat: Postfix, the kernel and the generator together).
Postfix, not the generator, sets the pace here: what pipelining and BDAT save is
round trips to it. Two things besides the generator move the figures
(docs/performance.md): the machine's disk, which Postfix writes each message to
(``--queue-in-memory`` puts its queue under /dev/shm), and Postfix's inflow control,
which pauses a session up to ``in_flow_delay`` (1 s) when messages arrive faster
than they are delivered (``--in-flow-delay 0`` turns it off).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def machine_busy() -> int:
    """Jiffies the whole machine spent busy so far (/proc/stat's first line: user, nice,
    system, irq and softirq; not idle, iowait or steal, and not guest and guest_nice,
    which user and nice already include)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return user + nice + system + irq + softirq


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, the command's CPU seconds, the machine's busy CPU seconds."""
    busy = machine_busy()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    machine = (machine_busy() - busy) / os.sysconf("SC_CLK_TCK")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} exited {code}: {stderr[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, machine


QUEUES = ("maildrop", "incoming", "active", "deferred")


def wait_for_empty_queue(spool: Path, timeout: float = 300.0) -> None:
    """Wait until Postfix has delivered (discarded) everything queued, so that no case
    pays for the backlog the one before it left (the case after the fastest one did)."""
    deadline = time.monotonic() + timeout
    while any(files for queue in QUEUES for _dir, _subdirs, files in os.walk(spool / queue)):
        if time.monotonic() > deadline:
            raise SystemExit(f"Postfix's queue in {spool} did not drain in {timeout:.0f} s")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument(
        "--queue-in-memory",
        action="store_true",
        help="make Postfix's directory, queue included, under /dev/shm (no disk writes)",
    )
    parser.add_argument(
        "--in-flow-delay",
        metavar="TIME",
        help="Postfix's in_flow_delay (default 1s; 0 turns its inflow control off)",
    )
    args = parser.parse_args()
    from bench_floor import LOOP  # type: ignore[import-not-found]
    from postfix_peer import available, postfix_peer

    missing = available()
    if missing:
        raise SystemExit(f"private Postfix: {missing}")
    import compileall

    compileall.compile_dir(str(ROOT / "locust_smtp"), quiet=1)
    n = str(args.messages)
    ours = [sys.executable, "-m", "locust_smtp", "--quiet"]
    source = ["/usr/sbin/smtp-source", "-s", "20"]
    results: dict[str, tuple[str, list[float], list[float], list[float]]] = {}
    settings = () if args.in_flow_delay is None else (f"in_flow_delay = {args.in_flow_delay}",)
    parent = "/dev/shm" if args.queue_in_memory else "/tmp"
    with postfix_peer(parent=parent, settings=settings) as peer:
        host = peer.smtp
        cases = [
            ("a", "smtp-source -s 20 -d", [*source, "-d", "-m", n, host]),
            ("b", "locust-smtp -s 20 -d", [*ours, "-s", "20", "-d", "-m", n, host]),
            ("p", "locust-smtp -s 20 -d --pipelining",
             [*ours, "-s", "20", "-d", "--pipelining", "-m", n, host]),
            ("pb", "locust-smtp -s 20 -d --pipelining --bdat",
             [*ours, "-s", "20", "-d", "--pipelining", "--bdat", "-m", n, host]),
            ("c", "smtp-source -s 20", [*source, "-m", n, host]),
            ("cp", "locust-smtp -s 20 --pipelining --bdat",
             [*ours, "-s", "20", "--pipelining", "--bdat", "-m", n, host]),
            ("f", "floor: bare greenlets, pipelined across",
             [sys.executable, "-c", LOOP, n, "20", "2", "1", host.rsplit(":", 1)[1], "2"]),
        ]  # fmt: skip
        for _ in range(args.runs):
            for key, label, cmd in cases:
                wait_for_empty_queue(peer.log.parent.parent / "spool")
                wall, cpu, machine = timed(cmd)
                entry = results.setdefault(key, (label, [], [], []))
                entry[1].append(args.messages / wall)
                entry[2].append(cpu / args.messages * 1000)
                entry[3].append(machine / args.messages * 1000)
    ref = {"b": "a", "p": "a", "pb": "a", "cp": "c", "f": "a"}
    print(
        f"private Postfix (tests/postfix_peer.py); runs: {args.runs}; {args.messages} messages;"
        f" queue in {parent}; {' '.join(settings) or 'in_flow_delay default (1s)'}"
    )
    print(
        f"{'case':5} {'command':42} {'msg/s':>8} {'CPU s/1k':>9} {'ratio':>6} {'machine s/1k':>13}"
    )
    for key, (label, rates, cpus, machines) in results.items():
        rate = statistics.median(rates)
        ratio = ""
        if key in ref:
            ratio = f"{rate / statistics.median(results[ref[key]][1]):6.2f}"
        print(
            f"{key:5} {label:42} {rate:8.0f} {statistics.median(cpus):9.3f} {ratio:>6}"
            f" {statistics.median(machines):13.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
