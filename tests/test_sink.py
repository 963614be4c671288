"""locust-smtp-sink: the protocol state machine directly, and the server as a process."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from servers import ipv6_available, our_sink

from locust_smtp import SmtpClient, SourceMessage, TransientReplyError, data_payload
from locust_smtp.sink import Counters, Session, SinkConfig

PAYLOAD = data_payload(SourceMessage("a@x", "b@y", "vm").template().render("1.2.3"))


def session(**config: object) -> Session:
    return Session(SinkConfig(**config), Counters())  # type: ignore[arg-type]


def test_a_whole_dialogue_in_one_pipelined_write() -> None:
    s = session()
    replies = s.feed(b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nRCPT TO:<c>\r\nDATA\r\n")
    assert replies.split(b"\r\n")[:12] == [
        b"250-locust-smtp-sink",
        b"250-PIPELINING",
        b"250-SIZE 10240000",
        b"250-8BITMIME",
        b"250-BINARYMIME",
        b"250-CHUNKING",
        b"250-SMTPUTF8",
        b"250-DSN",
        b"250-XCLIENT ADDR NAME HELO PROTO",
        b"250-XFORWARD ADDR NAME HELO PROTO",
        b"250 ENHANCEDSTATUSCODES",
        b"250 2.1.0 Ok",
    ]
    assert replies.endswith(
        b"250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    )
    assert (
        s.feed(b"hello\r\n..dot\r\n.\r\nQUIT\r\n") == b"250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n"
    )
    assert s.counters.messages == 1 and s.counters.recipients == 2
    assert s.closing


def test_end_of_data_split_across_reads() -> None:
    s = session()
    s.feed(b"HELO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n")
    for chunk in (b"body\r", b"\n.", b"\r", b"\n"):
        reply = s.feed(chunk)
    assert reply == b"250 2.0.0 Ok: queued\r\n"


def test_empty_message() -> None:
    s = session()
    s.feed(b"HELO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n")
    assert s.feed(b".\r\n") == b"250 2.0.0 Ok: queued\r\n"


def test_lmtp_replies_once_per_recipient() -> None:
    s = session(lmtp=True)
    s.feed(b"LHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nRCPT TO:<c>\r\nRCPT TO:<d>\r\nDATA\r\n")
    assert s.feed(b"x\r\n.\r\n") == b"250 2.0.0 Ok: delivered\r\n" * 3


def test_sequence_errors() -> None:
    s = session()
    assert s.feed(b"RCPT TO:<b>\r\n").startswith(b"503")
    assert s.feed(b"MAIL FROM:<a>\r\nDATA\r\n").endswith(b"503 5.5.1 Error: need RCPT command\r\n")
    assert s.feed(b"VRFY x\r\n").startswith(b"502")


@pytest.mark.parametrize(
    ("option", "reply"),
    [
        ("soft_reject", b"450 "),
        ("hard_reject", b"550 "),
        ("close_421", b"421 "),
        ("hang_up", b""),
    ],
)
def test_faults(option: str, reply: bytes) -> None:
    s = session(**{option: frozenset({"rcpt"})})
    got = s.feed(b"HELO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\n")
    replies = got.split(b"\r\n")
    if reply:
        assert replies[2].startswith(reply) and replies[3:] == [b""]
    else:  # a hang-up: no reply to RCPT at all
        assert replies[2:] == [b""]
    assert s.closing == (option in ("close_421", "hang_up"))
    assert s.counters.faults == 1


def test_fault_every_nth() -> None:
    s = session(hard_reject=frozenset({"mail"}), fault_every=3)
    replies = [s.feed(b"MAIL FROM:<a>\r\n")[:3] for _ in range(6)]
    assert replies == [b"250", b"250", b"550", b"250", b"250", b"550"]


def test_counts_over_tcp_and_prints_them_at_exit() -> None:
    with our_sink() as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("vm")
        assert client.extensions.pipelining and client.extensions.size == 10240000
        for _ in range(3):
            client.send_mail("a@x", ["b@y", "c@y"], PAYLOAD)
        client.quit()
    assert sink.counts == {"connections": 1, "messages": 3, "recipients": 6, "faults": 0}


def test_lmtp_over_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "lmtp.sock")
    with our_sink("--lmtp", unix_path=path) as sink:
        client = SmtpClient(f"lmtp+unix:{path}")
        client.connect()
        client.lhlo("vm")
        result = client.send_mail("a@x", ["1@y", "2@y", "3@y"], PAYLOAD)
        client.quit()
    assert len(result.replies) == 3
    assert sink.counts["messages"] == 1


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on loopback here")
def test_ipv6() -> None:
    with our_sink(ipv6=True) as sink:
        client = SmtpClient(sink.address)
        assert client.connect().code == 220
        client.quit()
    assert sink.counts["connections"] == 1


def test_421_after_mail_over_the_wire() -> None:
    with our_sink("-Q", "mail") as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.helo("vm")
        with pytest.raises(TransientReplyError):
            client.send_mail("a@x", ["b@y"], PAYLOAD)
        assert not client.connected
    assert sink.counts["faults"] == 1


def test_record_writes_client_bytes(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    with our_sink(record=record) as sink:
        port = int(sink.address.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.recv(100)
            s.sendall(b"QUIT\r\n")
            s.recv(100)
    assert [p.read_bytes() for p in sorted(record.iterdir())] == [b"QUIT\r\n"]


def test_the_sink_labels_its_count_line() -> None:
    # it shares a terminal with locust-smtp in the README's first command
    with our_sink() as sink:
        pass
    assert sink.output.splitlines()[-1] == (
        "locust-smtp-sink: connections 0 messages 0 recipients 0 faults 0"
    )


def test_each_fault_can_have_its_own_frequency() -> None:
    """-r rcpt/5 -f mail/7: 450 to every 5th RCPT, 550 to every 7th MAIL."""
    with our_sink("-r", "rcpt/5", "-f", "mail/7") as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.hello("t")
        mails, rcpts = [], []
        for _ in range(14):
            mails.append(client.mail("a@b").code)
            if mails[-1] == 250:
                rcpts.append(client.rcpt("c@d").code)
            client.rset()
        client.quit()
    assert mails == [250] * 6 + [550] + [250] * 6 + [550]
    assert rcpts == [250, 250, 250, 250, 450, 250, 250, 250, 250, 450, 250, 250]
    assert sink.counts["faults"] == 4
