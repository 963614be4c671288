"""PIPELINING, CHUNKING/BDAT, SMTPUTF8, DSN, XCLIENT, XFORWARD and the PROXY protocol end
to end against real servers: the private Postfix of tests/postfix_peer.py, whose maillog
says which client each message came from and that it was delivered (to its discard
transport), and the private Dovecot LMTP of tests/dovecot_peer.py, which answers per
recipient and delivers to maildirs."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from dovecot_peer import LmtpPeer, dovecot_peer
from dovecot_peer import available as dovecot_available
from postfix_peer import Peer, postfix_peer
from postfix_peer import available as postfix_available
from servers import IN_CI, LOCUST_SMTP, ipv6_available

from locust_smtp import SmtpClient
from locust_smtp.protocol import stages
from locust_smtp.protocol._replies import Reply
from locust_smtp.protocol._writers import BdatWriter


def _require(what: str, missing: str | None) -> None:
    if missing is not None:
        if IN_CI:
            pytest.fail(f"{what}: {missing}; .ci/run must provide it")
        pytest.skip(f"{what}: {missing}")


@pytest.fixture(scope="module")
def postfix() -> Iterator[Peer]:
    _require("private Postfix peer", postfix_available())
    with postfix_peer() as running:
        yield running


@pytest.fixture(scope="module")
def lmtp() -> Iterator[LmtpPeer]:
    _require("private Dovecot LMTP peer", dovecot_available())
    with dovecot_peer() as running:
        yield running


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOCUST_SMTP, *args], capture_output=True, text=True, timeout=120)


def ok(proc: subprocess.CompletedProcess[str], messages: int) -> None:
    assert proc.returncode == 0, proc.stderr
    assert f"{messages} accepted, 0 rejected, 0 failed" in proc.stderr, proc.stderr


# -- Postfix's maillog ---------------------------------------------------------------------

QUEUED = re.compile(
    r" postfix/(?:\w+/)?smtpd\[\d+\]: ([0-9A-F]+): client=(\S+?)(?:, orig_client=(\S+))?$",
    re.M,
)
SENT = re.compile(r" postfix/discard\[\d+\]: ([0-9A-F]+): to=<.*>, .* status=sent ", re.M)
REMOVED = re.compile(r" postfix/qmgr\[\d+\]: ([0-9A-F]+): removed$", re.M)
ADDRESS = re.compile(r"^unknown\[(.+)\]$")


@dataclass
class Received:
    """What the maillog says of the messages queued since a mark."""

    text: str
    """The maillog's lines since the mark."""
    clients: list[str]
    """Each message's client address (``client=unknown[...]``), in queue order."""
    forwarded: list[str]
    """Each message's XFORWARD client address (``orig_client=``), where given."""
    sent: dict[str, int]
    """Each message's queue id: how many of its recipients were delivered."""


def mark(peer: Peer) -> int:
    return peer.log.stat().st_size if peer.log.exists() else 0


def _address(namaddr: str) -> str:
    found = ADDRESS.match(namaddr)
    assert found is not None, namaddr
    return found.group(1)


def received(peer: Peer, since: int, messages: int, timeout: float = 30.0) -> Received:
    """Wait (bounded) until ``messages`` messages queued since ``since`` have left the
    queue, and say what the maillog tells of them; exactly ``messages`` were queued."""
    deadline = time.monotonic() + timeout
    while True:
        with peer.log.open("rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", "replace")
        text = text[: text.rfind("\n") + 1]  # whole lines only: postlogd may be writing
        queued = QUEUED.findall(text)
        removed = set(REMOVED.findall(text))
        if len(queued) >= messages and all(q[0] in removed for q in queued):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(queued)} of {messages} messages delivered:\n{text}")
        time.sleep(0.1)
    assert len(queued) == messages, text
    sent = {queue_id: 0 for queue_id, _, _ in queued}
    for queue_id in SENT.findall(text):
        if queue_id in sent:
            sent[queue_id] += 1
    return Received(
        text,
        [_address(client) for _, client, _ in queued],
        [_address(orig) for _, _, orig in queued if orig],
        sent,
    )


