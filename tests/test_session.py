"""The sans-IO session machine, driven with bytes alone: no socket, no gevent, no clock.

Each test plays the server: it feeds the machine the bytes a server would send and
checks the bytes the machine wants written and the events it returns.
"""

from __future__ import annotations

import pytest

from locust_smtp.protocol import ConnectionLost, LocalProtocolError, RemoteProtocolError, stages
from locust_smtp.protocol.session import Command, Session, Transaction

PAYLOAD = b"Subject: t\r\n\r\nhello\r\n.\r\n"


def events(session: Session, data: bytes) -> list[Command]:
    """Every event the bytes complete, as (stage, code, ok) is checked by the callers."""
    found = []
    event = session.receive(data)
    while event is not None:
        found.append(event)
        event = session.next_event()
    return found


def seen(found: list[Command]) -> list[tuple[str, int, bool]]:
    return [(e.stage, e.reply.code, e.ok) for e in found if e.reply is not None]


def ready(lmtp: bool = False, hello: str = "EHLO", offer: bytes = b"250 PIPELINING\r\n") -> Session:
    """A session past its greeting and EHLO/LHLO."""
    session = Session(lmtp)
    assert seen(events(session, b"220 mx.test ESMTP\r\n")) == [("banner", 220, True)]
    assert session.hello("client.test", hello) == f"{hello} client.test\r\n".encode()
    assert seen(events(session, b"250-mx.test\r\n" + offer)) == [(hello, 250, True)]
    return session


def drive(session: Session, transaction: Transaction, server: dict[bytes, bytes]) -> list[bytes]:
    """Run a driven transaction: the server answers each write from ``server`` (the
    reply bytes for each written chunk). Returns the chunks written, in order."""
    written = []
    data = session.data_to_send()
    while data:
        written.append(data)
        done = None
        for event in events(session, server[data]):
            done = event.done or done
        data = session.data_to_send()
        if done is not None:
            assert done is transaction and data == b""
    assert transaction.ended
    return written


def lmtp_content_sent(recipients: list[str]) -> tuple[Session, Transaction]:
    """An LMTP session whose driven transaction has every RCPT accepted, its 354 and its
    content written: the end-of-data replies are next."""
    session = ready(lmtp=True, hello="LHLO")
    transaction = session.start_mail("s@x.test", recipients, PAYLOAD)
    for reply in [b"250 ok\r\n"] * (1 + len(recipients)) + [b"354 go\r\n"]:
        assert session.data_to_send()
        events(session, reply)
    assert session.data_to_send() == PAYLOAD
    return session, transaction


# -- whole dialogues -------------------------------------------------------------------------


def test_a_full_smtp_session() -> None:
    session = ready()
    assert session.extensions.pipelining and session.greeting is not None
    transaction = session.start_mail("a@x.test", ["b@y.test", "c@y.test"], PAYLOAD)
    assert session.data_to_send() == b"MAIL FROM:<a@x.test>\r\n"
    assert session.data_to_send() == b""  # waiting for the reply
    [mail] = events(session, b"250 2.1.0 Ok\r\n")
    assert (mail.stage, mail.ok, mail.done) == ("MAIL", True, None)
    assert session.data_to_send() == b"RCPT TO:<b@y.test>\r\n"
    [rcpt] = events(session, b"250 2.1.5 Ok\r\n")
    assert (rcpt.recipient, rcpt.ok) == ("b@y.test", True)
    assert session.data_to_send() == b"RCPT TO:<c@y.test>\r\n"
    events(session, b"250 2.1.5 Ok\r\n")
    assert session.data_to_send() == b"DATA\r\n"
    [data] = events(session, b"354 End data with <CR><LF>.<CR><LF>\r\n")
    assert (data.stage, data.ok, data.expect) == ("DATA", True, 354)
    assert not session.content_sent
    assert session.data_to_send() == PAYLOAD
    assert session.content_sent  # from here the server may have the message
    [end] = events(session, b"250 2.0.0 Ok: queued as 4ABC\r\n")
    assert end.stage == stages.END_OF_DATA and end.done is transaction
    assert transaction.delivered and not transaction.reset_needed
    assert transaction.accepted == ["b@y.test", "c@y.test"] and transaction.rejected == []
    assert [r.code for r in transaction.replies] == [250]
    assert not session.content_sent and session.data_to_send() == b""
    assert session.quit() == b"QUIT\r\n"
    assert seen(events(session, b"221 2.0.0 Bye\r\n")) == [("QUIT", 221, True)]
    assert not session.pending


