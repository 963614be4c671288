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

_BODY = r"""body = (b"From: <foo@vm>\r\nTo: <foo@vm>\r\nDate: Wed, 25 Nov 2026 16:00:00 +0000\r\n"
        b"Message-Id: <0001.0002.0003@vm>\r\n\r\n"
        b"La de da de da 1.\r\nLa de da de da 2.\r\n"
        b"La de da de da 3.\r\nLa de da de da 4.\r\n.\r\n")
"""
"""The message every script sends: smtp-source's, with a fixed date."""

LOOP = r"""
import _socket, os, socket, sys, time
import gevent
from gevent import getcurrent
from gevent.hub import get_hub

messages, sessions, events, reuse, port, pipelining = (int(a) for a in sys.argv[1:7])
fire = None
samples = []
if events == 2:  # append each stage's sample to a list, as locust-smtp's batches do
    def fire(response_time, **_kwargs):
        samples.append(response_time)
elif events:
    from locust import User
    from locust.env import Environment

    env = Environment(user_classes=[User])
    env.create_local_runner()
    fire = env.events.request.fire
# BODY
TRANSACTION = [("MAIL", b"MAIL FROM:<foo@vm>\r\n", 1), ("RCPT", b"RCPT TO:<foo@vm>\r\n", 1),
               ("DATA", b"DATA\r\n", 1), ("end of data", body, 1)]
if pipelining:  # EHLO, then MAIL+RCPT+DATA in one write: 2 round trips per message
    TRANSACTION = [("MAIL", b"MAIL FROM:<foo@vm>\r\nRCPT TO:<foo@vm>\r\nDATA\r\n", 3),
                   ("end of data", body, 1)]
hub = get_hub()
loop = hub.loop
left = [messages]
perf = time.perf_counter
READY = object()


def session():
    switch = getcurrent().switch
    timer = loop.timer(300)
    sock = watcher = None

    def wait_reply(name, t0, sent, replies=1):
        data = b""
        while True:
            watcher.start(switch, READY)
            timer.start(switch, None)
            try:
                hub.switch()
            finally:
                watcher.stop()
                timer.stop()
            data += sock.recv(65536)
            # complete: as many final lines ("ddd text") as replies owed (EHLO: "ddd-" first)
            if data.endswith(b"\r\n") and sum(
                line[3:4] == b" " for line in data.split(b"\r\n")
            ) >= replies:
                break
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
        sock.send(b"EHLO vm\r\n" if pipelining else b"HELO vm\r\n")
        wait_reply("HELO", t0, 9)

    def command(name, data, replies):
        t0 = perf()
        sock.send(data)
        wait_reply(name, t0, len(data), replies)

    connect()
    if pipelining == 2:  # across transactions: "." and the next MAIL+RCPT+DATA in one write
        group = TRANSACTION[0][1]
        if left[0] > 0:
            left[0] -= 1
            command("MAIL", group, 3)
            while True:
                t0 = perf()
                more = left[0] > 0
                if more:
                    left[0] -= 1
                    command("end of data", body + group, 4)
                else:
                    command("end of data", body, 1)
                if fire:  # the stages the shared write answered
                    for name in ("MAIL", "RCPT", "DATA", "message") if more else ("message",):
                        fire(request_type="SMTP", name=name, response_time=0.1,
                             response_length=0, response=None, context={}, exception=None,
                             start_time=0.0)
                if not more:
                    return
    while left[0] > 0:
        left[0] -= 1
        t0 = perf()
        if sock is None:
            connect()
        for name, data, replies in TRANSACTION:
            command(name, data, replies)
            if fire and replies > 1:  # RCPT and DATA, answered by the same read
                fire(request_type="SMTP", name="RCPT", response_time=0.1, response_length=0,
                     response=None, context={}, exception=None, start_time=0.0)
                fire(request_type="SMTP", name="DATA", response_time=0.1, response_length=0,
                     response=None, context={}, exception=None, start_time=0.0)
        if fire:
            fire(request_type="SMTP", name="message", response_time=(perf() - t0) * 1000,
                 response_length=0, response=None, context={}, exception=None, start_time=0.0)
        if not reuse:
            command("QUIT", b"QUIT\r\n", 1)
            sock.close()
            sock = None


gevent.joinall([gevent.spawn(session) for _ in range(sessions)])
"""
LOOP = LOOP.replace("# BODY\n", _BODY)


CALLBACKS = r"""
import _socket, socket, sys
import gevent, gevent.event
from gevent.hub import get_hub

messages, sessions, port = (int(a) for a in sys.argv[1:4])
# BODY
GROUP = b"MAIL FROM:<foo@vm>\r\nRCPT TO:<foo@vm>\r\nDATA\r\n"
loop = get_hub().loop
left, done, finished = [messages], [0], gevent.event.Event()


class Session:
    # no greenlet: the hub calls on_readable; the same bytes as the pipelined loop
    def __init__(self):
        sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.data, self.owed, self.next = sock, b"", 1, self.ehlo
        self.watcher = loop.io(sock.fileno(), 1)
        self.watcher.start(self.on_readable)

    def on_readable(self):
        try:
            data = self.data + self.sock.recv(65536)
        except BlockingIOError:
            return
        if not data.endswith(b"\r\n") or sum(
            line[3:4] == b" " for line in data.split(b"\r\n")
        ) < self.owed:
            self.data = data
            return
        self.data = b""
        self.next()

    def ehlo(self):
        self.sock.send(b"EHLO vm\r\n")
        self.next = self.mail

    def mail(self):
        if left[0] <= 0:
            self.watcher.stop()
            self.sock.send(b"QUIT\r\n")
            self.sock.close()
            return
        left[0] -= 1
        self.sock.send(GROUP)
        self.owed, self.next = 3, self.content

    def content(self):
        self.sock.send(body)
        self.owed, self.next = 1, self.delivered

    def delivered(self):
        done[0] += 1
        if done[0] == messages:
            finished.set()
        self.mail()


sessions = [Session() for _ in range(sessions)]
finished.wait()
"""
CALLBACKS = CALLBACKS.replace("# BODY\n", _BODY)