def in_network(addresses: list[str], cidr: str) -> bool:
    network = ipaddress.ip_network(cidr)
    return all(ipaddress.ip_address(a) in network for a in addresses)


# -- Postfix: PIPELINING, CHUNKING, SMTPUTF8, DSN ------------------------------------------


def test_a_pipelined_load(postfix: Peer) -> None:
    since = mark(postfix)
    proc = run("--pipelining", "-s", "4", "-d", "-r", "2", "-m", "20", postfix.smtp)
    ok(proc, 20)
    assert "recipients: 40 accepted, 0 refused" in proc.stderr
    got = received(postfix, since, 20)
    assert list(got.sent.values()) == [2] * 20  # every recipient of every message
    assert "improper command pipelining" not in got.text


def test_pipelining_writes_mail_rcpts_and_data_before_any_reply(postfix: Peer) -> None:
    since = mark(postfix)
    proc = run("-v", "--pipelining", "-r", "2", "-f", "a@example.net", "-t", "b@example.org",
               "-m", "1", postfix.smtp)  # fmt: skip
    ok(proc, 1)
    trace = [line.removeprefix("locust-smtp: ") for line in proc.stderr.splitlines()]
    start = trace.index("MAIL FROM:<a@example.net>")
    assert trace[start : start + 8] == [
        "MAIL FROM:<a@example.net>",
        "RCPT TO:<2b@example.org>",
        "RCPT TO:<b@example.org>",
        "DATA",
        "<<< 250 2.1.0 Ok",
        "<<< 250 2.1.5 Ok",
        "<<< 250 2.1.5 Ok",
        "<<< 354 End data with <CR><LF>.<CR><LF>",
    ]
    assert list(received(postfix, since, 1).sent.values()) == [2]


@pytest.mark.parametrize(
    ("chunking", "chunks"),
    [((), 1), (("--bdat-chunk-size", "100", "-l", "500"), 0)],
    ids=["one-chunk", "chunks-of-100"],
)
def test_pipelined_bdat(postfix: Peer, chunking: tuple[str, ...], chunks: int) -> None:
    """Postfix counts the BDAT commands of each connection (one message each)."""
    since = mark(postfix)
    proc = run("--pipelining", "--bdat", *chunking, "-s", "2", "-m", "20", postfix.smtp)
    ok(proc, 20)
    got = received(postfix, since, 20)
    assert list(got.sent.values()) == [1] * 20
    sessions = re.findall(r"disconnect from unknown\[127\.0\.0\.1\] (.*)$", got.text, re.M)
    assert len(sessions) == 20, got.text
    counts = set()
    for commands in sessions:
        assert " data=" not in commands and "commands=" in commands, commands
        found = re.search(r"\bbdat=(\d+)\b", commands)
        assert found is not None, commands
        counts.add(int(found.group(1)))
    if chunks:
        assert counts == {chunks}
    else:  # a body of 500 bytes and the headers, 100 bytes at a time
        assert len(counts) == 1 and min(counts) > 5, counts


def test_smtputf8_with_utf8_sender_and_recipient(postfix: Peer) -> None:
    since = mark(postfix)
    proc = run("--smtputf8", "-f", "ü@exämple.net", "-t", "ö@exämple.org", "-s", "2", "-m",
               "20", postfix.smtp)  # fmt: skip
    ok(proc, 20)
    got = received(postfix, since, 20)
    assert list(got.sent.values()) == [1] * 20
    assert got.text.count("from=<ü@exämple.net>, size=") == 20
    assert len(re.findall(r"to=<ö@exämple\.org>, .* status=sent", got.text)) == 20
    # without SMTPUTF8 on MAIL, Postfix refuses the address
    refused = run("-f", "ü@exämple.net", "-t", "ö@exämple.org", "-m", "1", postfix.smtp)
    assert refused.returncode == 1
    assert "fatal: sender rejected: 501 5.1.7" in refused.stderr, refused.stderr


