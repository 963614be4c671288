"""SmtpUser and LmtpUser under a real Locust Environment and LocalRunner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gevent
import pytest
from locust import task
from locust.env import Environment
from locust.exception import StopUser
from servers import scripted_server, smtp_sink

from locust_smtp import LmtpUser, SmtpUser


class Budget:
    """A message budget shared by the users of one test."""

    def __init__(self, messages: int) -> None:
        self.left = messages

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def run_users(user_class: type[SmtpUser], users: int, timeout: float = 60) -> Environment:
    """Run ``users`` users until each has stopped by itself (bounded by ``timeout``)."""
    env = Environment(user_classes=[user_class])
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    runner.spawning_greenlet.join(timeout)
    runner.user_greenlets.join(timeout=timeout)
    assert runner.user_count == 0, "users did not stop by themselves"
    runner.quit()
    return env


def limited(base: type[SmtpUser], messages: int, **attrs: Any) -> type[SmtpUser]:
    budget = Budget(messages)

    def send_until_done(self: SmtpUser) -> None:
        if not budget.take():
            raise StopUser()
        self.send_message()

    return type("Limited", (base,), {"send_until_done": task(send_until_done), **attrs})


def counts(env: Environment, request_type: str = "SMTP") -> dict[str, tuple[int, int]]:
    return {
        name: (entry.num_requests, entry.num_failures)
        for (name, method), entry in env.stats.entries.items()
        if method == request_type
    }


def test_reused_connections_count_every_stage_and_message() -> None:
    with smtp_sink() as address:
        env = run_users(limited(SmtpUser, 250, host=address, reuse_connection=True), users=5)
    c = counts(env)
    assert c["message"] == (250, 0)
    for stage in ("MAIL", "RCPT", "DATA", "end of data"):
        assert c[stage] == (250, 0)
    assert c["connect"][0] == c["HELO"][0] == c["QUIT"][0] == 5


def test_a_connection_per_message() -> None:
    with smtp_sink() as address:
        env = run_users(limited(SmtpUser, 60, host=address, recipients_per_message=3), users=4)
    c = counts(env)
    assert c["message"] == (60, 0)
    assert c["RCPT"] == (180, 0)
    for stage in ("connect", "banner", "HELO", "QUIT"):
        assert c[stage] == (60, 0)


def test_lmtp_user_counts_a_reply_per_recipient(tmp_path: Path) -> None:
    sock = str(tmp_path / "lmtp.sock")
    with smtp_sink("-L", unix_path=sock):
        env = run_users(
            limited(
                LmtpUser,
                30,
                host=f"lmtp+unix:{sock}",
                recipients_per_message=2,
                reuse_connection=True,
            ),
            users=3,
        )
    c = counts(env, "LMTP")
    assert c["message"] == (30, 0)
    assert c["LHLO"] == (3, 0)
    assert c["end of data"] == (60, 0)


@pytest.mark.parametrize(
    ("flag", "command", "stage", "code"),
    [
        ("-r", "mail", "MAIL", 450),
        ("-f", "rcpt", "RCPT", 500),
        ("-f", "data", "DATA", 500),
        ("-r", ".", "end of data", 450),
        ("-Q", "rcpt", "RCPT", 421),
    ],
)
def test_rejections_are_failures_and_the_user_goes_on(
    flag: str, command: str, stage: str, code: int
) -> None:
    with smtp_sink(flag, command) as address:
        env = run_users(limited(SmtpUser, 20, host=address, reuse_connection=True), users=2)
    c = counts(env)
    assert c["message"] == (20, 20)
    assert c[stage] == (20, 20)
    errors = {(e.name, repr(e.error)): e.occurrences for e in env.stats.errors.values()}
    kind = "TransientReplyError" if code < 500 else "PermanentReplyError"
    matching = [k for k in errors if k[0] == stage and k[1].startswith(f"{kind}('{stage}', {code}")]
    assert matching, errors
    if code == 421:
        # each 421 drops the connection; the next message opens a new one
        assert c["connect"][0] == 20
    elif stage != "end of data":
        assert c["RSET"] == (20, 0)


def test_hang_up_is_a_failure_and_next_message_reconnects() -> None:
    with smtp_sink("-q", "data") as address:
        env = run_users(limited(SmtpUser, 10, host=address, reuse_connection=True), users=1)
    c = counts(env)
    assert c["message"] == (10, 10)
    assert c["DATA"] == (10, 10)
    assert c["connect"] == (10, 0)


def test_refused_connection_fails_the_message() -> None:
    from servers import free_port

    env = run_users(limited(SmtpUser, 5, host=f"127.0.0.1:{free_port()}"), users=1)
    c = counts(env)
    assert c["connect"] == (5, 5)
    assert c["message"] == (5, 5)


def test_custom_transaction_helper_has_the_same_accounting() -> None:
    sent: list[Any] = []

    class Custom(SmtpUser):
        reuse_connection = True

        @task
        def custom(self) -> None:
            if len(sent) >= 3:
                raise StopUser()
            sent.append(self.send_raw_message("me@x", ["you@y"], b"Subject: hi\r\n\r\n.body\r\n"))

    with smtp_sink() as address:
        Custom.host = address
        env = run_users(Custom, users=1)
    assert all(result is not None and result.accepted == ("you@y",) for result in sent)
    assert counts(env)["message"] == (3, 0)


def test_stopping_mid_transaction_records_no_success_and_closes() -> None:
    connections: list[Any] = []

    def never_answers_rcpt(sock: Any) -> None:
        from servers import read_line

        connections.append(sock)
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        while line := read_line(sock, buf):
            if line.startswith(b"RCPT"):
                try:
                    sock.recv(1)  # returns (or raises, on a reset) once the client has closed
                finally:
                    connections.remove(sock)
                return
            sock.sendall(b"250 ok\r\n")

    with scripted_server(never_answers_rcpt) as address:
        env = Environment(user_classes=[type("U", (SmtpUser,), {"host": address})])
        runner = env.create_local_runner()
        runner.start(2, spawn_rate=2)
        deadline = gevent.Timeout(10)
        with deadline:
            while env.stats.get("MAIL", "SMTP").num_requests < 2:
                gevent.sleep(0.01)
        runner.stop()
        with gevent.Timeout(10):
            while connections:
                gevent.sleep(0.01)
        runner.quit()
    c = counts(env)
    assert "message" not in c or c["message"][0] - c["message"][1] == 0
    assert "RCPT" not in c


def test_host_is_required() -> None:
    from locust.exception import LocustError

    class NoHost(SmtpUser):
        pass

    with pytest.raises(LocustError, match="host"):
        NoHost(Environment(user_classes=[NoHost]))


def test_ramping_up_and_down_keeps_the_message_count_exact() -> None:
    from servers import our_sink

    from locust_smtp.plugin.options import install_pool

    class Ramped(SmtpUser):
        pass

    # replies wait 5 ms, so users are stopped in the middle of transactions when ramping down
    with our_sink("--delay", "0.005") as sink:
        Ramped.host = sink.address
        env = Environment(user_classes=[Ramped])
        runner = env.create_local_runner()
        pool = install_pool(env, 300)
        runner.start(2, spawn_rate=100)
        with gevent.Timeout(30):
            while pool.finished < 30:
                gevent.sleep(0.05)
            runner.start(8, spawn_rate=100)
            while pool.finished < 100:
                gevent.sleep(0.05)
            runner.start(1, spawn_rate=100)  # kills 7 users, some mid-transaction
            while pool.finished < 300 or runner.user_count:
                gevent.sleep(0.05)
        runner.quit()
    attempted, failed = counts(env)["message"]
    assert attempted == 300
    # a user stopped while waiting for its end-of-data reply reports a failed message
    # (the server may or may not have taken it); everything else was resent elsewhere
    errors = [repr(e.error) for e in env.stats.errors.values() if e.name == "message"]
    assert all(e == "UserStopped('end of data')" for e in errors), errors
    assert 300 - failed <= sink.counts["messages"] <= 300


def test_smtp_tab_figures_group_failures_by_stage_and_code() -> None:
    from locust_smtp.plugin.webui import smtp_figures

    with smtp_sink("-f", "rcpt") as address:
        env = run_users(limited(SmtpUser, 7, host=address, reuse_connection=True), users=1)
    figures = {row["metric"]: row["value"] for row in smtp_figures(env)}
    assert figures["SMTP messages attempted"] == 7
    assert figures["SMTP messages rejected"] == 7
    assert figures["SMTP messages accepted"] == 0
    assert figures["SMTP failures RCPT 500 5.3.0 (PermanentReplyError)"] == 7
    # per stage, times from the microsecond histograms
    assert figures["SMTP RCPT count"] == figures["SMTP RCPT failed"] == 7
    assert figures["SMTP MAIL count"] == 7 and figures["SMTP MAIL failed"] == 0
    times = [
        figures[f"SMTP MAIL {c}"] for c in ("p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
    ]
    assert all(isinstance(t, float) for t in times) and times == sorted(times)
    assert 0 < times[0] < 1000
