#!/usr/bin/env python3
"""The client alone, without Locust: how fast SmtpClient.send_mail can go.

    python benchmarks/bench_client.py [--messages 50000] [--sessions 20] [--no-reuse]

Starts Postfix's smtp-sink on a free loopback port, runs the sessions in one
gevent loop of this process, and prints messages/s and this process's CPU
seconds per 1,000 messages. Comparing with benchmarks/bench_vs_smtp_source.py
shows what Locust's per-request statistics add.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import gevent
from bench_vs_smtp_source import free_port, start_sink  # type: ignore[import-not-found]

from locust_smtp import SmtpClient, SourceMessage, data_payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--no-reuse", action="store_true")
    args = parser.parse_args()
    port = free_port()
    sink = start_sink("smtp-sink", port)
    left = [args.messages]
    payload = data_payload(SourceMessage("foo@vm", "foo@vm", "vm").template().render("1.2.3"))

    def session() -> None:
        client = SmtpClient(f"127.0.0.1:{port}")
        while left[0] > 0:
            left[0] -= 1
            if not client.connected:
                client.connect()
                client.helo("vm")
            client.send_mail("foo@vm", ["foo@vm"], payload)
            if args.no_reuse:
                client.quit()
        client.quit()

    try:
        started, cpu = time.perf_counter(), os.times()
        gevent.joinall([gevent.spawn(session) for _ in range(args.sessions)], raise_error=True)
        wall, end = time.perf_counter() - started, os.times()
    finally:
        sink.terminate()
        sink.wait()
    used = end.user - cpu.user + end.system - cpu.system
    print(
        f"{args.messages} messages, {args.sessions} sessions, "
        f"{'no reuse' if args.no_reuse else 'reuse'}: {args.messages / wall:.0f} msg/s, "
        f"{used / args.messages * 1000:.3f} CPU s/1k messages"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