def test_dsn_parameters_are_accepted_and_honoured(postfix: Peer) -> None:
    """NOTIFY=SUCCESS: Postfix sends a delivery notice for each message."""
    since = mark(postfix)
    proc = run("-v", "--dsn-notify", "SUCCESS,FAILURE", "--dsn-ret", "HDRS", "--dsn-envid",
               "x", "--dsn-orcpt", "-f", "a@example.net", "-t", "b@example.org", "-d", "-m",
               "20", postfix.smtp)  # fmt: skip
    ok(proc, 20)
    trace = proc.stderr
    assert trace.count("MAIL FROM:<a@example.net> RET=HDRS ENVID=x\n") == 20
    rcpt = "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org\n"
    assert trace.count(rcpt) == 20
    assert trace.count("<<< 250 2.1.0 Ok\n") == 20 and trace.count("<<< 250 2.1.5 Ok\n") == 20
    got = received(postfix, since, 20)
    assert list(got.sent.values()) == [1] * 20
    notices = re.findall(r": ([0-9A-F]+): sender delivery status notification: ", got.text)
    assert sorted(notices) == sorted(got.sent)


# -- Postfix: XCLIENT, XFORWARD, PROXY -----------------------------------------------------


def test_xclient_an_address_per_connection(postfix: Peer) -> None:
    since = mark(postfix)
    proc = run("--xclient", "--address-per-connection", "-m", "5", postfix.smtp)
    ok(proc, 5)
    got = received(postfix, since, 5)
    assert list(got.sent.values()) == [1] * 5
    assert len(set(got.clients)) == 5 and in_network(got.clients, "198.18.0.0/15"), got.text
    for client in got.clients:  # the whole session is that client's, to its end
        assert f"disconnect from unknown[{client}] ehlo=2 xclient=" in got.text


def test_xclient_from_an_ipv6_pool(postfix: Peer) -> None:
    if not ipv6_available():
        pytest.skip("no IPv6 here: Postfix (inet_protocols = all) takes no IPv6 address")
    since = mark(postfix)
    proc = run("--xclient", "--address-per-connection", "--client-addresses", "2001:db8::/64",
               "-s", "2", "-m", "6", postfix.smtp)  # fmt: skip
    ok(proc, 6)
    got = received(postfix, since, 6)
    assert list(got.sent.values()) == [1] * 6
    assert len(set(got.clients)) == 6 and in_network(got.clients, "2001:db8::/64"), got.text
    assert "client=unknown[2001:db8::1]" in got.text


def test_xforward_names_the_client_of_each_message(postfix: Peer) -> None:
    since = mark(postfix)
    proc = run("--xforward", "--client-addresses", "198.18.7.0/24", "-s", "2", "-d", "-m",
               "10", postfix.smtp)  # fmt: skip
    ok(proc, 10)
    got = received(postfix, since, 10)
    assert list(got.sent.values()) == [1] * 10
    assert got.clients == ["127.0.0.1"] * 10  # the connection's own client
    assert len(got.forwarded) == 10 and len(set(got.forwarded)) == 2  # one per session
    assert in_network(got.forwarded, "198.18.7.0/24"), got.text
    assert "client=unknown[127.0.0.1], orig_client=unknown[198.18.7." in got.text


@pytest.mark.parametrize(
    ("version", "pool"),
    [("1", "198.19.1.0/24"), ("2", "198.19.2.0/24"), ("2", "2001:db8:2::/64")],
    ids=["v1", "v2", "v2-ipv6"],
)
def test_proxy_protocol(postfix: Peer, version: str, pool: str) -> None:
    if ":" in pool and not ipv6_available():
        pytest.skip("no IPv6 here: Postfix (inet_protocols = all) takes no IPv6 address")
    since = mark(postfix)
    proc = run("--proxy-protocol", version, "--address-per-connection", "--client-addresses",
               pool, "-s", "2", "-m", "10", postfix.proxy)  # fmt: skip
    ok(proc, 10)
    got = received(postfix, since, 10)
    assert list(got.sent.values()) == [1] * 10
    assert len(set(got.clients)) == 10 and in_network(got.clients, pool), got.text
    connects = re.findall(r" postfix/proxy/smtpd\[\d+\]: connect from unknown\[(.+)\]$",
                          got.text, re.M)  # fmt: skip
    assert sorted(connects) == sorted(got.clients)
    assert "warning" not in got.text


