"""Message content: dot-stuffing and smtp-source's message builder (reference §4.3, §4.4)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locust_smtp import SourceMessage, data_payload, dot_stuff, dot_unstuff, sized_body
from locust_smtp.protocol._content import (
    DEFAULT_BODY,
    MessageTemplate,
    file_body,
    hex4,
    message_id_local,
    rfc2822_date,
)
from locust_smtp.protocol._writers import DATA_WRITER


@given(st.binary())
def test_dot_stuffing_round_trips(data: bytes) -> None:
    assert dot_unstuff(dot_stuff(data)) == data


@given(st.lists(st.binary().filter(lambda b: b"\n" not in b and b"\r" not in b)))
def test_no_stuffed_line_is_the_end_of_data_line(lines: list[bytes]) -> None:
    content = b"\r\n".join(lines) + b"\r\n"
    payload = data_payload(content)
    sent = payload.split(b"\r\n")
    # exactly one "." line, the last; everything before it unstuffs back to the content
    assert sent[-2:] == [b".", b""]
    assert b"." not in sent[:-2]
    assert dot_unstuff(payload[: -len(b".\r\n")]) == content


def test_data_payload_adds_the_final_crlf_and_dot() -> None:
    assert data_payload(b"a\r\n.b") == b"a\r\n..b\r\n.\r\n"


def test_default_message_is_smtp_sources() -> None:
    template = SourceMessage("foo@vm", "foo@vm", "vm", date="DATE").template()
    msg = DATA_WRITER.frame_template(template).render("2a58.0003.0000")
    assert msg == (
        b"From: <foo@vm>\r\nTo: <foo@vm>\r\nDate: DATE\r\n"
        b"Message-Id: <2a58.0003.0000@vm>\r\n\r\n"
        b"La de da de da 1.\r\nLa de da de da 2.\r\nLa de da de da 3.\r\nLa de da de da 4.\r\n"
        b".\r\n"
    )


def test_subject_comes_after_message_id_and_may_be_empty() -> None:
    msg = SourceMessage("a", "b", "vm", subject="", date="D").template().render("1.2.3")
    assert b"Message-Id: <1.2.3@vm>\r\nSubject: \r\n\r\nLa de da" in msg


def test_without_headers_there_is_no_blank_line_either() -> None:
    template = SourceMessage("a", "b", "vm", subject="x", headers=False).template()
    assert template.render("ignored") == DEFAULT_BODY
    assert DATA_WRITER.frame_template(template).render("ignored") == DEFAULT_BODY + b".\r\n"


@pytest.mark.parametrize("length", [1, 79, 80, 81, 160, 161, 1000, 10240])
def test_sized_body_is_length_plus_crlf(length: int) -> None:
    body = sized_body(length)
    assert len(body) == length + 2
    lines = body.split(b"\r\n")[:-1]
    full, last = lines[:-1], lines[-1]
    for n, line in enumerate(full, start=1):
        assert line == str(n % 10).encode() + b"X" * 77
    assert last == b"X" * (length - 80 * len(full))


def test_sized_body_80_and_160() -> None:
    assert sized_body(80) == b"X" * 80 + b"\r\n"
    assert sized_body(160) == b"1" + b"X" * 77 + b"\r\n" + b"X" * 80 + b"\r\n"


def test_file_body_quirks() -> None:
    # CR kept, a last line without LF used, one extra CRLF at the end; the writer doubles
    # leading dots, as smtp-source does for each line it reads
    body = file_body(b"Subject: x\r\n\n.hidden\nlast")
    assert body == b"Subject: x\r\r\n\r\n.hidden\r\nlast\r\n\r\n"
    template = SourceMessage("a", "b", "vm", file_content=b".first\n.hidden\n").template()
    assert DATA_WRITER.frame_template(template).render("id") == b"..first\r\n..hidden\r\n\r\n.\r\n"
    assert file_body(b"") is None


def test_file_content_drops_headers_and_subject() -> None:
    template = SourceMessage("a", "b", "vm", subject="s", file_content=b"x\n").template()
    assert DATA_WRITER.frame_template(template).render("id") == b"x\r\n\r\n.\r\n"


def test_empty_file_falls_back_to_the_default_body_without_headers() -> None:
    template = SourceMessage("a", "b", "vm", file_content=b"").template()
    assert template.render("id") == DEFAULT_BODY


@given(
    head=st.binary(max_size=40),
    tail=st.binary(max_size=40),
    message_id=st.from_regex(r"[0-9a-f][0-9a-f.]{0,19}", fullmatch=True),  # PPPP.FFFF.CCCC
    has_id=st.booleans(),
)
def test_a_template_framed_once_renders_what_framing_each_message_gives(
    head: bytes, tail: bytes, message_id: str, has_id: bool
) -> None:
    # the user classes frame their template once; it must equal framing every rendering
    template = MessageTemplate(head, tail, has_message_id=has_id)
    framed = DATA_WRITER.frame_template(template).render(message_id)
    assert framed == DATA_WRITER.frame(template.render(message_id))


def test_date_format() -> None:
    date = rfc2822_date(0.0)
    assert re.fullmatch(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ 123]\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov"
        r"|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(.+\)",
        date,
    )


def test_date_pads_the_day_with_a_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    try:
        assert rfc2822_date(1762300800.0) == "Wed,  5 Nov 2025 00:00:00 +0000 (UTC)"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_message_id_fields_print_like_c_percent_04x() -> None:
    assert hex4(2) == "0002"
    assert hex4(-1) == "ffffffff"
    assert hex4(0x12345) == "12345"
    assert message_id_local(0x2A58, 3, -2) == "2a58.0003.fffffffe"


@pytest.mark.parametrize("field", ["sender", "recipient", "myhostname", "subject"])
def test_header_values_with_line_breaks_are_refused(field: str) -> None:
    from locust_smtp import LocalProtocolError

    values = {"sender": "a", "recipient": "b", "myhostname": "vm", "subject": "s"}
    values[field] = "x\r\nBcc: victim"
    with pytest.raises(LocalProtocolError):
        SourceMessage(**values).template()  # type: ignore[arg-type]
