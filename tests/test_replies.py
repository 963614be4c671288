"""The reply parser: smtp-source's rules (docs/smtp-source.md §5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locust_smtp import RemoteProtocolError, Reply, ReplyReader
from locust_smtp.protocol._replies import LINE_LIMIT, TEXT_LIMIT


def replies(data: bytes, eof: bool = False) -> list[Reply]:
    reader = ReplyReader()
    reader.feed(data)
    if eof:
        reader.feed_eof()
    out = []
    while (reply := reader.next_reply()) is not None:
        out.append(reply)
    return out


def test_single_line_reply() -> None:
    (reply,) = replies(b"250 2.1.0 Ok\r\n")
    assert reply.code == 250
    assert reply.text == "2.1.0 Ok"
    assert reply.enhanced == "2.1.0"
    assert reply.positive


def test_multi_line_reply_takes_the_last_lines_code_and_joins_texts() -> None:
    (reply,) = replies(b"250-first\r\n550 5.1.1 second\r\n")
    assert reply.code == 550
    assert reply.text == "first\n5.1.1 second"
    assert reply.lines == ("250-first", "550 5.1.1 second")
    assert reply.printable_text == "first?5.1.1 second"
    assert reply.enhanced == "5.1.1"


def test_bare_lf_and_extra_crs_are_accepted() -> None:
    assert [r.text for r in replies(b"220 a\n250 b\r\r\n")] == ["a", "b"]


@pytest.mark.parametrize(
    ("line", "code", "text"),
    [
        (b"2500 x", 0, "x"),
        (b"25 x", 0, "x"),
        (b"hello", 0, "hello"),
        (b"250ok", 250, "ok"),
        (b"250", 250, ""),
        (b"354   go ahead", 354, "go ahead"),
    ],
)
def test_code_is_exactly_three_leading_digits_else_zero(line: bytes, code: int, text: str) -> None:
    (reply,) = replies(line + b"\r\n")
    assert (reply.code, reply.text) == (code, text)


def test_continuation_line_without_code_ends_the_reply_with_code_0() -> None:
    first, second = replies(b"250-first\r\nhello\r\n250 next\r\n")
    assert (first.code, first.text) == (0, "first\nhello")
    assert second.code == 250


def test_non_printable_bytes_become_question_marks() -> None:
    (reply,) = replies(b"550 bad\x01char\x7f\xff\r\n")
    assert reply.text == "bad?char??"
    assert str(reply) == "550 bad?char??"


def test_over_long_line_is_cut_and_the_rest_discarded() -> None:
    reader = ReplyReader()
    reader.feed(b"250 " + b"x" * (LINE_LIMIT * 2))
    assert reader.next_reply() is None
    reader.feed(b"y" * 100 + b"\r\n250 after\r\n")
    long, after = reader.next_reply(), reader.next_reply()
    assert long is not None and after is not None
    assert len(long.lines[0]) == LINE_LIMIT
    assert after.text == "after"


def test_total_text_is_capped() -> None:
    data = b"".join(b"250-" + b"x" * 1000 + b"\r\n" for _ in range(30)) + b"250 end\r\n"
    (reply,) = replies(data)
    assert len(reply.text) == TEXT_LIMIT


def test_reply_split_across_feeds() -> None:
    reader = ReplyReader()
    for chunk in (b"25", b"0-a\r", b"\n250 b", b"\r\n"):
        assert reader.next_reply() is None
        reader.feed(chunk)
    reply = reader.next_reply()
    assert reply is not None and reply.text == "a\nb"


def test_eof_in_the_middle_of_a_reply_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError):
        replies(b"250-first\r\n250 cut", eof=True)
    with pytest.raises(RemoteProtocolError):
        replies(b"250-first\r\n", eof=True)


def test_clean_eof_between_replies_is_not_an_error() -> None:
    assert [r.code for r in replies(b"221 bye\r\n", eof=True)] == [221]


@pytest.mark.parametrize(
    ("line", "enhanced"),
    [
        (b"550 5.1.1 <x>: unknown", "5.1.1"),
        (b"451 4.3.0 try later", "4.3.0"),
        (b"550 4.1.1 class mismatch", None),
        (b"250 2.0.0", "2.0.0"),
        (b"250 queued as 5.1.1X", None),
        (b"550 no code here", None),
    ],
)
def test_enhanced_status_code(line: bytes, enhanced: str | None) -> None:
    (reply,) = replies(line + b"\r\n")
    assert reply.enhanced == enhanced


@given(st.lists(st.binary(max_size=300), max_size=20), st.booleans())
def test_parser_raises_only_its_own_error_on_arbitrary_bytes(
    chunks: list[bytes], eof: bool
) -> None:
    reader = ReplyReader()
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while (reply := reader.next_reply()) is not None:
                assert 0 <= reply.code <= 999
                assert reply.text.isascii()
        if eof:
            reader.feed_eof()
            while reader.next_reply() is not None:
                pass
    except RemoteProtocolError:
        assert eof


@given(st.lists(st.tuples(st.integers(100, 599), st.text("abc -.0123", max_size=30)), min_size=1))
def test_every_well_formed_reply_is_read_back(lines: list[tuple[int, str]]) -> None:
    data = b"".join(
        b"%d%s%s\r\n" % (code, b"-" if i < len(lines) - 1 else b" ", text.encode())
        for i, (code, text) in enumerate(lines)
    )
    (reply,) = replies(data)
    assert reply.code == lines[-1][0]
    assert reply.text.split("\n") == [t.lstrip(" ") for _, t in lines]


def _reply_strategy() -> st.SearchStrategy[bytes]:
    """Reply-like lines, mostly well formed, some not, sometimes several in one chunk."""
    line = st.one_of(
        st.builds(
            lambda code, sep, text, end: b"%d%s%s%s" % (code, sep, text, end),
            st.integers(0, 999),
            st.sampled_from([b" ", b"-", b"", b"x"]),
            st.binary(max_size=40),
            st.sampled_from([b"\r\n", b"\n", b"\r\r\n", b""]),
        ),
        st.binary(max_size=60),
    )
    return st.lists(line, min_size=1, max_size=3).map(b"".join)


@given(st.lists(_reply_strategy(), max_size=12))
def test_receive_is_feed_then_next_reply(chunks: list[bytes]) -> None:
    """The fast path of receive() gives what feed() + next_reply() give, chunk by chunk."""
    fast, slow = ReplyReader(), ReplyReader()
    for chunk in chunks:
        got = fast.receive(chunk)
        slow.feed(chunk)
        assert got == slow.next_reply()
        assert fast.in_reply == slow.in_reply
        # drain the rest of the chunk the same way on both
        while got is not None:
            got = fast.next_reply()
            assert got == slow.next_reply()
            assert fast.in_reply == slow.in_reply
    assert fast.in_reply == slow.in_reply


def test_a_reply_group_ending_inside_a_multiline_reply_keeps_it() -> None:
    """Two whole replies and the first line of a third in one read: after the two, the
    reader still holds part of a reply, and the next read completes that one."""
    for _ in range(2):  # the second time, the group may come from the cache
        reader = ReplyReader()
        assert reader.receive(b"250 a\r\n250 b\r\n250-c\r\n").text == "a"
        assert reader.next_reply().text == "b"  # type: ignore[union-attr]
        assert reader.in_reply  # part of "250-c" is in: a caller must not read afresh
        assert reader.next_reply() is None and reader.in_reply
        reply = reader.receive(b"250 d\r\n")
        assert reply is not None and reply.lines == ("250-c", "250 d")


def test_receive_takes_a_lone_single_line_reply_whole() -> None:
    reader = ReplyReader()
    reply = reader.receive(b"250 2.0.0 Ok: queued as 1\x01\r\n")
    assert reply == Reply(250, "2.0.0 Ok: queued as 1?", ("250 2.0.0 Ok: queued as 1?",))
    assert not reader.in_reply
    assert reader.receive(b"354 go\r\n250 ") == Reply(354, "go", ("354 go",))
    assert reader.in_reply
    assert reader.receive(b"ok\r\n") == Reply(250, "ok", ("250 ok",))


def test_endless_continuation_lines_keep_bounded_memory() -> None:
    """A server streaming continuation lines: the reply keeps its code and capped text,
    and the reader keeps only what can still show in the reply."""
    middle = [b"250-" + b"%06d" % n + b"x" * 14 for n in range(50_000)]
    reader = ReplyReader()
    for chunk in range(0, len(middle), 1000):
        reader.feed(b"\r\n".join(middle[chunk : chunk + 1000]) + b"\r\n")
        assert reader.next_reply() is None
    reader.feed(b"251 end\r\n")
    reply = reader.next_reply()
    assert reply is not None
    assert reply.code == 251
    full = "\n".join([line[4:].decode() for line in middle] + ["end"])
    assert reply.text == full[:TEXT_LIMIT]
    assert len(reply.lines) <= TEXT_LIMIT // 20 + 2
    assert reply.lines[-1] == "251 end"


def test_a_reply_seen_before_is_the_same_object_and_the_table_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from locust_smtp.protocol import _replies

    monkeypatch.setattr(_replies, "_SEEN", {})  # (other tests' replies are remembered)
    monkeypatch.setattr(_replies, "_LINES_SEEN_ONCE", set())
    ReplyReader().receive(b"250 2.1.5 Ok\r\n")
    first = ReplyReader().receive(b"250 2.1.5 Ok\r\n")  # remembered the second time
    again = ReplyReader().receive(b"250 2.1.5 Ok\r\n")
    assert first is again
    general = ReplyReader()
    general.feed(b"250 2.1.5 Ok\r\n")
    assert general.next_reply() == first  # what the line-by-line path makes of it
    for n in range(2 * _replies.SEEN_LIMIT):  # replies with queue ids: each one new
        reply = ReplyReader().receive(b"250 2.0.0 Ok: queued as %05X\r\n" % n)
        assert reply is not None and reply.text == f"2.0.0 Ok: queued as {n:05X}"
    assert list(_replies._SEEN) == [b"250 2.1.5 Ok\r\n"]  # none of them took a place


def test_a_group_with_a_new_queue_id_each_time_shares_its_other_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Postfix answers a pipelined group with the previous message's queue id first: the
    group never repeats, but from its second sighting each other line's reply is the
    same object, and what the reader returns is what the line-by-line path makes."""
    from locust_smtp.protocol import _replies

    for table in ("_SEEN", "_SEEN_GROUPS"):  # (other tests' replies are remembered)
        monkeypatch.setattr(_replies, table, {})
    for table in ("_LINES_SEEN_ONCE", "_GROUPS_SEEN_ONCE"):
        monkeypatch.setattr(_replies, table, set())

    def group(n: int) -> bytes:
        return (
            b"250 2.0.0 Ok: queued as %05X\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
            b"354 End data with <CR><LF>.<CR><LF>\r\n" % n
        )

    def read_all(data: bytes) -> list[Reply]:
        reader = ReplyReader()
        replies = [reader.receive(data)]
        while reader.in_reply:
            replies.append(reader.next_reply())
        assert None not in replies
        return replies  # type: ignore[return-value]

    seen = [read_all(group(n)) for n in range(3)]
    for n, replies in enumerate(seen):
        general = ReplyReader()
        general.feed(group(n))
        assert replies == [general.next_reply() for _ in range(4)]
    assert all(seen[1][i] is seen[2][i] for i in (1, 2, 3))  # remembered at the second
    assert seen[1][0] is not seen[2][0]
    assert seen[2][0].text == "2.0.0 Ok: queued as 00002"
    for n in range(8 * _replies.SEEN_LIMIT):  # queue ids never fill the tables
        read_all(group(n))
    assert len(_replies._LINES_SEEN_ONCE) <= 4 * _replies.SEEN_LIMIT
    assert len(_replies._SEEN) <= _replies.SEEN_LIMIT
    assert len(_replies._SEEN_GROUPS) <= _replies.SEEN_LIMIT