# -- Dovecot LMTP: BDAT and a reply per recipient ------------------------------------------

MESSAGE = b"Subject: lmtp %s\r\n\r\n.starts with a dot\r\nbody\r\n"


@pytest.mark.parametrize(
    ("pipelining", "chunk_size"),
    [(False, 0), (True, 0), (True, 16)],
    ids=["bdat", "pipelined-bdat", "pipelined-bdat-chunks"],
)
def test_lmtp_bdat_gets_a_reply_per_accepted_recipient(
    lmtp: LmtpPeer, pipelining: bool, chunk_size: int
) -> None:
    tag = f"{'p' if pipelining else 's'}{chunk_size}"
    recipients = [f"ok1-{tag}@example.com", f"reject-{tag}@example.com", f"ok2-{tag}@example.com"]
    end_of_data: list[Reply | None] = []

    def on_stage(stage: str, *args: object) -> None:
        if stage == stages.END_OF_DATA:
            end_of_data.append(args[3])  # type: ignore[arg-type]

    client = SmtpClient(f"lmtp://{lmtp.lmtp}", timeout=10, on_stage=on_stage)
    client.connect()
    assert client.lhlo("me.example").code == 250
    assert "CHUNKING" in client.session.extensions and "PIPELINING" in client.session.extensions
    message = MESSAGE % tag.encode()
    transaction = client.transaction(
        "sender@example.net", recipients, message, writer=BdatWriter(chunk_size),
        pipelining=pipelining,
    )  # fmt: skip
    quit_reply = client.quit()
    assert quit_reply is not None and quit_reply.code == 221  # no reply left over before it
    assert transaction.delivered
    assert transaction.accepted == [recipients[0], recipients[2]]
    assert [(r, reply.code) for r, reply in transaction.rejected] == [(recipients[1], 550)]
    assert [r.code for r in transaction.replies] == [250, 250]
    assert f"<{recipients[0]}>" in transaction.replies[0].text
    assert f"<{recipients[2]}>" in transaction.replies[1].text
    assert [r.code if r else 0 for r in end_of_data] == [250, 250]
    for recipient in (recipients[0], recipients[2]):
        (stored,) = lmtp.messages(recipient)
        content = stored.read_bytes()
        assert f"Subject: lmtp {tag}".encode() in content
        assert b"\n.starts with a dot\n" in content  # BDAT: no dot-stuffing
    assert lmtp.messages(recipients[1]) == []


def test_the_command_speaks_lmtp_with_bdat(lmtp: LmtpPeer) -> None:
    before = len(lmtp.all_messages())
    proc = run("-L", "--bdat", "-r", "3", "-m", "5", "-t", "cmd@example.com", lmtp.lmtp)
    ok(proc, 5)
    assert "recipients: 15 accepted, 0 refused" in proc.stderr
    assert len(lmtp.all_messages()) - before == 15
    for recipient in ("cmd@example.com", "2cmd@example.com", "3cmd@example.com"):
        assert len(lmtp.messages(recipient)) == 5


def test_the_command_pipelines_bdat_past_a_refused_recipient(lmtp: LmtpPeer) -> None:
    """``-r 3 -t reject@...``: 3reject@, 2reject@ and reject@, the last one refused at
    RCPT; -A goes on: each message is delivered to the other two."""
    proc = run("-L", "--bdat", "--pipelining", "-A", "-s", "2", "-d", "-r", "3", "-m", "5",
               "-t", "reject@example.com", lmtp.lmtp)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = "recipients: 10 accepted, 5 refused; 5 messages accepted for only some"
    assert summary in proc.stderr
    assert len(lmtp.messages("3reject@example.com")) == 5
    assert len(lmtp.messages("2reject@example.com")) == 5
    assert lmtp.messages("reject@example.com") == []
