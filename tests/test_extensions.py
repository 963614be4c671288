"""PIPELINING, CHUNKING/BDAT, SIZE, BODY, SMTPUTF8 and DSN on the wire: what one write
carries, how replies are matched, each parameter as sent, and what the sink does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from servers import LOCUST_SMTP, our_sink, read_line, run_users, scripted_server, stage_rows

from locust_smtp import SmtpClient, data_payload
from locust_smtp.protocol import stages
from locust_smtp.protocol._content import message_size
from locust_smtp.protocol._errors import NotOffered, TransientReplyError
from locust_smtp.protocol._extensions import Extensions
from locust_smtp.protocol._replies import Reply
from locust_smtp.protocol._writers import BdatWriter
from locust_smtp.protocol.mail_options import MailOptions

MESSAGE = b"Subject: hi\r\n\r\n.starts with a dot\r\nbody\r\n"
EHLO = b"250-test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 DSN\r\n"


def _offered(*keywords: str) -> Extensions:
    lines = "\n".join(["test", *keywords])
    return Extensions.from_reply(Reply(250, lines, tuple(lines.split("\n"))))


def test_one_write_carries_mail_every_rcpt_and_data_and_replies_match_in_order() -> None:
    """The server reads once: a client waiting for MAIL's reply would stall it. A refused
    RCPT in the middle of the group: the others still count, DATA still answered."""
    received: list[bytes] = []

    def server(sock: Any) -> None:
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        read_line(sock, buf)
        sock.sendall(EHLO)
        received.append(sock.recv(65536))  # the group, in one piece
        sock.sendall(b"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n")
        while not bytes(buf).endswith(b"\r\n.\r\n"):
            buf += sock.recv(65536)
        sock.sendall(b"250 queued\r\n")
        read_line(sock, bytearray())

    with scripted_server(server) as address:
        client = SmtpClient(address, timeout=10)
        client.connect()
        client.ehlo("me")
        result = client.send_mail(
            "a@x", ["b@y", "c@y", "d@y"], data_payload(MESSAGE), pipelining=True
        )
        client.close()
    assert received == [
        b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nRCPT TO:<d@y>\r\nDATA\r\n"
    ]
    assert result.accepted == ("b@y", "d@y")
    assert [(r, reply.code) for r, reply in result.rejected] == [("c@y", 550)]


def test_pipelined_bdat_goes_with_the_group_and_lmtp_answers_per_recipient() -> None:
    """MAIL, the RCPTs and BDAT n LAST with its bytes in one write; LMTP: one reply per
    accepted recipient after LAST (the refused one gets none)."""
    received: list[bytes] = []
    payload = MESSAGE

    def server(sock: Any) -> None:
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        read_line(sock, buf)
        sock.sendall(EHLO)
        expected = b"BDAT %d LAST\r\n" % len(payload) + payload
        data = b""
        while not data.endswith(expected):
            data += sock.recv(65536)
        received.append(data)
        sock.sendall(b"250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n")
        sock.sendall(b"250 2.0.0 <b@y> delivered\r\n452 4.2.2 <d@y> over quota\r\n")
        read_line(sock, bytearray())

    seen: list[tuple[str, int]] = []
    with scripted_server(server) as address:
        client = SmtpClient(
            f"lmtp://{address}",
            timeout=10,
            on_stage=lambda stage, *a: seen.append((stage, a[3].code if a[3] else 0)),
        )
        client.connect()
        client.hello("me")
        transaction = client.transaction(
            "a@x", ["b@y", "c@y", "d@y"], payload, writer=BdatWriter(), pipelining=True
        )
        client.close()
    assert received == [
        b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nRCPT TO:<d@y>\r\n"
        + b"BDAT %d LAST\r\n" % len(payload)
        + payload
    ]
    assert [r.code for r in transaction.replies] == [250, 452]
    assert transaction.delivered
    assert [s for s in seen if s[0] == stages.END_OF_DATA] == [
        (stages.END_OF_DATA, 250),
        (stages.END_OF_DATA, 452),
    ]


def test_three_bdat_chunks_reach_the_sink_as_sent(tmp_path: Path) -> None:
    record = tmp_path / "record"
    message = b"Subject: chunks\r\n\r\n" + b"x" * 50 + b"\r\n.no stuffing\r\n"
    with our_sink(record=record) as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("me")
        replies: list[Reply] = []
        client.on_stage = lambda stage, *a: replies.append(a[3]) if stage == stages.BDAT else None
        transaction = client.transaction("a@x", ["b@y"], message, writer=BdatWriter(30))
        client.quit()
    assert transaction.delivered
    sent = (record / "000001.client").read_bytes()
    chunks = [message[0:30], message[30:60], message[60:]]
    assert (
        b"BDAT 30\r\n" + chunks[0] + b"BDAT 30\r\n" + chunks[1]
        + b"BDAT %d LAST\r\n" % len(chunks[2]) + chunks[2]
    ) in sent  # fmt: skip
    assert [r.code for r in replies] == [250, 250]  # the chunks before the last
    assert sink.counts["messages"] == 1


def test_every_parameter_on_the_wire(tmp_path: Path) -> None:
    """SIZE, BODY, SMTPUTF8, RET, ENVID (xtext) on MAIL; NOTIFY and ORCPT on each RCPT."""
    record = tmp_path / "record"
    options = MailOptions(
        pipelining="on",
        size="on",
        body="8BITMIME",
        smtputf8="on",
        dsn_notify="success,failure",
        dsn_ret="hdrs",
        dsn_envid="id+1=x",
        dsn_orcpt=True,
    ).check()
    with our_sink(record=record) as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("me")
        plan = options.plan(client.session.extensions)
        payload = data_payload(MESSAGE)
        client.send_mail(
            "ä@x",
            ["b@y", "ü+1@y"],
            payload,
            mail_params=plan.mail_params_for(message_size(payload)),
            rcpt_params=plan.rcpt_params,
            pipelining=plan.pipelining,
        )
        client.quit()
    sent = (record / "000001.client").read_bytes()
    assert (
        f"MAIL FROM:<ä@x> SIZE={len(MESSAGE)} BODY=8BITMIME SMTPUTF8 RET=HDRS "
        "ENVID=id+2B1+3Dx\r\n"
        "RCPT TO:<b@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y\r\n"
        "RCPT TO:<ü+1@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;+C3+BC+2B1@y\r\n"
        "DATA\r\n"
    ).encode() in sent
    assert sink.counts["messages"] == 1


@pytest.mark.parametrize(
    ("options", "offered", "keyword"),
    [
        (MailOptions(chunking="on"), ("PIPELINING",), "CHUNKING"),
        (MailOptions(pipelining="on"), ("CHUNKING",), "PIPELINING"),
        (MailOptions(dsn_notify="NEVER"), ("PIPELINING",), "DSN"),
        (MailOptions(smtputf8="on"), (), "SMTPUTF8"),
        (MailOptions(body="8BITMIME"), (), "8BITMIME"),
        (MailOptions(chunking="auto", body="BINARYMIME"), ("BINARYMIME",), "CHUNKING"),
    ],
)
def test_what_is_asked_for_but_not_offered_is_named(
    options: MailOptions, offered: tuple[str, ...], keyword: str
) -> None:
    with pytest.raises(NotOffered) as info:
        options.check().plan(_offered(*offered))
    assert info.value.keyword == keyword
    assert repr(info.value) == f"NotOffered('MAIL', '{keyword}')"


def test_auto_uses_what_is_offered_and_force_uses_it_anyway() -> None:
    auto = MailOptions(pipelining="auto", chunking="auto", size="auto").check()
    assert auto.plan(_offered("PIPELINING", "CHUNKING", "SIZE 1000")).pipelining
    plain = auto.plan(_offered())
    assert (plain.pipelining, plain.writer.chunked, plain.size) == (False, False, False)
    forced = MailOptions(pipelining="force", chunking="force").check().plan(_offered())
    assert forced.pipelining and forced.writer.chunked


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (MailOptions(pipelining="yes"), "pipelining: 'yes'"),
        (MailOptions(body="BINARYMIME"), "BINARYMIME needs CHUNKING"),
        (MailOptions(dsn_notify="NEVER,SUCCESS"), "DSN NOTIFY"),
        (MailOptions(dsn_ret="ALL"), "DSN RET"),
    ],
)
def test_bad_settings_are_named(options: MailOptions, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        options.check()


def _command(*args: str) -> Any:
    return subprocess.run([*LOCUST_SMTP, *args], capture_output=True, text=True, timeout=60)


def test_the_command_pipelines_and_chunks(tmp_path: Path) -> None:
    record = tmp_path / "record"
    with our_sink(record=record) as sink:
        proc = _command("--pipelining", "--bdat", "--size", "-r", "2", "-m", "3", sink.address)
    assert proc.returncode == 0, proc.stderr
    first = (record / "000001.client").read_bytes()
    body = first.split(b" LAST\r\n", 1)[1].rsplit(b"QUIT\r\n", 1)[0]
    assert first.startswith(b"EHLO ")
    assert b"MAIL FROM:<foo@" in first and b"> SIZE=%d\r\nRCPT TO:<" % len(body) in first
    assert b"\r\nBDAT %d LAST\r\n" % len(body) in first
    assert sink.counts["messages"] == 3 and sink.counts["recipients"] == 6


def test_the_command_says_what_the_server_does_not_offer() -> None:
    with our_sink("--hide", "CHUNKING") as sink:
        proc = _command("--bdat", "-m", "2", sink.address)
    assert proc.returncode == 1
    assert "fatal: CHUNKING not offered by the server" in proc.stderr
    assert sink.counts["messages"] == 0


def test_a_user_with_chunking_required_fails_each_message_clearly() -> None:

    from locust_smtp import SmtpUser

    with our_sink("--hide", "CHUNKING") as sink:

        class Chunker(SmtpUser):
            host = sink.address
            chunking = "on"

        environment = run_users(Chunker, 1, 2)
    errors = {e.name: repr(e.error) for e in environment.stats.errors.values()}
    assert errors["MAIL"] == "NotOffered('MAIL', 'CHUNKING')"
    assert errors["message"] == "NotOffered('MAIL', 'CHUNKING')"
    assert sink.counts["messages"] == 0


def test_a_user_pipelines_with_ehlo_and_bdat_against_the_sink(tmp_path: Path) -> None:

    from locust_smtp import SmtpUser

    record = tmp_path / "record"
    with our_sink(record=record) as sink:

        class Fast(SmtpUser):
            host = sink.address
            hello_command = "EHLO"  # pipelining and SIZE are "auto": they need EHLO
            chunking = "on"
            bdat_chunk_size = 64
            reuse_connection = True
            recipients_per_message = 2

        environment = run_users(Fast, 1, 5)
    rows = stage_rows(environment)
    assert rows["message"] == (5, 0)
    assert rows["RCPT"] == (10, 0)
    assert "DATA" not in rows and rows["BDAT"][1] == 0
    sent = (record / "000001.client").read_bytes()
    assert sent.count(b" LAST\r\n") == 5
    assert b"> SIZE=" in sent
    assert sink.counts["messages"] == 5


def test_the_sink_refuses_what_it_hides(tmp_path: Path) -> None:
    with our_sink("--hide", "DSN,SMTPUTF8") as sink:
        client = SmtpClient(sink.address)
        client.connect()
        ehlo = client.ehlo("me").text
        refused = client.mail("a@x", ["SMTPUTF8"])
        dsn = client.mail("a@x", ["RET=FULL"])
        client.quit()
    assert "DSN" not in ehlo and "SMTPUTF8" not in ehlo and "CHUNKING" in ehlo
    assert (refused.code, dsn.code) == (555, 555)
    bad = subprocess.run(
        [sys.executable, "-m", "locust_smtp.sink", "--hide", "NOPE", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 1 and "unknown extension NOPE" in bad.stderr


def test_every_rcpt_refused_in_a_group_sends_no_content() -> None:
    """RFC 2920 §3.1: DATA got 354 although no RCPT was accepted: a lone "." ends it."""
    after_354: list[bytes] = []

    def server(sock: Any) -> None:
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        read_line(sock, buf)
        sock.sendall(EHLO)
        for _ in range(3):  # MAIL, RCPT, DATA
            read_line(sock, buf)
        sock.sendall(b"250 ok\r\n550 5.1.1 no\r\n354 go\r\n")
        after_354.append(read_line(sock, buf))
        sock.sendall(b"554 5.5.1 no valid recipients\r\n")
        read_line(sock, buf)

    with scripted_server(server) as address:
        client = SmtpClient(address, timeout=10)
        client.connect()
        client.ehlo("me")
        transaction = client.transaction("a@x", ["b@y"], data_payload(MESSAGE), pipelining=True)
        client.close()
    assert after_354 == [b".\r\n"]
    assert not transaction.delivered and transaction.failed is not None
    assert transaction.failed.stage == stages.RCPT


def test_a_421_in_the_middle_of_a_group_ends_it_without_waiting() -> None:
    """The server closes after MAIL's 421: the replies still owed never come; the
    transaction ends at once, undelivered, and the client hangs up (no timeout)."""

    def server(sock: Any) -> None:
        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        read_line(sock, buf)
        sock.sendall(EHLO)
        read_line(sock, buf)
        sock.sendall(b"421 4.3.2 shutting down\r\n")
        sock.recv(65536)  # the client goes away: nothing more to say

    with scripted_server(server) as address:
        client = SmtpClient(address, timeout=30)
        client.connect()
        client.ehlo("me")
        with pytest.raises(TransientReplyError) as info:
            client.send_mail("a@x", ["b@y", "c@y"], data_payload(MESSAGE), pipelining=True)
    assert repr(info.value) == "TransientReplyError('MAIL', 421, '4.3.2')"
    assert not client.connected


@pytest.mark.parametrize("pipelining", [(), ("--pipelining",)])
def test_the_trace_shows_bdat_commands_not_their_chunks(pipelining: tuple[str, ...]) -> None:
    with our_sink() as sink:
        proc = _command("-v", "--bdat", "--bdat-chunk-size", "100", "-l", "250", "-m", "1",
                        *pipelining, sink.address)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sent = [line.split(": ", 1)[1] for line in proc.stderr.splitlines()
            if line.startswith("locust-smtp: ") and "<<<" not in line]  # fmt: skip
    assert sent[1:3] == ["MAIL FROM:<" + sent[1][11:], "RCPT TO:<" + sent[2][9:]]
    assert [line for line in sent if line.startswith("BDAT")] == [
        "BDAT 100",
        "BDAT 100",
        "BDAT 100",
        sent[6],
    ]
    assert sent[6].endswith(" LAST") and sent[7] == "QUIT"
    assert not [line for line in sent if "XXXX" in line or line == "."]


def test_binarymime_content_goes_as_it_is(tmp_path: Path) -> None:
    """BODY=BINARYMIME over BDAT: bare LFs, NULs, lines starting with a dot, no final
    CRLF: the sink receives exactly those bytes (no stuffing, no "." line)."""
    record = tmp_path / "record"
    content = b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\n.\r\n..\xff"
    options = MailOptions(chunking="on", body="BINARYMIME").check()
    with our_sink(record=record) as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("me")
        plan = options.plan(client.session.extensions)
        transaction = client.transaction(
            "a@x", ["b@y"], content, mail_params=plan.mail_params, writer=plan.writer
        )
        client.quit()
    assert transaction.delivered
    sent = (record / "000001.client").read_bytes()
    assert b"MAIL FROM:<a@x> BODY=BINARYMIME\r\n" in sent
    assert b"BDAT %d LAST\r\n" % len(content) + content + b"QUIT\r\n" in sent
    assert sink.counts["messages"] == 1


@pytest.mark.parametrize("lmtp", [(), ("-L",)])
@pytest.mark.parametrize("pipelining", [(), ("--pipelining",)])
def test_a_refused_bdat_chunk_fails_the_message_at_once(
    lmtp: tuple[str, ...], pipelining: tuple[str, ...]
) -> None:
    """The sink refuses the first chunk of each message: the rest is read and refused,
    the last chunk gets one reply (LMTP too), -A goes on, nothing waits for a timeout."""
    with our_sink(*lmtp, "-r", "bdat", "--fault-every", "1") as sink:
        proc = _command(*lmtp, *pipelining, "--bdat", "--bdat-chunk-size", "100", "-l", "300",
                        "-r", "2", "-A", "-m", "3", "--timeout", "20", sink.address)  # fmt: skip
        fatal = _command(*lmtp, *pipelining, "--bdat", "--bdat-chunk-size", "100", "-l", "300",
                         "-m", "1", "--timeout", "20", sink.address)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "chunk rejected: 450 4.3.0" in proc.stderr
    assert "0 accepted" in proc.stderr and "timeout" not in proc.stderr
    assert " 502 " not in proc.stderr  # the chunks' bytes were never taken for commands
    assert fatal.returncode == 1 and "fatal: chunk rejected: 450 4.3.0" in fatal.stderr
    assert sink.counts["messages"] == 0


def test_a_user_whose_xforward_is_refused_counts_each_message() -> None:

    from locust_smtp import SmtpUser

    for fault in ("-r", "-Q"):
        with our_sink(fault, "xforward", "--fault-every", "2") as sink:

            class Forwarder(SmtpUser):
                host = sink.address
                client_identity = "xforward"
                reuse_connection = True

            environment = run_users(Forwarder, 1, 6)
        rows = {
            n: (e.num_requests, e.num_failures) for (n, _), e in environment.stats.entries.items()
        }
        assert rows["message"] == (6, 3), (fault, rows)
        assert rows["XFORWARD"][1] == 3
        errors = [repr(e.error) for e in environment.stats.errors.values()]
        assert not [e for e in errors if "ConnectionLost" in e], errors
        assert sink.counts["messages"] == 3


PIPELINING_EHLO = b"250-test\r\n250 PIPELINING\r\n"
GROUP = b"MAIL FROM:<foo@"


def _until(sock: Any, buf: bytearray, end: bytes) -> bytes:
    """Read until ``buf`` ends with ``end``; returns the reads that did it, joined with |."""
    reads = []
    while not bytes(buf).endswith(end):
        data = sock.recv(65536)
        if not data:
            break
        reads.append(data)
        buf += data
    return b"|".join(reads)


def _first_group(sock: Any, buf: bytearray) -> bytes:
    """Greeting, EHLO with PIPELINING, the first MAIL, RCPT and DATA answered 250, 250,
    354; returns the write that carried them."""
    sock.sendall(b"220 hi\r\n")
    read_line(sock, buf)
    sock.sendall(PIPELINING_EHLO)
    group = _until(sock, buf, b"DATA\r\n")
    buf.clear()
    sock.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
    return group


def test_the_command_pipelines_across_messages_with_d() -> None:
    """-d --pipelining: the "." of one message and the next message's MAIL, RCPT and DATA
    go in one write (RFC 2920: content may open a group); the last message's "." goes
    alone, and each reply is booked to its own message."""
    writes: list[bytes] = []

    def server(sock: Any) -> None:
        buf = bytearray()
        writes.append(_first_group(sock, buf))
        for reply in (b"250 one\r\n250 ok\r\n250 ok\r\n354 go\r\n",) * 2 + (b"250 last\r\n",):
            writes.append(_until(sock, buf, b"DATA\r\n" if b"354" in reply else b"\r\n.\r\n"))
            buf.clear()
            sock.sendall(reply)
        read_line(sock, buf)  # QUIT
        sock.sendall(b"221 bye\r\n")

    with scripted_server(server) as address:
        proc = _command("-s", "1", "-d", "--pipelining", "-m", "3", address)
    assert proc.returncode == 0, proc.stderr
    assert "3 messages in" in proc.stderr and "3 accepted, 0 rejected, 0 failed" in proc.stderr
    assert [w.count(b"|") for w in writes] == [0, 0, 0, 0], writes  # each arrived in one read
    assert writes[0].startswith(GROUP)
    for write in writes[1:3]:
        content, dot, group = write.partition(b"\r\n.\r\n")
        assert dot and b"La de da" in content and group.startswith(GROUP), write
    assert writes[3].endswith(b"\r\n.\r\n") and GROUP not in writes[3]


def test_a_421_to_a_dot_with_the_next_message_in_flight_sends_that_one_again() -> None:
    """-A: the server answers the first "." with 421 and hangs up, so the MAIL, RCPT and
    DATA written after it are never answered: that message was not attempted, and goes
    again on a new connection. Exactly -m messages, each reported once."""
    connections: list[int] = []

    def server(sock: Any) -> None:
        connections.append(1)
        first = len(connections) == 1
        buf = bytearray()
        _first_group(sock, buf)
        if first:
            _until(sock, buf, b"DATA\r\n")  # the "." and the next MAIL, RCPT, DATA
            sock.sendall(b"421 4.3.2 going down\r\n")
            return
        _until(sock, buf, b"\r\n.\r\n")
        sock.sendall(b"250 queued\r\n")
        read_line(sock, bytearray())
        sock.sendall(b"221 bye\r\n")

    with scripted_server(server) as address:
        proc = _command("-A", "-s", "1", "-d", "--pipelining", "-m", "2", address)
    assert proc.returncode == 0, proc.stderr
    assert "2 messages in" in proc.stderr, proc.stderr
    assert "1 accepted, 1 rejected, 0 failed" in proc.stderr, proc.stderr
    assert len(connections) == 2


def test_a_refused_dot_with_the_next_message_in_flight_is_fatal_for_that_one_only() -> None:
    """Without -A a refused "." ends the run, as smtp-source's: the message whose commands
    went with it was never answered, so it is not counted as attempted."""

    def server(sock: Any) -> None:
        buf = bytearray()
        _first_group(sock, buf)
        _until(sock, buf, b"DATA\r\n")
        sock.sendall(b"554 5.7.1 no thanks\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        read_line(sock, bytearray())

    with scripted_server(server) as address:
        proc = _command("-s", "1", "-d", "--pipelining", "-m", "5", address)
    assert proc.returncode == 1
    assert "fatal: end of data rejected: 554 5.7.1 no thanks" in proc.stderr, proc.stderr
    assert "1 messages in" in proc.stderr and "0 accepted, 1 rejected" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_dot_never_answered_with_the_next_message_in_flight_times_out_once() -> None:
    """The server goes silent after the "." that carried the next message's commands:
    that message times out (fatal, as smtp-source); the next one was never answered, so
    it is not attempted; no hang past --timeout."""

    def server(sock: Any) -> None:
        buf = bytearray()
        _first_group(sock, buf)
        _until(sock, buf, b"DATA\r\n")
        read_line(sock, bytearray())  # silent until the client gives up

    with scripted_server(server) as address:
        proc = _command("--timeout", "1", "-s", "1", "-d", "--pipelining", "-m", "4", address)
    assert proc.returncode == 1
    assert "fatal: timeout while sending message" in proc.stderr, proc.stderr
    assert "1 messages in" in proc.stderr and "0 accepted, 0 rejected, 1 failed" in proc.stderr
