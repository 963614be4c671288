"""The client and the users under faults, in process: timeouts that mean what they say,
bounded memory and descriptors, and accounting that adds up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import gevent
import pytest
from fault_server import Fault, fault_server
from locust import task
from locust.env import Environment
from servers import our_sink

from locust_smtp import ReplyReader, SmtpClient, SmtpTimeout, SmtpUser, data_payload
from locust_smtp.plugin.options import _check_user_classes, install_pool
from locust_smtp.plugin.outcomes import outcomes_for

PAYLOAD = data_payload(b"Subject: t\r\n\r\nhello\r\n")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_timeout_is_per_reply_not_a_running_total() -> None:
    # 10 messages of 4 replies, each 0.1 s late: 4 s of waiting on one connection, with a
    # timeout of 0.3 s
    with fault_server(delay=0.1) as server:
        client = SmtpClient(server.address, timeout=0.3)
        client.connect()
        client.helo("me.test")
        for _ in range(10):
            client.send_mail("a@x.test", ["b@y.test"], PAYLOAD)
        client.quit()
    assert server.messages == 10


def test_after_a_timeout_the_next_connection_gets_the_whole_timeout() -> None:
    with fault_server(Fault("mail", "silence", nth=1), delay=0.05) as server:
        client = SmtpClient(server.address, timeout=0.3)
        client.connect()
        client.helo("me.test")
        t0 = time.monotonic()
        with pytest.raises(SmtpTimeout):
            client.send_mail("a@x.test", ["b@y.test"], PAYLOAD)
        assert 0.3 <= time.monotonic() - t0 < 1.3
        # the timer fired once; it must not fire at once on the next waits
        client.connect()
        client.helo("me.test")
        client.send_mail("a@x.test", ["b@y.test"], PAYLOAD)
        client.quit()
    assert server.messages == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault("mail", "endless"),
        Fault("mail", "endless", interval=0.01),
        Fault("mail", "trickle", text=b"250 a reply that takes two seconds to come\r\n",
              interval=0.05),
        Fault("mail", "partial"),
    ],
    ids=["endless", "endless-slowly", "trickle", "partial"],
)  # fmt: skip
def test_a_reply_is_bounded_as_a_whole(fault: Fault) -> None:
    with fault_server(fault) as server:
        client = SmtpClient(server.address, timeout=0.5)
        client.connect()
        client.helo("me.test")
        t0 = time.monotonic()
        with pytest.raises(SmtpTimeout) as caught:
            client.send_mail("a@x.test", ["b@y.test"], PAYLOAD)
        elapsed = time.monotonic() - t0
    assert caught.value.stage == "MAIL"
    assert 0.5 <= elapsed < 1.5
    assert not client.connected


def test_memory_stays_flat_under_endless_continuation_lines() -> None:
    with fault_server(Fault("mail", "endless")) as server:
        client = SmtpClient(server.address, timeout=1.0)
        client.connect()
        client.helo("me.test")
        tracemalloc.start()
        try:
            with pytest.raises(SmtpTimeout):
                client.mail("a@x.test")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        client.close()
    # a second of lines went by (tens of MB here); what was kept, server included, is small
    assert peak < 1_000_000
    assert server.faults == 1


def test_memory_stays_flat_under_a_huge_reply_line() -> None:
    # the reader alone (the in-process test server would build the 20 MB line itself)
    reader = ReplyReader()
    chunk = b"x" * 65536
    tracemalloc.start()
    try:
        assert reader.receive(b"250 ") is None
        for _ in range(20_000_000 // len(chunk)):
            assert reader.receive(chunk) is None
        reply = reader.receive(b"\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply is not None and reply.code == 250 and len(reply.lines[0]) == 10240
    assert peak < 500_000


def test_a_huge_reply_line_is_read_to_its_end() -> None:
    with fault_server(Fault("mail", "huge", size=5_000_000)) as server:
        client = SmtpClient(server.address, timeout=5.0)
        client.connect()
        client.helo("me.test")
        assert client.mail("a@x.test").code == 250
        assert client.rcpt("b@y.test").code == 250  # the reply after it is read whole
        client.close()


class Flaky(SmtpUser):
    abstract = True
    timeout = 0.3
    reconnect_delay = 0.01
    reuse_connection = True


FAULTS = (
    Fault("mail", "hang-up", every=7),
    Fault("rcpt", "silence", every=11),
    Fault("data", "close-421", every=5),
    Fault(".", "reply", text=b"452 4.3.1 full\r\n", every=6),
    Fault("connect", "reply", text=b"554 5.7.1 not now\r\n", every=9),
)


def run_pool(user_class: type[SmtpUser], users: int, messages: int) -> Environment:
    env = Environment(user_classes=[user_class])
    runner = env.create_local_runner()
    pool = install_pool(env, messages)
    runner.start(users, spawn_rate=users)
    with gevent.Timeout(60):
        while pool.finished < messages or runner.user_count:
            gevent.sleep(0.02)
    runner.quit()
    return env


def test_users_account_for_every_message_and_give_back_every_descriptor() -> None:
    before = open_descriptors()
    with fault_server(*FAULTS) as server:
        Flaky.host = server.address
        env = run_pool(type("FlakyUser", (Flaky,), {}), users=4, messages=120)
    assert open_descriptors() == before
    outcomes = outcomes_for(env, "SMTP")
    entry = env.stats.entries[("message", "SMTP")]
    assert outcomes.attempted == entry.num_requests == 120
    assert entry.num_failures == outcomes.rejected + outcomes.failed + outcomes.interrupted
    assert outcomes.accepted == server.messages
    assert outcomes.rejected > 0 and outcomes.failed > 0 and outcomes.interrupted == 0
    assert sum(outcomes.failed_at.values()) == outcomes.failed


def test_a_server_that_is_down_is_not_hammered() -> None:
    from servers import free_port

    class Down(SmtpUser):
        host = f"127.0.0.1:{free_port()}"
        reconnect_delay = 0.05
        reconnect_delay_max = 0.2

    env = Environment(user_classes=[Down])
    runner = env.create_local_runner()
    runner.start(2, spawn_rate=2)
    gevent.sleep(1.0)
    runner.quit()
    attempted = outcomes_for(env, "SMTP").failed
    # backing off 0.05, 0.1, 0.2, 0.2 ... s: about 6 attempts a second per user, not 10,000
    assert 4 <= attempted <= 20


def test_custom_tasks_take_part_in_the_exact_count(tmp_path: Path) -> None:
    locustfile = tmp_path / "custom.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            from locust import task
            from locust_smtp import SmtpUser, data_payload


            class Raw(SmtpUser):
                @task
                def raw(self):
                    self.send_raw_message("a@x.test", ["b@y.test"], b"Subject: raw\\r\\n\\r\\n")


            class Direct(SmtpUser):
                @task
                def direct(self):
                    with self.counted_message():
                        if not self.client.connected and not self.open_session():
                            return
                        self.client.send_mail("a@x.test", ["c@y.test"], data_payload(b"hi\\r\\n"))
                        self.end_session()
            """
        )
    )
    with our_sink() as sink:
        proc = subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
                "--only-summary", "-u", "6", "-r", "6", "--host", sink.address,
                "--smtp-messages", "50", "--loglevel", "WARNING",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sink.counts["messages"] == 50


