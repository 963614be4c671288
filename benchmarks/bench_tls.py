#!/usr/bin/env python3
"""What TLS costs a load: plain, STARTTLS and SMTPS, with and without session resumption.

    python benchmarks/bench_tls.py [--runs 3] [--messages 4000] [--postfix]

``locust-smtp -s 20 -m N`` (one connection per message, the case where the handshake
counts most) against the bundled sink (``--starttls`` and ``--smtps`` listeners with
its self-signed certificate), and with ``--postfix`` also against a private real
Postfix (tests/postfix_peer.py: needs root, postfix and dovecot-core). Prints, medians
of the runs: messages/s over the whole command, and the ``TLS handshake`` stage's p50
and p99 from the summary.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

CASES = (
    ("plain", "plain", []),
    ("STARTTLS, full handshakes", "starttls", ["--starttls", "--no-tls-resume"]),
    ("STARTTLS, resumed", "starttls", ["--starttls"]),
    ("SMTPS, full handshakes", "smtps", ["--smtps", "--no-tls-resume"]),
    ("SMTPS, resumed", "smtps", ["--smtps"]),
)
ROW = re.compile(r"^TLS handshake\s+\d+\s+\d+\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+([\d.]+)", re.M)


def run(options: list[str], address: str, messages: int) -> tuple[float, float, float]:
    command = [sys.executable, "-m", "locust_smtp", *options, "-s", "20", "-m", str(messages)]
    command.append(address)  # the operand last: options end at it (POSIX getopt)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit {proc.returncode}\n{proc.stderr}")
    match = ROW.search(proc.stderr)
    p50, p99 = (float(match.group(1)), float(match.group(2))) if match else (0.0, 0.0)
    return messages / wall, p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--postfix", action="store_true", help="also against a real Postfix")
    args = parser.parse_args()
    from servers import our_sink

    targets: list[tuple[str, dict[str, str], list[str]]] = []
    with ExitStack() as stack:
        plain = stack.enter_context(our_sink("--starttls"))
        smtps = stack.enter_context(our_sink("--smtps"))
        sink = {"plain": plain.address, "starttls": plain.address, "smtps": smtps.address}
        targets.append(("bundled sink", sink, ["--tls-no-verify"]))
        if args.postfix:
            from postfix_peer import available, postfix_peer

            missing = available()
            if missing:
                raise SystemExit(f"--postfix: {missing}")
            peer = stack.enter_context(postfix_peer())
            addresses = {"plain": peer.smtp, "starttls": peer.smtp, "smtps": peer.smtps}
            trust = ["--tls-ca", str(peer.cert), "--tls-server-name", "localhost"]
            targets.append(("Postfix", addresses, trust))
        print(f"runs: {args.runs}; {args.messages} messages, -s 20, a connection each; medians")
        print(f"{'server':14} {'case':28} {'msg/s':>8} {'TLS p50 ms':>11} {'TLS p99 ms':>11}")
        for server, addresses, extra in targets:
            for label, kind, options in CASES:
                tls_options = [*options, *(extra if kind != "plain" else [])]
                results = [
                    run(tls_options, addresses[kind], args.messages) for _ in range(args.runs)
                ]
                rate = statistics.median(r[0] for r in results)
                p50 = statistics.median(r[1] for r in results)
                p99 = statistics.median(r[2] for r in results)
                tls = f"{p50:11.3f} {p99:11.3f}" if kind != "plain" else f"{'-':>11} {'-':>11}"
                print(f"{server:14} {label:28} {rate:8.0f} {tls}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