def test_a_full_lmtp_session_owes_one_reply_per_accepted_recipient() -> None:
    session = ready(lmtp=True, hello="LHLO")
    rcpts = ["a@y.test", "b@y.test", "c@y.test"]
    transaction = session.start_mail("s@x.test", rcpts, PAYLOAD)
    server = {
        b"MAIL FROM:<s@x.test>\r\n": b"250 ok\r\n",
        b"RCPT TO:<a@y.test>\r\n": b"250 ok\r\n",
        b"RCPT TO:<b@y.test>\r\n": b"550 5.1.1 no such user\r\n",
        b"RCPT TO:<c@y.test>\r\n": b"250 ok\r\n",
        b"DATA\r\n": b"354 go\r\n",
        # two accepted recipients: two replies, the second refused
        PAYLOAD: b"250 2.0.0 <a@y.test> delivered\r\n452 4.2.2 <c@y.test> over quota\r\n",
    }
    written = drive(session, transaction, server)
    assert written[-1] == PAYLOAD
    assert transaction.accepted == ["a@y.test", "c@y.test"]
    assert [(r, reply.code) for r, reply in transaction.rejected] == [("b@y.test", 550)]
    assert [r.code for r in transaction.replies] == [250, 452]
    assert transaction.delivered  # to some of its recipients
    assert not session.pending


def test_lmtp_end_of_data_replies_name_their_recipient() -> None:
    session, _ = lmtp_content_sent(["a@y.test", "b@y.test"])
    first = events(session, b"250 first\r\n")
    assert [(e.recipient, e.done) for e in first] == [("a@y.test", None)]
    [second] = events(session, b"550 second\r\n")
    assert second.recipient == "b@y.test" and second.done is not None and not second.ok


def test_lmtp_every_end_of_data_reply_refused_fails_the_message() -> None:
    session, transaction = lmtp_content_sent(["a@y.test", "b@y.test"])
    events(session, b"452 4.2.2 full\r\n550 5.1.1 gone\r\n")
    assert transaction.failed is not None and transaction.failed.stage == stages.END_OF_DATA
    assert transaction.failure is not None and transaction.failure.code == 452  # the first
    assert not transaction.reset_needed  # the content went: the transaction is over


# -- every rejection ------------------------------------------------------------------------

TWO = ["b@y.test", "c@y.test"]


@pytest.mark.parametrize(
    ("replies", "stage", "code", "written", "reset"),
    [
        # MAIL refused: no RCPT is written; the server may hold state: RSET
        ([b"550 5.7.1 no\r\n"], "MAIL", 550, 1, True),
        # every RCPT refused: no DATA; the failure is the first refusal
        ([b"250 ok\r\n", b"550 first\r\n", b"450 second\r\n"], "RCPT", 550, 3, True),
        # DATA refused
        ([b"250 ok\r\n", b"250 ok\r\n", b"250 ok\r\n", b"554 no\r\n"], "DATA", 554, 4, True),
        # DATA answered 250 instead of 354: not the expected reply
        ([b"250 ok\r\n", b"250 ok\r\n", b"250 ok\r\n", b"250 what\r\n"], "DATA", 250, 4, True),
        # end of data refused: the transaction is over, nothing to reset
        (
            [b"250 ok\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", b"554 5.7.1 spam\r\n"],
            "end of data",
            554,
            5,
            False,
        ),
    ],
)
def test_each_rejection_ends_the_transaction_where_smtp_source_does(
    replies: list[bytes], stage: str, code: int, written: int, reset: bool
) -> None:
    session = ready()
    transaction = session.start_mail("a@x.test", TWO, PAYLOAD)
    chunks = []
    for reply in replies:
        data = session.data_to_send()
        assert data, "the machine stopped writing before the transaction's end"
        chunks.append(data)
        found = events(session, reply)
    assert session.data_to_send() == b""
    assert found[-1].done is transaction and not found[-1].ok
    assert transaction.failed is not None and transaction.failed.stage == stage
    assert transaction.failure is not None and transaction.failure.code == code
    assert len(chunks) == written
    assert transaction.reset_needed is reset and not transaction.delivered
    assert not session.closing
    if reset:
        assert session.rset() == b"RSET\r\n"
        events(session, b"250 ok\r\n")
        assert not transaction.reset_needed


