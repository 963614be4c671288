"""The gevent client against real servers on loopback."""

from __future__ import annotations

import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest
from servers import aiosmtpd_server, ipv6_available, our_sink, read_line, scripted_server, smtp_sink

from locust_smtp import (
    ConnectError,
    ConnectionLost,
    LocalProtocolError,
    MalformedReply,
    PermanentReplyError,
    SmtpClient,
    SmtpTimeout,
    SourceMessage,
    TransientReplyError,
    UnexpectedReplyError,
    data_payload,
)

PAYLOAD = data_payload(SourceMessage("a@x", "b@y", "vm").template().render("1.2.3"))


class Stages:
    """Collects what the client reports: (stage, code or None, exception type or None)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None, type | None]] = []
        self.times: list[float] = []

    def __call__(
        self, stage: str, start: float, ms: float, sent: int, reply: Any, exc: BaseException | None
    ) -> None:
        assert ms >= 0 and start > 0
        self.seen.append((stage, reply.code if reply else None, type(exc) if exc else None))
        self.times.append(ms)


def session(address: str, **kwargs: Any) -> tuple[SmtpClient, Stages]:
    stages = Stages()
    return SmtpClient(address, on_stage=stages, **kwargs), stages


def test_a_whole_smtp_session_reports_every_stage() -> None:
    with smtp_sink() as address:
        client, stages = session(address)
        assert client.connect().code == 220
        assert client.helo("vm").code == 250
        result = client.send_mail("a@x", ["b@y", "c@y"], PAYLOAD)
        assert result.accepted == ("b@y", "c@y")
        assert result.bytes_sent == len(b"MAIL FROM:<a@x>\r\n") + len(
            b"RCPT TO:<b@y>\r\n"
        ) * 2 + 6 + len(PAYLOAD)
        client.quit()
        assert not client.connected
    assert [s[0] for s in stages.seen] == [
        "connect",
        "banner",
        "HELO",
        "MAIL",
        "RCPT",
        "RCPT",
        "DATA",
        "end of data",
        "message",
        "QUIT",
    ]
    assert all(exc is None for _, _, exc in stages.seen)
    assert stages.seen[6] == ("DATA", 354, None)


def test_many_transactions_on_one_connection() -> None:
    with smtp_sink() as address:
        client, stages = session(address)
        client.connect()
        client.ehlo("vm")
        assert client.extensions.pipelining
        for _ in range(20):
            client.send_mail("a@x", ["b@y"], PAYLOAD)
        client.quit()
    assert [s[0] for s in stages.seen].count("message") == 20
    assert [s[0] for s in stages.seen].count("connect") == 1


def test_lmtp_reads_one_end_of_data_reply_per_accepted_recipient() -> None:
    with smtp_sink("-L") as address:
        client, stages = session(address, lmtp=True)
        client.connect()
        assert client.lhlo("vm").positive
        result = client.send_mail("a@x", ["1b@y", "2b@y", "b@y"], PAYLOAD)
        assert len(result.replies) == 3
        # the connection is in step: a second transaction works
        assert len(client.send_mail("a@x", ["b@y"], PAYLOAD).replies) == 1
        client.quit()
    assert [s[0] for s in stages.seen].count("end of data") == 4


def test_unix_socket(tmp_path: Path) -> None:
    with smtp_sink(unix_path=str(tmp_path / "sink.sock")) as address:
        client, _ = session(address)
        client.connect()
        client.helo("vm")
        client.send_mail("a@x", ["b@y"], PAYLOAD)
        client.quit()


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on loopback here")
def test_ipv6_bracketed_literal() -> None:
    with smtp_sink(ipv6=True) as address:
        client, _ = session(address)
        assert client.connect().code == 220
        client.quit()


def test_aiosmtpd_receives_what_we_send() -> None:
    with aiosmtpd_server() as (address, log):
        client, _ = session(address)
        client.connect()
        client.ehlo("vm")
        for _ in range(3):
            client.send_mail("a@x", ["b@y"], data_payload(b"Subject: t\r\n\r\n.dot\r\n"))
        client.quit()
        records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["to"] for r in records] == [["b@y"]] * 3


@pytest.mark.parametrize(
    ("option", "stage", "error", "code"),
    [
        ("-r mail", "MAIL", TransientReplyError, 450),
        ("-f mail", "MAIL", PermanentReplyError, 500),
        ("-f rcpt", "RCPT", PermanentReplyError, 500),
        ("-r data", "DATA", TransientReplyError, 450),
        ("-f .", "end of data", PermanentReplyError, 500),
    ],
)
def test_smtp_sink_rejections(option: str, stage: str, error: type, code: int) -> None:
    flag, command = option.split()
    with smtp_sink(flag, command) as address:
        client, stages = session(address)
        client.connect()
        client.helo("vm")
        with pytest.raises(error) as info:
            client.send_mail("a@x", ["b@y"], PAYLOAD)
        assert info.value.stage == stage
        assert info.value.code == code
        assert (stage, info.value.code, error) in stages.seen
        assert stages.seen[-1][0] == "message" and stages.seen[-1][2] is error
        # the server is still there: reset and go on
        if stage != "end of data":
            assert client.rset().positive
        client.quit()


def test_hang_up_after_a_command_is_a_lost_connection() -> None:
    with smtp_sink("-q", "rcpt") as address:
        client, stages = session(address)
        client.connect()
        client.helo("vm")
        with pytest.raises(ConnectionLost) as info:
            client.send_mail("a@x", ["b@y"], PAYLOAD)
    assert info.value.stage == "RCPT"
    assert str(info.value) == "lost connection while sending recipient"
    assert not client.connected
    assert ("RCPT", None, ConnectionLost) in stages.seen


def test_421_after_a_command_closes_the_connection() -> None:
    with smtp_sink("-Q", "mail") as address:
        client, _ = session(address)
        client.connect()
        client.helo("vm")
        with pytest.raises(TransientReplyError) as info:
            client.send_mail("a@x", ["b@y"], PAYLOAD)
        assert (info.value.stage, info.value.code) == ("MAIL", 421)
        assert not client.connected
        # the next message gets a new connection
        client.connect()
        client.quit()


def test_silent_server_is_a_timeout_not_a_hang() -> None:
    def silent(sock: socket.socket) -> None:
        sock.recv(1)  # holds the connection open, says nothing

    with scripted_server(silent) as address:
        client, stages = session(address, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(SmtpTimeout) as info:
            client.connect()
        assert 0.25 < time.monotonic() - started < 5
    assert info.value.stage == "banner"
    assert str(info.value) == "timeout while reading server greeting"
    assert stages.seen[-1] == ("banner", None, SmtpTimeout)


def test_silent_after_data_is_a_timeout() -> None:
    def stop_after_data(sock: socket.socket) -> None:
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        while line := read_line(sock, buf):
            if line.startswith(b"DATA"):
                sock.sendall(b"354 go\r\n")
            elif line == b".\r\n":
                sock.recv(1)  # never answers the end of data
            elif not line.startswith((b"From", b"To", b"Date", b"Message", b"La de", b"\r\n")):
                sock.sendall(b"250 ok\r\n")

    with scripted_server(stop_after_data) as address:
        client, _ = session(address, timeout=0.3)
        client.connect()
        with pytest.raises(SmtpTimeout) as info:
            client.send_mail("a@x", ["b@y"], PAYLOAD)
    assert info.value.stage == "end of data"
    assert not client.connected


def test_malformed_and_unexpected_replies() -> None:
    def odd(sock: socket.socket) -> None:
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        while line := read_line(sock, buf):
            if line.startswith(b"MAIL"):
                sock.sendall(b"2500 what\r\n")
            elif line.startswith(b"DATA"):
                sock.sendall(b"250 not 354\r\n")
            else:
                sock.sendall(b"250 ok\r\n")

    with scripted_server(odd) as address:
        client, _ = session(address)
        client.connect()
        with pytest.raises(MalformedReply) as malformed:
            client.send_mail("a@x", ["b@y"], PAYLOAD)
        assert repr(malformed.value) == "MalformedReply('MAIL', 0)"
        client.rset()
        assert client.rcpt("b@y").positive
        reply = client.data()
        assert reply.code == 250
        assert isinstance(client.rejection("DATA", reply), UnexpectedReplyError)


def test_connection_refused() -> None:
    from servers import free_port

    client, stages = session(f"127.0.0.1:{free_port()}")
    with pytest.raises(ConnectError) as info:
        client.connect()
    assert str(info.value) == "connect: Connection refused"
    assert repr(info.value) == "ConnectError('connect', errno=111)"
    assert stages.seen == [("connect", None, ConnectError)]


def test_missing_unix_socket() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client, _ = session(f"unix:{tmp}/none")
        with pytest.raises(ConnectError, match="No such file or directory"):
            client.connect()


def test_killed_greenlet_reports_no_success_and_closes_the_socket() -> None:
    def slow(sock: socket.socket) -> None:
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        while line := read_line(sock, buf):
            if line.startswith(b"RCPT"):
                sock.recv(1)
                return
            sock.sendall(b"250 ok\r\n")

    with scripted_server(slow) as address:
        client, stages = session(address)
        client.connect()
        mail_accepted = gevent.event.Event()

        def on_stage(stage: str, *args: Any) -> None:
            stages(stage, *args)
            if stage == "MAIL":
                mail_accepted.set()

        client.on_stage = on_stage
        greenlet = gevent.spawn(client.send_mail, "a@x", ["b@y"], PAYLOAD)
        assert mail_accepted.wait(5)
        greenlet.kill()
        assert not client.connected
    assert not any(stage in ("RCPT", "message") for stage, _, _ in stages.seen)


def test_buffer_size_sets_both_socket_buffers() -> None:
    # smtp-source -T: SO_SNDBUF and SO_RCVBUF before connecting (Linux reports double)
    import socket

    with smtp_sink() as address:
        client = SmtpClient(address, buffer_size=32768)
        client.connect()
        sock = socket.socket(fileno=client.fileno)
        try:
            sizes = [
                sock.getsockopt(socket.SOL_SOCKET, o) for o in (socket.SO_SNDBUF, socket.SO_RCVBUF)
            ]
        finally:
            sock.detach()
        client.close()
    assert sizes == [65536, 65536]


# -- pipelining, through the same transaction path -------------------------------------------


def test_a_pipelined_transaction_writes_one_group_and_books_every_reply(tmp_path: Path) -> None:
    """MAIL, three RCPTs (the second refused by the sink) and DATA go out as one group,
    timed from one write; every reply is reported as its own stage, in order."""
    seen: list[tuple[str, float, int | None]] = []

    def on_stage(stage: str, start: float, ms: float, sent: int, reply: Any, exc: Any) -> None:
        seen.append((stage, start, reply.code if reply is not None else None))

    rcpts = ["b@y.test", "c@y.test", "d@y.test"]
    with our_sink("-f", "rcpt", "--fault-every", "2", record=tmp_path) as sink:
        client = SmtpClient(sink.address, on_stage=on_stage)
        client.connect()
        client.ehlo("vm")
        assert client.extensions.pipelining
        result = client.send_mail("a@x.test", rcpts, PAYLOAD, pipelining=True)
        client.quit()
    assert result.accepted == ("b@y.test", "d@y.test")
    assert [(r, reply.code) for r, reply in result.rejected] == [("c@y.test", 550)]
    assert [(stage, code) for stage, _, code in seen[3:]] == [
        ("MAIL", 250),
        ("RCPT", 250),
        ("RCPT", 550),
        ("RCPT", 250),
        ("DATA", 354),
        ("end of data", 250),
        ("message", 250),
        ("QUIT", 221),
    ]
    group_starts = {start for stage, start, _ in seen[3:8]}
    assert len(group_starts) == 1  # one write, one stamp for the whole group
    group = b"MAIL FROM:<a@x.test>\r\n" + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts)
    [recorded] = tmp_path.glob("*.client")
    assert recorded.read_bytes() == b"EHLO vm\r\n" + group + b"DATA\r\n" + PAYLOAD + b"QUIT\r\n"
    assert sink.counts["messages"] == 1 and sink.counts["recipients"] == 2


def test_a_pipelined_transaction_against_postfix_smtp_sink() -> None:
    with smtp_sink() as address:
        client, stages = session(address)
        client.connect()
        client.ehlo("vm")
        result = client.send_mail("a@x", ["b@y", "c@y"], PAYLOAD, pipelining=True)
        client.quit()
    assert result.accepted == ("b@y", "c@y") and [r.code for r in result.replies] == [250]
    assert [s[0] for s in stages.seen[3:]] == [
        "MAIL",
        "RCPT",
        "RCPT",
        "DATA",
        "end of data",
        "message",
        "QUIT",
    ]


def test_what_on_reply_raises_is_the_callers_and_reported_once() -> None:
    """A caller's policy that raises (smtp-source's fatal) stops the transaction: the
    connection is closed, the exception is the caller's, and the refused stage was
    reported once, not again as a lost connection."""
    with our_sink("-f", "rcpt") as sink:
        client, stages = session(sink.address)
        client.connect()
        client.helo("vm")

        def fatal(command: Any) -> None:
            raise PermanentReplyError(command.stage, command.reply, "policy says stop")

        with pytest.raises(PermanentReplyError, match="policy says stop"):
            client.transaction("a@x", ["b@y"], PAYLOAD, on_reply=fatal)
        assert not client.connected and not client.session.pending
    assert [s[:2] for s in stages.seen[3:]] == [("MAIL", 250), ("RCPT", 550)]


def test_a_transaction_without_recipients_is_refused_before_anything_is_written() -> None:
    with our_sink() as sink:
        client, stages = session(sink.address)
        client.connect()
        client.helo("vm")
        with pytest.raises(LocalProtocolError, match="at least one recipient"):
            client.send_mail("a@x", [], PAYLOAD)
        client.quit()
    assert sink.counts["messages"] == 0
    assert [s[0] for s in stages.seen] == ["connect", "banner", "HELO", "QUIT"]