def test_a_class_that_cannot_take_part_in_the_count_is_named_at_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from locust import User

    class Other(User):
        @task
        def nothing(self) -> None:
            pass

    class Mail(SmtpUser):
        host = "127.0.0.1:25"

    with caplog.at_level(logging.WARNING, logger="locust_smtp"):
        _check_user_classes(Environment(user_classes=[Mail, Other]))
    assert "SmtpUser classes; Other will not stop by themselves" in caplog.text


def test_an_unexpected_error_in_a_task_is_a_counted_failure() -> None:
    class Buggy(SmtpUser):
        @task
        def buggy(self) -> None:
            with self.counted_message():
                raise ValueError("a bug in the locustfile")

    with fault_server() as server:
        Buggy.host = server.address
        env = run_pool(Buggy, users=2, messages=10)
    outcomes = outcomes_for(env, "SMTP")
    assert (outcomes.attempted, outcomes.failed) == (10, 10)
    errors = {repr(e.error) for e in env.stats.errors.values() if e.name == "message"}
    assert errors == {"ValueError('a bug in the locustfile')"}
    assert len(env.runner.exceptions) == 1  # Locust logged the traceback too


def test_a_message_some_recipients_refused_is_accepted_partly_everywhere() -> None:
    from locust_smtp import LmtpUser
    from locust_smtp.plugin.webui import smtp_figures

    class ThreeRecipients(LmtpUser):
        recipients_per_message = 3
        reuse_connection = True

    refused = Fault(".", "reply", text=b"550 5.1.1 no such user\r\n", recipient=2)
    with fault_server(refused, lmtp=True) as server:
        ThreeRecipients.host = f"lmtp://{server.address}"
        env = run_pool(ThreeRecipients, users=2, messages=8)
    figures = {row["metric"]: row["value"] for row in smtp_figures(env)}
    assert figures["LMTP messages attempted"] == figures["LMTP messages accepted"] == 8
    assert figures["LMTP messages partly accepted (some recipients refused)"] == 8
    assert figures["LMTP recipients accepted"] == 16 == server.deliveries
    assert figures["LMTP recipients refused"] == 8
    assert figures["LMTP failures end of data 550 5.1.1 (PermanentReplyError)"] == 8
    assert env.stats.entries[("message", "LMTP")].num_failures == 0