def test_one_rcpt_refused_among_others_still_delivers() -> None:
    session = ready()
    transaction = session.start_mail("a@x.test", TWO, PAYLOAD)
    for reply in (b"250 ok\r\n", b"550 no\r\n", b"250 ok\r\n", b"354 go\r\n", b"250 queued\r\n"):
        assert session.data_to_send()
        events(session, reply)
    assert transaction.delivered and transaction.accepted == ["c@y.test"]


@pytest.mark.parametrize("at", range(6))
@pytest.mark.parametrize("code", [421, 521])
def test_a_closing_reply_anywhere_ends_everything(at: int, code: int) -> None:
    """421 or 521 at the banner, EHLO, MAIL, RCPT, DATA or end of data: the server is
    going away; nothing more is owed or may be written."""
    session = Session()
    closing = b"%d 4.3.2 going away\r\n" % code
    normal = [b"220 hi\r\n", b"250 hi\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"]
    replies = [*normal[:at], closing]
    transaction = None
    for n, reply in enumerate(replies):
        if n == 1:
            session.hello("c.test", "EHLO")
        elif n == 2:
            transaction = session.start_mail("a@x.test", ["b@y.test"], PAYLOAD)
        if n >= 2:
            assert session.data_to_send()
        found = events(session, reply)
    assert found[-1].reply is not None and found[-1].reply.code == code
    assert session.closing and not session.pending and session.data_to_send() == b""
    if transaction is not None:
        assert transaction.ended and found[-1].done is transaction
        assert not transaction.delivered and not transaction.reset_needed
    # hanging up is the caller's policy; a caller that writes on (smtp-source -A after a
    # 421 banner) may, and the reply is then matched to what it wrote
    assert session.quit() == b"QUIT\r\n" and not session.closing
    with pytest.raises(ConnectionLost, match="lost connection while sending message"):
        session.receive(b"")
    with pytest.raises(LocalProtocolError):
        session.noop()  # after the server hung up, nothing can be written


def test_lmtp_delivered_to_some_then_421_counts_as_delivered() -> None:
    session, transaction = lmtp_content_sent(["a@y.test", "b@y.test"])
    found = events(session, b"250 delivered\r\n421 4.3.2 shutting down\r\n")
    assert found[-1].done is transaction and transaction.delivered and session.closing


@pytest.mark.parametrize(
    ("replies", "stage", "words"),
    [
        ([], "banner", "reading server greeting"),
        ([b"220 hi\r\n"], "EHLO", "sending EHLO"),
        ([b"220 hi\r\n", b"250 hi\r\n"], "MAIL", "sending sender"),
        ([b"220 hi\r\n", b"250 hi\r\n", b"250 ok\r\n"], "RCPT", "sending recipient"),
        (
            [b"220 hi\r\n", b"250 hi\r\n", b"250 ok\r\n", b"250 ok\r\n"],
            "DATA",
            "sending DATA command",
        ),
        (
            [b"220 hi\r\n", b"250 hi\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"],
            "end of data",
            "sending message",
        ),
    ],
)
@pytest.mark.parametrize("partial", [b"", b"250-half a reply\r\n", b"25"])
def test_a_hang_up_raises_connection_lost_in_smtp_sources_words(
    replies: list[bytes], stage: str, words: str, partial: bytes
) -> None:
    session = Session()
    transaction = None
    for n, reply in enumerate(replies):
        events(session, reply)
        if n == 0:
            session.hello("c.test", "EHLO")
        elif n == 1:
            transaction = session.start_mail("a@x.test", ["b@y.test"], PAYLOAD)
        if n >= 1:
            assert session.data_to_send()
    if partial:
        assert events(session, partial) == []  # a partial reply is no event yet
    with pytest.raises(ConnectionLost) as caught:
        session.receive(b"")
    assert caught.value.stage == stage
    assert str(caught.value) == f"lost connection while {words}"
    if transaction is not None:
        # lost after the content went out: the server may have the message
        assert session.content_sent is (stage == stages.END_OF_DATA)


