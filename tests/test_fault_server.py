"""The fault-injecting test server (fault_server.py), driven with plain blocking sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from fault_server import (
    BYE,
    CLOSE_421,
    DATA_OK,
    EHLO_REPLY,
    GREETING,
    MAIL_OK,
    NEED_MAIL,
    NEED_RCPT,
    OK,
    RCPT_OK,
    Fault,
    FaultServer,
    blackhole_address,
    fault_server,
)
from servers import ipv6_available

ENVELOPE = b"EHLO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
ENVELOPE_REPLIES = EHLO_REPLY + MAIL_OK + RCPT_OK + DATA_OK
MESSAGE = b"Subject: t\r\n\r\nhello\r\n..dot\r\n.\r\n"


class Client:
    """A blocking client socket (every read with a timeout) and what it has read."""

    def __init__(self, address: str, timeout: float = 2.0) -> None:
        if address.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address[5:])
        else:
            host, _, port = address.rpartition(":")
            self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, count: int) -> bytes:
        """Exactly ``count`` bytes (fewer only at EOF)."""
        while len(self.buffer) < count:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buffer += data
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    def reply(self) -> bytes:
        """One whole reply, multi-line or not, as sent."""
        out = b""
        while True:
            while b"\n" not in self.buffer:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError(out + self.buffer)
                self.buffer += data
            line, _, self.buffer = self.buffer.partition(b"\n")
            out += line + b"\n"
            if line[3:4] != b"-":
                return out

    def rest(self) -> bytes:
        """Everything up to EOF."""
        while True:
            data = self.sock.recv(65536)
            if not data:
                out, self.buffer = self.buffer, b""
                return out
            self.buffer += data

    def quiet(self, seconds: float = 0.3) -> bool:
        """Whether nothing at all (no bytes, no EOF) arrives for ``seconds``."""
        self.sock.settimeout(seconds)
        try:
            self.buffer += self.sock.recv(1)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(2.0)
        return False

    def close(self) -> None:
        self.sock.close()


def until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``predicate`` (the sleep yields to the server's greenlets), bounded."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def dialogue(server: FaultServer, *commands: bytes) -> list[bytes]:
    """The greeting, then one reply per command, sent one at a time."""
    client = Client(server.address)
    replies = [client.reply()]
    for command in commands:
        client.send(command)
        replies.append(client.reply())
    client.close()
    return replies


# ---------------------------------------------------------------- the protocol


def test_a_whole_smtp_dialogue() -> None:
    with fault_server() as server:
        client = Client(server.address)
        assert client.reply() == GREETING == b"220 fault.test ESMTP\r\n"
        client.send(b"EHLO me\r\n")
        assert client.reply() == (
            b"250-fault.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
        )
        for command, reply in (
            (b"MAIL FROM:<a@x>\r\n", b"250 2.1.0 Ok\r\n"),
            (b"RCPT TO:<b@y>\r\n", b"250 2.1.5 Ok\r\n"),
            (b"RCPT TO:<c@y>\r\n", b"250 2.1.5 Ok\r\n"),
            (b"DATA\r\n", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        ):
            client.send(command)
            assert client.reply() == reply
        client.send(MESSAGE)
        assert client.reply() == b"250 2.0.0 Ok: queued as 1\r\n"
        for command in (b"RSET\r\n", b"NOOP\r\n", b"HELO me\r\n", b"VRFY x\r\n"):
            client.send(command)
        assert client.reply() == OK
        assert client.reply() == OK
        assert client.reply() == b"250 fault.test\r\n"
        assert client.reply() == b"502 5.5.2 Error: command not recognized\r\n"
        client.send(b"QUIT\r\n")
        assert client.reply() == BYE == b"221 2.0.0 Bye\r\n"
        assert client.rest() == b""  # closed after the 221
        client.close()
        assert until(lambda: server.open_connections == 0)
        assert (server.connections, server.messages, server.recipients) == (1, 1, 2)
        assert (server.deliveries, server.faults) == (0, 0)
        assert server.commands == {
            "connect": 1,
            "ehlo": 1,
            "mail": 1,
            "rcpt": 2,
            "data": 1,
            ".": 1,
            "rset": 1,
            "noop": 1,
            "helo": 1,
            "unknown": 1,
            "quit": 1,
        }


def test_pipelined_commands_in_one_write_and_content_in_many() -> None:
    with fault_server(record=True) as server:
        client = Client(server.address)
        client.reply()
        client.send(ENVELOPE)
        assert client.read(len(ENVELOPE_REPLIES)) == ENVELOPE_REPLIES
        content = b"line one\r\n.\r\r\n..\r\n\r\n.x\r\n.\r\n"
        for i in range(len(content)):  # one byte per write
            client.send(content[i : i + 1])
            time.sleep(0.001)
        assert client.reply() == b"250 2.0.0 Ok: queued as 1\r\n"
        # an empty message, the next transaction and QUIT, all in one write
        client.send(b"MAIL FROM:<>\r\nRCPT TO:<c@y>\r\nDATA\r\n.\r\nMAIL FROM:<>\r\nQUIT\r\n")
        expected = MAIL_OK + RCPT_OK + DATA_OK + b"250 2.0.0 Ok: queued as 2\r\n" + MAIL_OK + BYE
        assert client.rest() == expected
        client.close()
        assert server.messages == 2
        assert until(lambda: server.open_connections == 0)
        assert server.received == [
            ENVELOPE
            + content
            + b"MAIL FROM:<>\r\nRCPT TO:<c@y>\r\nDATA\r\n.\r\nMAIL FROM:<>\r\nQUIT\r\n"
        ]


def test_the_state_machine_refuses_out_of_order_commands() -> None:
    with fault_server() as server:
        replies = dialogue(
            server,
            b"RCPT TO:<b@y>\r\n",
            b"DATA\r\n",
            b"MAIL FROM:<a@x>\r\n",
            b"MAIL FROM:<a@x>\r\n",
            b"DATA\r\n",
            b"LHLO me\r\n",
            b"X" * 5000,
        )
        assert replies[1:] == [
            b"503 5.5.1 Error: need MAIL command\r\n",
            b"503 5.5.1 Error: need MAIL command\r\n",
            MAIL_OK,
            b"503 5.5.1 Error: nested MAIL command\r\n",
            b"503 5.5.1 Error: need RCPT command\r\n",
            b"502 5.5.2 Error: command not recognized\r\n",  # LHLO is for LMTP
            b"500 5.5.0 Error: line too long\r\n",
        ]


def test_lmtp_one_reply_per_recipient() -> None:
    with fault_server(lmtp=True) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"EHLO me\r\nLHLO me\r\nMAIL FROM:<a@x>\r\n")
        assert client.reply() == b"502 5.5.2 Error: command not recognized\r\n"
        assert client.reply() == EHLO_REPLY
        assert client.reply() == MAIL_OK
        client.send(b"RCPT TO:<1@y>\r\nRCPT TO:<2@y>\r\nRCPT TO:<3@y>\r\nDATA\r\n" + MESSAGE)
        expected = RCPT_OK * 3 + DATA_OK + b"250 2.0.0 Ok: queued as 1\r\n" * 3
        assert client.read(len(expected)) == expected
        assert client.quiet(0.2)  # three replies, no more
        client.close()
        assert (server.messages, server.deliveries, server.recipients) == (1, 3, 3)


def test_an_lmtp_fault_for_one_recipient_leaves_the_others_their_250() -> None:
    full = b"452 4.2.2 mailbox full\r\n"
    with fault_server(Fault(".", "reply", text=full, recipient=2), lmtp=True) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"LHLO me\r\nMAIL FROM:<a@x>\r\n" + b"RCPT TO:<r@y>\r\n" * 3 + b"DATA\r\n")
        client.read(len(EHLO_REPLY + MAIL_OK + RCPT_OK * 3 + DATA_OK))
        client.send(MESSAGE)
        queued = b"250 2.0.0 Ok: queued as 1\r\n"
        assert client.read(len(queued * 2 + full)) == queued + full + queued
        client.close()
        assert (server.messages, server.deliveries, server.faults) == (1, 2, 1)


def test_lmtp_a_message_refused_for_every_recipient_is_not_counted() -> None:
    refused = b"550 5.1.1 no such user\r\n"
    with fault_server(Fault(".", "reply", text=refused), lmtp=True) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"LHLO me\r\nMAIL FROM:<a@x>\r\n" + b"RCPT TO:<r@y>\r\n" * 2 + b"DATA\r\n")
        client.read(len(EHLO_REPLY + MAIL_OK + RCPT_OK * 2 + DATA_OK))
        client.send(MESSAGE + b"NOOP\r\n")
        assert client.read(len(refused * 2 + OK)) == refused * 2 + OK
        client.close()
        assert (server.messages, server.deliveries, server.faults) == (0, 0, 1)


def test_lmtp_faults_on_two_recipients_and_a_close_after_the_first() -> None:
    faults = (
        Fault(".", "reply", text=b"451 4.3.0 later\r\n", recipient=1),
        Fault(".", "close-421", recipient=2),
    )
    with fault_server(*faults, lmtp=True) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"LHLO me\r\nMAIL FROM:<a@x>\r\n" + b"RCPT TO:<r@y>\r\n" * 3 + b"DATA\r\n")
        client.read(len(EHLO_REPLY + MAIL_OK + RCPT_OK * 3 + DATA_OK))
        client.send(MESSAGE)
        assert client.rest() == b"451 4.3.0 later\r\n" + CLOSE_421  # no reply for the third
        client.close()
        assert (server.messages, server.faults) == (0, 2)


# ---------------------------------------------------------------- the "reply" action


def test_a_refused_mail_leaves_no_transaction() -> None:
    no = b"451 4.3.0 try later\r\n"
    with fault_server(Fault("mail", "reply", text=no, nth=1)) as server:
        replies = dialogue(server, b"MAIL FROM:<a>\r\n", b"RCPT TO:<b>\r\n", b"MAIL FROM:<a>\r\n")
        assert replies[1:] == [no, NEED_MAIL, MAIL_OK]
        assert server.faults == 1


def test_a_refused_rcpt_adds_no_recipient() -> None:
    no = b"550 5.1.1 unknown\r\n"
    with fault_server(Fault("rcpt", "reply", text=no, nth=1)) as server:
        replies = dialogue(
            server,
            b"MAIL FROM:<a>\r\n",
            b"RCPT TO:<b>\r\n",
            b"DATA\r\n",
            b"RCPT TO:<c>\r\n",
            b"DATA\r\n",
        )
        assert replies[1:] == [MAIL_OK, no, NEED_RCPT, RCPT_OK, DATA_OK]
        assert server.recipients == 1


def test_a_refused_data_does_not_enter_data_mode() -> None:
    no = b"554 5.5.1 no valid recipients\r\n"
    with fault_server(Fault("data", "reply", text=no)) as server:
        replies = dialogue(
            server, b"MAIL FROM:<a>\r\n", b"RCPT TO:<b>\r\n", b"DATA\r\n", b"NOOP\r\n"
        )
        assert replies[1:] == [MAIL_OK, RCPT_OK, no, OK]


def test_a_refused_end_of_data_counts_no_message_and_ends_the_transaction() -> None:
    no = b"554 5.7.1 spam\r\n"
    with fault_server(Fault(".", "reply", text=no, nth=1)) as server:
        client = Client(server.address)
        client.reply()
        client.send(ENVELOPE + MESSAGE + b"MAIL FROM:<a>\r\n")
        assert client.read(len(ENVELOPE_REPLIES + no + MAIL_OK)) == ENVELOPE_REPLIES + no + MAIL_OK
        client.close()
        assert (server.messages, server.faults) == (0, 1)


def test_a_positive_reply_text_counts_as_acceptance() -> None:
    faults = (
        Fault("rcpt", "reply", text=b"251 2.1.5 will forward\r\n"),
        Fault("data", "reply", text=b"354 go ahead\r\n"),
        Fault(".", "reply", text=b"250-fine\r\n250 2.0.0 taken\r\n"),
    )
    with fault_server(*faults) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n" + MESSAGE)
        expected = MAIL_OK + b"251 2.1.5 will forward\r\n354 go ahead\r\n"
        expected += b"250-fine\r\n250 2.0.0 taken\r\n"
        assert client.read(len(expected)) == expected
        client.close()
        assert (server.recipients, server.messages, server.faults) == (1, 1, 3)


def test_a_refused_greeting_and_a_multiline_ehlo() -> None:
    ehlo = b"250-fault.test\r\n250 SIZE 10\r\n"
    faults = (
        Fault("connect", "reply", text=b"554 5.3.2 not now\r\n"),
        Fault("ehlo", "reply", text=ehlo),
    )
    with fault_server(*faults) as server:
        assert dialogue(server, b"EHLO me\r\n") == [b"554 5.3.2 not now\r\n", ehlo]


# ---------------------------------------------------------------- the other actions


def test_close_421() -> None:
    with fault_server(Fault("rcpt", "close-421")) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nNOOP\r\n")
        assert client.rest() == MAIL_OK + b"421 4.3.2 fault.test closing (fault)\r\n"
        client.close()
        assert server.commands.get("noop") is None  # nothing read after the fault


def test_hang_up() -> None:
    with fault_server(Fault("mail", "hang-up")) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"MAIL FROM:<a>\r\nNOOP\r\n")
        assert client.rest() == b""
        client.close()
        assert server.faults == 1


def test_silence_keeps_the_connection_open_until_the_client_closes() -> None:
    with fault_server(Fault("noop", "silence")) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"NOOP\r\n")
        assert client.quiet(0.3)
        client.send(b"RSET\r\nQUIT\r\n")  # read and discarded
        assert client.quiet(0.2)
        assert server.open_connections == 1
        client.close()
        assert until(lambda: server.open_connections == 0, timeout=1.0)
        assert "rset" not in server.commands


def test_partial_sends_a_line_without_its_end_then_silence() -> None:
    faults = (Fault("connect", "partial", nth=1), Fault("mail", "partial", text=b"25"))
    with fault_server(*faults) as server:
        client = Client(server.address)
        assert client.read(11) == b"250 partial"
        assert client.quiet(0.3)
        client.close()
        client = Client(server.address)
        assert client.reply() == GREETING
        client.send(b"MAIL FROM:<a>\r\n")
        assert client.read(2) == b"25"
        assert client.quiet(0.2)
        client.close()
        assert until(lambda: server.open_connections == 0, timeout=1.0)


def test_endless_continuation_lines_as_fast_as_they_are_read() -> None:
    with fault_server(Fault("ehlo", "endless")) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"EHLO me\r\n")
        for number in range(1, 501):
            line = b"250-endless line %d\r\n" % number
            assert client.read(len(line)) == line
        client.close()
        assert until(lambda: server.open_connections == 0, timeout=1.0)


def test_endless_with_an_interval_and_a_client_that_stops_reading() -> None:
    with fault_server(Fault("connect", "endless", interval=0.05)) as server:
        client = Client(server.address)
        started = time.monotonic()
        first = b"250-endless line 1\r\n250-endless line 2\r\n250-endless line 3\r\n"
        assert client.read(len(first)) == first
        assert time.monotonic() - started >= 0.09
        client.close()
        assert until(lambda: server.open_connections == 0, timeout=1.0)
    with fault_server(Fault("connect", "endless")) as server:
        client = Client(server.address)
        time.sleep(0.3)  # the server fills the socket buffers, then blocks in send
        assert server.open_connections == 1
        client.close()  # unread data: a reset, which ends the server's send
        assert until(lambda: server.open_connections == 0, timeout=1.0)


def test_trickle_sends_the_normal_reply_a_byte_at_a_time() -> None:
    with fault_server(Fault("noop", "trickle", interval=0.02, nth=1)) as server:
        client = Client(server.address)
        client.reply()
        started = time.monotonic()
        client.send(b"NOOP\r\n")
        assert client.sock.recv(100) == b"2"
        assert client.read(len(OK) - 1) == OK[1:]
        assert time.monotonic() - started >= (len(OK) - 1) * 0.02 * 0.9
        client.send(b"NOOP\r\n")
        assert client.reply() == OK
        client.close()


def test_trickle_with_a_text_and_a_client_that_leaves() -> None:
    text = b"451 4.3.0 slowly\r\n"
    with fault_server(Fault("mail", "trickle", text=text, interval=0.5)) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"MAIL FROM:<a>\r\n")
        assert client.read(1) == b"4"
        started = time.monotonic()
        client.close()
        assert until(lambda: server.open_connections == 0, timeout=1.5)
        assert time.monotonic() - started < 1.0  # not the 9 seconds of the whole reply


def test_huge() -> None:
    with fault_server(Fault("noop", "huge", size=100_000, nth=1), Fault("noop", "huge")) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"NOOP\r\n")
        assert client.reply() == b"250 " + b"x" * 100_000 + b"\r\n"
        client.send(b"NOOP\r\n")
        assert client.reply() == b"250 " + b"x" * 1_000_000 + b"\r\n"
        client.close()


def test_bare_lf_and_nul() -> None:
    faults = (Fault("ehlo", "bare-lf"), Fault("mail", "nul"))
    with fault_server(*faults) as server:
        replies = dialogue(server, b"EHLO me\r\n", b"MAIL FROM:<a>\r\n", b"RCPT TO:<b>\r\n")
        assert replies[1:] == [
            b"250-fault.test\n250-PIPELINING\n250-8BITMIME\n250 ENHANCEDSTATUSCODES\n",
            b"250 \x002.1.0 Ok\r\n",
            RCPT_OK,  # the MAIL went through
        ]


def test_garbage() -> None:
    with fault_server(Fault("connect", "garbage")) as server:
        client = Client(server.address)
        assert client.rest() == b"HTTP/1.1 400 Bad Request\r\n\r\n"
        client.close()
    with fault_server(Fault("quit", "garbage", text=b"\x00\xff junk")) as server:
        client = Client(server.address)
        client.reply()
        client.send(b"QUIT\r\n")
        assert client.rest() == b"\x00\xff junk"
        client.close()


def test_delay_fault_and_server_wide_delay() -> None:
    with fault_server(Fault(".", "delay", delay=0.3)) as server:
        client = Client(server.address)
        client.reply()
        client.send(ENVELOPE)
        client.read(len(ENVELOPE_REPLIES))
        started = time.monotonic()
        client.send(MESSAGE)
        assert client.reply() == b"250 2.0.0 Ok: queued as 1\r\n"
        assert time.monotonic() - started >= 0.28
        client.close()
        assert server.messages == 1  # a delayed reply is still an acceptance
    with fault_server(delay=0.15) as server:
        started = time.monotonic()
        client = Client(server.address)
        assert client.reply() == GREETING
        client.send(b"NOOP\r\nNOOP\r\n")
        assert client.read(len(OK) * 2) == OK * 2
        assert time.monotonic() - started >= 0.43
        client.close()


# ---------------------------------------------------------------- which occurrences


def noops(server: FaultServer, count: int) -> list[bytes]:
    return dialogue(server, *[b"NOOP\r\n"] * count)[1:]


NO = b"451 4.3.0 no\r\n"


def test_every_counts_across_connections() -> None:
    with fault_server(Fault("noop", "reply", text=NO, every=3)) as server:
        assert noops(server, 4) == [OK, OK, NO, OK]
        assert noops(server, 3) == [OK, NO, OK]
        assert server.faults == 2 and server.commands["noop"] == 7


def test_nth_and_times() -> None:
    with fault_server(Fault("noop", "reply", text=NO, nth=2, every=1)) as server:
        assert noops(server, 4) == [OK, NO, OK, OK]
    with fault_server(Fault("noop", "reply", text=NO, times=2)) as server:
        assert noops(server, 4) == [NO, NO, OK, OK]
    with fault_server(Fault("noop", "reply", text=NO, every=2, times=1)) as server:
        assert noops(server, 5) == [OK, NO, OK, OK, OK]
        assert server.faults == 1


def test_the_first_matching_fault_wins() -> None:
    first = Fault("noop", "reply", text=b"450 first\r\n", nth=1)
    then = Fault("noop", "reply", text=b"550 then\r\n", every=2)
    with fault_server(first, then) as server:
        assert noops(server, 3) == [b"450 first\r\n", b"550 then\r\n", OK]


def test_faults_are_checked() -> None:
    for bad in (
        {"on": "vrfy", "action": "reply", "text": NO},
        {"on": "noop", "action": "explode"},
        {"on": "noop", "action": "reply"},
        {"on": "noop", "action": "reply", "text": NO, "every": 0},
        {"on": "rcpt", "action": "reply", "text": NO, "recipient": 1},
    ):
        with pytest.raises(ValueError):
            Fault(**bad)


# ---------------------------------------------------------------- counters, stop, start


def test_record_and_open_connections() -> None:
    with fault_server(record=True) as server:
        clients = [Client(server.address) for _ in range(3)]
        for number, client in enumerate(clients):
            client.reply()
            client.send(b"NOOP %d\r\n" % number)
            client.reply()
        assert server.open_connections == 3 and server.connections == 3
        for client in clients:
            client.close()
        assert until(lambda: server.open_connections == 0)
        assert sorted(server.received) == [b"NOOP 0\r\n", b"NOOP 1\r\n", b"NOOP 2\r\n"]
    with fault_server() as server:
        dialogue(server, b"NOOP\r\n")
        assert server.received == []


def test_stop_closes_everything_and_start_listens_again_on_the_same_port() -> None:
    with fault_server(Fault("noop", "silence", nth=1)) as server:
        address = server.address
        client = Client(address)
        client.reply()
        client.send(b"NOOP\r\n")
        assert client.quiet(0.2)
        greenlets = list(server._greenlets)
        assert len(greenlets) == 2  # the handler and its reader
        server.stop()
        assert all(g.dead for g in greenlets)
        assert server.open_connections == 0
        assert client.rest() == b""
        client.close()
        with pytest.raises(ConnectionRefusedError):
            Client(address)
        server.start()
        assert server.address == address
        assert dialogue(server, b"NOOP\r\n") == [GREETING, OK]
        assert server.connections == 2
        left = Client(address)  # left open: the context's exit closes it
        assert left.reply() == GREETING
        greenlets = list(server._greenlets)
        assert len(greenlets) == 2
    assert all(g.dead for g in greenlets)
    assert left.rest() == b""
    left.close()


def test_unix_and_ipv6() -> None:
    with fault_server(family="unix", lmtp=True) as server:
        assert server.address.startswith("unix:/")
        assert dialogue(server, b"LHLO me\r\n") == [GREETING, EHLO_REPLY]
        server.stop()
        server.start()
        assert dialogue(server, b"NOOP\r\n") == [GREETING, OK]
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    with fault_server(family="ipv6") as server:
        assert server.address.startswith("[::1]:")
        assert dialogue(server, b"QUIT\r\n") == [GREETING, BYE]
        server.stop()
        server.start()
        assert dialogue(server, b"NOOP\r\n") == [GREETING, OK]


def test_the_blackhole_neither_accepts_nor_refuses() -> None:
    with blackhole_address() as address:
        host, _, port = address.rpartition(":")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            socket.create_connection((host, int(port)), timeout=0.5)
        assert 0.45 <= time.monotonic() - started < 2.0
