#!/usr/bin/env python3
"""The ceiling of any gevent + Locust SMTP generator on this machine.

    python benchmarks/bench_floor.py [--runs 3] [--messages 50000] [--session-messages 20000]

Runs, against one Postfix smtp-sink in the same run:

  smtp-source -s 20 -d / -s 20            the reference
  bare loop, no events                     20 greenlets, raw sockets, libev watchers:
                                           send a command, wait, recv, next command; no
                                           reply parsing, no error handling, no timeouts
  bare loop + Locust events                the same, firing one Locust request event per
                                           stage and one per message, as locust-smtp must

The bare loop does the least work that smtp-source's byte stream allows, so its
rate bounds what locust-smtp can reach: the "+ Locust events" rows are the
ceiling for a generator that reports every stage through Locust's statistics.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys

from bench_vs_smtp_source import free_port, start_sink, timed  # type: ignore[import-not-found]

LOOP = r"""
import _socket, os, socket, sys, time
import gevent
from gevent import getcurrent
from gevent.hub import get_hub

messages, sessions, events, reuse, port = (int(a) for a in sys.argv[1:6])
fire = None
if events:
    from locust import User
    from locust.env import Environment

    env = Environment(user_classes=[User])
    env.create_local_runner()
    fire = env.events.request.fire
body = (b"From: <foo@vm>\r\nTo: <foo@vm>\r\nDate: Wed, 25 Nov 2026 16:00:00 +0000\r\n"
        b"Message-Id: <0001.0002.0003@vm>\r\n\r\n"
        b"La de da de da 1.\r\nLa de da de da 2.\r\n"
        b"La de da de da 3.\r\nLa de da de da 4.\r\n.\r\n")
TRANSACTION = [("MAIL", b"MAIL FROM:<foo@vm>\r\n"), ("RCPT", b"RCPT TO:<foo@vm>\r\n"),
               ("DATA", b"DATA\r\n"), ("end of data", body)]
hub = get_hub()
loop = hub.loop
left = [messages]
perf = time.perf_counter
READY = object()


def session():
    switch = getcurrent().switch
    timer = loop.timer(300)
    sock = watcher = None

    def wait_reply(name, t0, sent):
        watcher.start(switch, READY)
        timer.start(switch, None)
        try:
            hub.switch()
        finally:
            watcher.stop()
            timer.stop()
        sock.recv(65536)
        if fire:
            fire(request_type="SMTP", name=name, response_time=(perf() - t0) * 1000,
                 response_length=sent, response=None, context={}, exception=None,
                 start_time=0.0)

    def connect():
        nonlocal sock, watcher
        t0 = perf()
        sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        watcher = loop.io(sock.fileno(), 1)
        w = loop.io(sock.fileno(), 2)
        w.start(switch, READY)
        try:
            hub.switch()
        finally:
            w.stop()
        if fire:
            fire(request_type="SMTP", name="connect", response_time=(perf() - t0) * 1000,
                 response_length=0, response=None, context={}, exception=None, start_time=0.0)
        wait_reply("banner", perf(), 0)
        t0 = perf()
        sock.send(b"HELO vm\r\n")
        wait_reply("HELO", t0, 9)

    def command(name, data):
        t0 = perf()
        sock.send(data)
        wait_reply(name, t0, len(data))

    connect()
    while left[0] > 0:
        left[0] -= 1
        t0 = perf()
        if sock is None:
            connect()
        for name, data in TRANSACTION:
            command(name, data)
        if fire:
            fire(request_type="SMTP", name="message", response_time=(perf() - t0) * 1000,
                 response_length=0, response=None, context={}, exception=None, start_time=0.0)
        if not reuse:
            command("QUIT", b"QUIT\r\n")
            sock.close()
            sock = None


gevent.joinall([gevent.spawn(session) for _ in range(sessions)])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50000, help="with -d")
    parser.add_argument("--session-messages", type=int, default=20000, help="without -d")
    args = parser.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    port = free_port()
    sink = start_sink("smtp-sink", port)
    host = f"127.0.0.1:{port}"
    rows: list[tuple[str, int, list[str]]] = []
    for reuse, count in ((1, args.messages), (0, args.session_messages)):
        flags = ["-d"] if reuse else []
        mode = "-d" if reuse else "  "
        loop = [sys.executable, "-c", LOOP, str(count), "20"]
        rows += [
            (f"smtp-source -s 20 {mode}", count,
             ["/usr/sbin/smtp-source", "-s", "20", *flags, "-m", str(count), host]),
            (f"bare loop {mode}, no events", count, [*loop, "0", str(reuse), str(port)]),
            (f"bare loop {mode}, Locust events", count, [*loop, "1", str(reuse), str(port)]),
        ]  # fmt: skip
    rates: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    try:
        for _ in range(args.runs):
            for label, count, cmd in rows:
                wall, _cpu, _code = timed(cmd)
                rates[label].append(count / wall)
    finally:
        sink.terminate()
        sink.wait()
    print(f"runs: {args.runs}; machine: {os.cpu_count()} CPUs; medians")
    print(f"{'generator':36} {'msg/s':>9} {'ratio':>6}")
    reference = 0.0
    for label, _count, _cmd in rows:
        rate = statistics.median(rates[label])
        if label.startswith("smtp-source"):
            reference = rate
        print(f"{label:36} {rate:9.0f} {rate / reference:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