def test_abort_ends_the_transaction_but_remembers_the_content_went_out() -> None:
    session = ready()
    transaction = session.start_mail("a@x.test", ["b@y.test"], PAYLOAD)
    for reply in (b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"):
        session.data_to_send()
        events(session, reply)
    session.data_to_send()
    session.abort()  # a timeout waiting for the end-of-data reply
    assert transaction.ended and transaction.content_sent and not transaction.delivered
    assert session.pending == type(session.pending)()


# -- pipelining ----------------------------------------------------------------------------


def test_a_pipelined_group_with_a_refused_rcpt_in_the_middle() -> None:
    session = ready()
    rcpts = ["b@y.test", "c@y.test", "d@y.test"]
    transaction = session.start_mail("a@x.test", rcpts, PAYLOAD, pipelining=True)
    group = session.data_to_send()
    assert group == (
        b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
        b"RCPT TO:<d@y.test>\r\nDATA\r\n"
    )
    assert len(session.pending) == 5 and session.data_to_send() == b""
    found = events(session, b"250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n354 go\r\n")
    assert seen(found) == [
        ("MAIL", 250, True),
        ("RCPT", 250, True),
        ("RCPT", 550, False),
        ("RCPT", 250, True),
        ("DATA", 354, True),
    ]
    assert [e.recipient for e in found[1:4]] == rcpts
    assert session.data_to_send() == PAYLOAD
    [end] = events(session, b"250 queued\r\n")
    assert end.done is transaction and transaction.delivered
    assert transaction.accepted == ["b@y.test", "d@y.test"]
    assert [r for r, _ in transaction.rejected] == ["c@y.test"]


def test_a_pipelined_group_whose_mail_is_refused_reads_every_reply_of_the_group() -> None:
    session = ready()
    transaction = session.start_mail("a@x.test", TWO, PAYLOAD, pipelining=True)
    session.data_to_send()
    found = events(session, b"550 5.7.1 no\r\n503 5.5.1 need MAIL\r\n")
    assert [e.done for e in found] == [None, None]  # two replies of the group still owed
    found = events(session, b"503 5.5.1 need MAIL\r\n554 5.5.1 no valid recipients\r\n")
    assert found[-1].done is transaction and not session.pending
    assert transaction.failed is not None and transaction.failed.stage == "MAIL"
    assert transaction.reset_needed and session.data_to_send() == b""


def test_pipelined_every_rcpt_refused_but_data_accepted_sends_a_lone_dot() -> None:
    # RFC 2920 section 3.1: the client cannot assume DATA fails; after a 354 it ends
    # the empty content with a single dot
    session = ready()
    transaction = session.start_mail("a@x.test", TWO, PAYLOAD, pipelining=True)
    session.data_to_send()
    events(session, b"250 ok\r\n550 no\r\n550 no\r\n354 go anyway\r\n")
    assert not transaction.ended
    assert session.data_to_send() == b".\r\n"
    assert not session.content_sent  # no message went out
    [end] = events(session, b"554 5.5.1 no valid recipients\r\n")
    assert end.done is transaction and transaction.failure is not None
    assert transaction.failed is not None and transaction.failed.stage == "RCPT"
    assert transaction.failure.code == 550


# -- bytes in any pieces -------------------------------------------------------------------

SERVER = (
    b"220-mx.test ESMTP\r\n220 welcome\r\n"
    b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
    b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n250 ok\n354 go\r\n"
    b"250 2.0.0 queued\r\n221 bye\r\n"
)


def play(pieces: list[bytes]) -> list[tuple[str, int, bool, str]]:
    """The whole pipelined dialogue with the server's bytes cut into ``pieces``; the
    client reacts to each reply before taking the next (as a client does: a server
    answers only what was written, here all in one stream)."""
    session = Session()
    rcpts = ["b@y.test", "c@y.test", "d@y.test"]
    got = []
    for piece in pieces:
        event = session.receive(piece)
        while event is not None:
            assert event.reply is not None
            got.append((event.stage, event.reply.code, event.ok, event.reply.text))
            if event.stage == "banner":
                session.hello("c.test", "EHLO")
            elif event.stage == "EHLO":
                assert session.extensions.size == 1000
                session.start_mail("a@x.test", rcpts, PAYLOAD, pipelining=True)
                assert session.data_to_send().startswith(b"MAIL FROM")
            elif event.stage == "DATA":
                assert session.data_to_send() == PAYLOAD
            elif event.done is not None:
                session.quit()
            event = session.next_event()
    assert not session.pending and not session.in_reply
    return got


WHOLE = play([SERVER])


def test_the_dialogue_in_one_piece() -> None:
    assert [(s, c, ok) for s, c, ok, _ in WHOLE] == [
        ("banner", 220, True),
        ("EHLO", 250, True),
        ("MAIL", 250, True),
        ("RCPT", 250, True),
        ("RCPT", 550, False),
        ("RCPT", 250, True),
        ("DATA", 354, True),
        ("end of data", 250, True),
        ("QUIT", 221, True),
    ]
    assert WHOLE[0][3] == "mx.test ESMTP\nwelcome"


@pytest.mark.parametrize("cut", range(1, len(SERVER)))
def test_a_reply_split_at_every_byte_boundary(cut: int) -> None:
    assert play([SERVER[:cut], SERVER[cut:]]) == WHOLE


def test_the_dialogue_a_byte_at_a_time() -> None:
    assert play([SERVER[i : i + 1] for i in range(len(SERVER))]) == WHOLE


# -- misuse --------------------------------------------------------------------------------


def test_a_reply_nobody_asked_for_is_a_protocol_error() -> None:
    session = ready()
    with pytest.raises(RemoteProtocolError):
        session.receive(b"250 surprise\r\n")


def test_a_transaction_cannot_start_while_replies_are_owed() -> None:
    session = Session()  # the greeting is owed
    with pytest.raises(LocalProtocolError):
        session.start_mail("a@x.test", ["b@y.test"], PAYLOAD)


def test_commands_one_at_a_time_share_the_transaction_rules() -> None:
    """The step-by-step commands (as a locustfile drives the client) keep the same books:
    LMTP's content owes a reply per accepted recipient, RSET clears the need to reset."""
    session = ready(lmtp=True, hello="LHLO")
    assert session.mail("a@x.test", ["SIZE=10"]) == b"MAIL FROM:<a@x.test> SIZE=10\r\n"
    events(session, b"250 ok\r\n")
    for recipient in ("b@y.test", "c@y.test"):
        session.rcpt(recipient)
        events(session, b"250 ok\r\n")
    session.data()
    [data] = events(session, b"354 go\r\n")
    assert data.ok
    session.content(PAYLOAD)
    assert session.pending[0].owed == 2
    found = events(session, b"250 one\r\n250 two\r\n")
    assert found[-1].done is not None and found[-1].done.delivered


# -- review findings, kept -----------------------------------------------------------------


def test_an_rset_in_the_middle_ends_the_transaction_undelivered() -> None:
    session = ready()
    session.mail("a@x.test")
    events(session, b"250 ok\r\n")
    session.rcpt("b@y.test")
    events(session, b"250 ok\r\n")
    transaction = session.transaction
    assert transaction is not None
    session.rset()
    [reset] = events(session, b"250 reset\r\n")
    assert reset.done is transaction and transaction.ended
    assert not transaction.delivered and not transaction.reset_needed


def test_after_the_lone_dot_nothing_is_left_to_reset() -> None:
    session = ready()
    transaction = session.start_mail("a@x.test", TWO, PAYLOAD, pipelining=True)
    session.data_to_send()
    events(session, b"250 ok\r\n550 no\r\n550 no\r\n354 go anyway\r\n")
    assert session.data_to_send() == b".\r\n"
    events(session, b"554 no valid recipients\r\n")
    assert transaction.ended and not transaction.reset_needed


def test_a_broken_connection_after_a_partial_lmtp_delivery_has_no_failure_reply() -> None:
    session, transaction = lmtp_content_sent(["a@y.test", "b@y.test"])
    events(session, b"250 delivered to a\r\n")
    session.abort()  # timed out waiting for b's reply
    assert transaction.aborted and transaction.failed is not None
    assert transaction.failure is None  # no reply refused it: the 250 is not its failure


def test_the_failure_of_lmtp_end_of_data_is_the_first_refusal() -> None:
    session, transaction = lmtp_content_sent(["a@y.test", "b@y.test"])
    events(session, b"452 4.2.2 full\r\n421 4.3.2 bye\r\n")
    assert transaction.failure is not None and transaction.failure.code == 452


def test_command_by_command_a_354_after_every_rcpt_refused_leaves_the_choice_to_the_caller() -> (
    None
):
    session = ready()
    session.mail("a@x.test")
    events(session, b"250 ok\r\n")
    session.rcpt("b@y.test")
    events(session, b"550 no\r\n")
    session.data()
    [data] = events(session, b"354 go\r\n")
    transaction = session.transaction
    assert transaction is not None and data.done is None and not transaction.ended
    session.content(PAYLOAD)  # the caller sent its content anyway
    [end] = events(session, b"554 no valid recipients\r\n")
    assert end.done is transaction and not transaction.delivered
    assert not transaction.reset_needed  # the server answered the content: nothing held


def _overlapped() -> tuple[Session, Transaction, Transaction, bytes]:
    """A pipelined transaction whose content is written together with the next one's
    MAIL, RCPT and DATA; returns the session, both transactions and that write."""
    session = Session(greeting=False)
    first = session.start_mail("a@x", ["b@y"], b"one\r\n.\r\n", pipelining=True)
    session.data_to_send()
    events(session, b"250 ok\r\n250 ok\r\n354 go\r\n")
    write = session.data_to_send()
    second = session.start_mail("c@x", ["d@y"], b"two\r\n.\r\n", pipelining=True, overlap=True)
    return session, first, second, write + session.data_to_send()


def test_the_next_transaction_goes_with_the_content_and_each_reply_is_booked_to_its_own() -> None:
    session, first, second, write = _overlapped()
    assert write == b"one\r\n.\r\nMAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"
    assert session.finishing is first and session.content_sent
    found = events(session, b"250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n")
    assert seen(found) == [
        (stages.END_OF_DATA, 250, True), ("MAIL", 250, True), ("RCPT", 250, True),
        ("DATA", 354, True),
    ]  # fmt: skip
    assert found[0].done is first and first.delivered and not second.ended
    assert session.finishing is None
    assert session.data_to_send() == b"two\r\n.\r\n"
    assert seen(events(session, b"554 no\r\n")) == [(stages.END_OF_DATA, 554, False)]
    assert second.ended and not second.delivered and first.delivered


def test_a_421_to_the_content_ends_the_next_transaction_unanswered() -> None:
    session, first, second, _write = _overlapped()
    found = events(session, b"421 4.3.2 bye\r\n")
    assert found[0].done is first and first.failed is found[0]
    assert second.ended and second.aborted and second.failure is None
    assert session.closing and not session.pending


def test_a_broken_connection_ends_both_overlapped_transactions() -> None:
    session, first, second, _write = _overlapped()
    session.abort()
    assert first.ended and first.aborted and first.failed is not None
    assert first.failed.stage == stages.END_OF_DATA
    assert second.ended and second.aborted and second.failed.stage == "MAIL"  # type: ignore[union-attr]


def test_overlap_only_after_pipelined_content_and_never_for_lmtp_or_bdat() -> None:
    from locust_smtp.protocol._writers import BdatWriter

    session = Session(greeting=False)
    session.start_mail("a@x", ["b@y"], b"one\r\n.\r\n", pipelining=True)
    session.data_to_send()  # MAIL, RCPT, DATA owed: no content yet
    with pytest.raises(LocalProtocolError):
        session.start_mail("c@x", ["d@y"], b"x\r\n.\r\n", pipelining=True, overlap=True)
    events(session, b"250 ok\r\n250 ok\r\n354 go\r\n")
    session.data_to_send()
    with pytest.raises(LocalProtocolError):  # not asked for
        session.start_mail("c@x", ["d@y"], b"x\r\n.\r\n", pipelining=True)
    with pytest.raises(LocalProtocolError):
        session.start_mail("c@x", ["d@y"], b"x", writer=BdatWriter(), pipelining=True, overlap=True)
    lmtp = Session(lmtp=True, greeting=False)
    lmtp.start_mail("a@x", ["b@y"], b"one\r\n.\r\n", pipelining=True)
    lmtp.data_to_send()
    events(lmtp, b"250 ok\r\n250 ok\r\n354 go\r\n")
    lmtp.data_to_send()
    with pytest.raises(LocalProtocolError):
        lmtp.start_mail("c@x", ["d@y"], b"x\r\n.\r\n", pipelining=True, overlap=True)