MACHINE = r"""
import _socket, socket, sys, time
import gevent, gevent.event
from gevent.hub import get_hub
from locust_smtp.protocol import stages
from locust_smtp.protocol.session import Session

messages, sessions, port = (int(a) for a in sys.argv[1:4])
# BODY
loop = get_hub().loop
now = time.time
left, done, finished, samples = [messages], [0], gevent.event.Event(), []


class Connection:
    # the hub calls on_readable; locust-smtp's session machine decides what to write,
    # pipelining across transactions; every reply's time is kept, as the recorder does
    def __init__(self):
        sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        self.sock, self.session = sock, Session()
        self.session.pending[0].tag = now()
        self.watcher = loop.io(sock.fileno(), 1)
        self.watcher.start(self.on_readable)

    def send(self, data):
        stamp = now()
        for command in self.session.pending:
            if command.tag is None:
                command.tag = stamp
        self.sock.send(data)

    def start(self, overlap=False):
        if left[0] <= 0:
            return False
        left[0] -= 1
        self.session.start_mail("foo@vm", ["foo@vm"], body, pipelining=True, overlap=overlap)
        return True

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        session = self.session
        event = session.receive(data)
        while event is not None:
            samples.append(now() - event.tag)
            stage = event.stage
            if stage is stages.BANNER:
                self.send(session.hello("vm", "EHLO"))
            elif stage is stages.EHLO:
                self.start()
                self.send(session.data_to_send())
            elif event.done is not None:
                done[0] += 1
                if done[0] == messages:
                    finished.set()
                if session.transaction.ended:  # nothing ahead: the pool is empty
                    self.watcher.stop()
            elif stage is stages.DATA:
                out = session.data_to_send()  # the content ...
                if self.start(overlap=True):
                    out += session.data_to_send()  # ... and the next MAIL, RCPT, DATA
                self.send(out)
            event = session.next_event()


connections = [Connection() for _ in range(sessions)]
finished.wait()
"""
MACHINE = MACHINE.replace("# BODY\n", _BODY)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50000, help="with -d")
    parser.add_argument("--session-messages", type=int, default=20000, help="without -d")
    parser.add_argument(
        "--pipelining",
        action="store_true",
        help="only -d, EHLO and MAIL+RCPT+DATA in one write: greenlets against hub callbacks",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    port = free_port()
    sink = start_sink("smtp-sink", port)
    host = f"127.0.0.1:{port}"
    rows: list[tuple[str, int, list[str]]] = []
    if args.pipelining:
        count = args.messages
        loop = [sys.executable, "-c", LOOP, str(count), "20"]
        rows += [
            ("smtp-source -s 20 -d", count,
             ["/usr/sbin/smtp-source", "-s", "20", "-d", "-m", str(count), host]),
            ("greenlets, pipelined, no samples", count, [*loop, "0", "1", str(port), "1"]),
            ("greenlets, pipelined, samples kept", count, [*loop, "2", "1", str(port), "1"]),
            ("greenlets, pipelined, Locust events", count, [*loop, "1", "1", str(port), "1"]),
            ("greenlets, across transactions, samples", count,
             [*loop, "2", "1", str(port), "2"]),
            ("hub callbacks, pipelined", count,
             [sys.executable, "-c", CALLBACKS, str(count), "20", str(port)]),
            ("hub callbacks, session machine, across", count,
             [sys.executable, "-c", MACHINE, str(count), "20", str(port)]),
            ("locust-smtp -s 20 -d --pipelining", count,
             [sys.executable, "-m", "locust_smtp", "-s", "20", "-d", "--pipelining",
              "-m", str(count), host]),
        ]  # fmt: skip
    for reuse, count in ((1, args.messages), (0, args.session_messages)) * (not args.pipelining):
        flags = ["-d"] if reuse else []
        mode = "-d" if reuse else "  "
        loop = [sys.executable, "-c", LOOP, str(count), "20"]
        rows += [
            (f"smtp-source -s 20 {mode}", count,
             ["/usr/sbin/smtp-source", "-s", "20", *flags, "-m", str(count), host]),
            (f"bare loop {mode}, no events", count, [*loop, "0", str(reuse), str(port), "0"]),
            (f"bare loop {mode}, Locust events", count, [*loop, "1", str(reuse), str(port), "0"]),
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
    print(f"{'generator':38} {'msg/s':>9} {'ratio':>6}")
    reference = 0.0
    for label, _count, _cmd in rows:
        rate = statistics.median(rates[label])
        if label.startswith("smtp-source"):
            reference = rate
        print(f"{label:38} {rate:9.0f} {rate / reference:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
