"""Message sources on disk, the mix of them, and what is done to one message on its way out."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import random
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locust_smtp.workload.corpus import (
    WORDS,
    MessageMix,
    Template,
    open_source,
    pad_to_size,
    parse_mix,
    render_template,
    rewrite_headers,
    to_crlf,
    with_attachments,
)

# --------------------------------------------------------------------------- corpora


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def eml_tree(tmp_path: Path) -> Path:
    root = tmp_path / "emls"
    write(root / "b.eml", b"Subject: b\n\nbody b\n")
    write(root / "a" / "one.eml", b"Subject: one\r\n\r\nbody one\r\n")
    write(root / "a" / "sub" / "two.EML", b"Subject: two\n\nline\r\nmixed\n")
    write(root / "a" / "notes.txt", b"Subject: not a message\n\n")
    write(root / "a" / "empty.eml", b"")
    write(root / ".git" / "hidden.eml", b"Subject: hidden\n\n")
    return root


MBOX_MESSAGES = [
    # (as stored in the mbox, as read back)
    (
        b"From: a@example.com\nSubject: first\n\nHello\n",
        b"From: a@example.com\r\nSubject: first\r\n\r\nHello\r\n",
    ),
    (
        b"Subject: second\n\n>From the start, quoted.\n>>From twice.\nnot >From here\n",
        b"Subject: second\r\n\r\nFrom the start, quoted.\r\n>From twice.\r\nnot >From here\r\n",
    ),
    (b"Subject: third\n\nlast\n", b"Subject: third\r\n\r\nlast\r\n"),
]


def mbox_bytes(eol: bytes = b"\n") -> bytes:
    parts = []
    for n, (stored, _) in enumerate(MBOX_MESSAGES):
        separator = b"From sender%d@example.com Mon Jan  1 00:00:0%d 2024\n" % (n, n)
        parts.append((separator + stored + b"\n").replace(b"\n", eol))
    return b"".join(parts)


@pytest.fixture
def mbox(tmp_path: Path) -> Path:
    return write(tmp_path / "mail.mbox", mbox_bytes())


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    write(root / "cur" / "1700000002.M1.host:2,S", b"Subject: cur 2\n\n2\n")
    write(root / "cur" / "1700000001.M1.host:2,", b"Subject: cur 1\n\n1\n")
    write(root / "cur" / ".hidden", b"Subject: hidden\n\n")
    write(root / "new" / "1700000003.M1.host", b"Subject: new 3\n\n3\n")
    write(root / "tmp" / "1700000004.M1.host", b"Subject: being delivered\n\n")
    return root


def test_an_eml_tree_is_every_non_empty_eml_file_in_sorted_path_order(eml_tree: Path) -> None:
    source = open_source(eml_tree)
    assert source.kind == "eml"
    names = [source.name(i) for i in range(len(source))]
    expected = [eml_tree / "a" / "one.eml", eml_tree / "a" / "sub" / "two.EML", eml_tree / "b.eml"]
    assert names == [str(p) for p in expected]
    for i, path in enumerate(expected):
        assert source.size(i) == path.stat().st_size
        assert source.message(i) == to_crlf(path.read_bytes())
    assert source.message(1) == b"Subject: two\r\n\r\nline\r\nmixed\r\n"
    assert source.sizes() == [p.stat().st_size for p in expected]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_an_mbox_is_split_on_from_lines_and_unescaped(tmp_path: Path, eol: bytes) -> None:
    path = write(tmp_path / "mail.mbox", mbox_bytes(eol))
    source = open_source(str(path))
    assert (source.kind, len(source)) == ("mbox", 3)
    assert [source.name(i) for i in range(3)] == [f"{path}#1", f"{path}#2", f"{path}#3"]
    for i, (stored, sent) in enumerate(MBOX_MESSAGES):
        assert source.message(i) == sent
        # the size on disk: the stored (escaped) message, without the From line and the
        # empty line before the next one
        assert source.size(i) == len(stored.replace(b"\n", eol))


def test_an_mbox_message_without_the_empty_line_before_the_next_keeps_its_last_line(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "m", b"From a\nSubject: x\n\nno blank after\nFrom b\nSubject: y\n")
    source = open_source(path)
    assert source.message(0) == b"Subject: x\r\n\r\nno blank after\r\n"
    assert source.message(1) == b"Subject: y\r\n"


def test_a_maildir_is_cur_then_new_and_never_tmp(maildir: Path) -> None:
    source = open_source(maildir)
    assert source.kind == "maildir"
    assert [os.path.relpath(source.name(i), maildir) for i in range(len(source))] == [
        "cur/1700000001.M1.host:2,",
        "cur/1700000002.M1.host:2,S",
        "new/1700000003.M1.host",
    ]
    assert [source.message(i) for i in range(3)] == [
        b"Subject: cur 1\r\n\r\n1\r\n",
        b"Subject: cur 2\r\n\r\n2\r\n",
        b"Subject: new 3\r\n\r\n3\r\n",
    ]


def test_any_other_file_is_one_message(tmp_path: Path) -> None:
    path = write(tmp_path / "msg.txt", b"Subject: hi\n\nFrom the start\n")
    source = open_source(str(path))
    assert (source.kind, len(source), source.name(0), source.size(0)) == ("file", 1, str(path), 28)
    assert source.message(0) == b"Subject: hi\r\n\r\nFrom the start\r\n"


def test_messages_are_read_from_disk_each_time(eml_tree: Path, mbox: Path) -> None:
    source = open_source(eml_tree)
    (eml_tree / "b.eml").write_bytes(b"Subject: changed\n\n")
    assert source.message(2) == b"Subject: changed\r\n\r\n"
    assert source.size(2) == len(b"Subject: b\n\nbody b\n")  # the index's, from before

    source = open_source(mbox)
    data = mbox.read_bytes()
    mbox.write_bytes(data.replace(b"Subject: third", b"Subject: THIRD"))
    assert source.message(2) == b"Subject: THIRD\r\n\r\nlast\r\n"


def test_the_index_holds_no_message_contents(tmp_path: Path) -> None:
    body = b"".join(
        b"line %04d of some message text, long enough to matter\n" % i for i in range(40)
    )
    path = write(
        tmp_path / "big.mbox",
        b"".join(b"From x\nSubject: %d\n\n" % n + body + b"\n" for n in range(2000)),
    )
    assert path.stat().st_size > 4_000_000
    tracemalloc.start()
    try:
        source = open_source(path)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(source) == 2000
    assert source.message(1999).endswith(b"of some message text, long enough to matter\r\n")
    # 2000 offsets and sizes, not 4 MB of messages, kept or passing through
    assert kept < 200_000
    assert peak < 500_000


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: p.mkdir(), "no non-empty .eml files"),
        (lambda p: write(p / "x.txt", b"Subject: x\n\n"), "no non-empty .eml files"),
        (lambda p: [(p / d).mkdir(parents=True) for d in ("cur", "new", "tmp")], "Maildir"),
        (lambda p: write(p, b""), "empty file"),
    ],
)
def test_an_empty_source_is_refused_by_name(tmp_path: Path, make: object, what: str) -> None:
    path = tmp_path / "source"
    make(path)  # type: ignore[operator]
    with pytest.raises(ValueError, match="holds no messages") as info:
        open_source(path)
    assert repr(str(path)) in str(info.value)
    assert what in str(info.value)


def test_a_missing_source_is_a_clear_value_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere")
    with pytest.raises(ValueError) as info:
        open_source(path)
    assert str(info.value) == f"message source {path!r}: no such file or directory"
    assert info.value.__suppress_context__


# --------------------------------------------------------------------------- mix


def test_a_mix_picks_sources_by_weight_and_messages_uniformly(eml_tree: Path, mbox: Path) -> None:
    emls, mails = open_source(eml_tree), open_source(mbox)
    mix = MessageMix([(emls, 1), (mails, 3)])
    rng = random.Random(7)
    picks = [mix.pick(rng) for _ in range(20_000)]
    share = sum(source is mails for source, _ in picks) / len(picks)
    assert abs(share - 0.75) < 0.015
    assert {i for source, i in picks if source is emls} == {0, 1, 2}
    assert {i for source, i in picks if source is mails} == {0, 1, 2}
    assert [(s, w) for s, w in mix.shares()] == [(emls, 0.25), (mails, 0.75)]
    assert len(mix) == 6


def test_a_mix_spec_names_paths_and_weights(eml_tree: Path, mbox: Path) -> None:
    mix = parse_mix(f"{eml_tree}=2.5, {mbox}")
    assert [(s.path, w) for s, w in mix.sources] == [(str(eml_tree), 2.5), (str(mbox), 1.0)]


@pytest.mark.parametrize("weight", ["0", "-1", "x", "", "inf", "nan"])
def test_a_mix_weight_must_be_a_positive_number(mbox: Path, weight: str) -> None:
    spec = f"{mbox}={weight}"
    with pytest.raises(ValueError, match=r"positive number|not a number") as info:
        parse_mix(spec)
    assert repr(spec) in str(info.value)


def test_a_mix_with_a_missing_path_names_it(mbox: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(str(tmp_path / "gone")))):
        parse_mix(f"{mbox},{tmp_path / 'gone'}=2")


# --------------------------------------------------------------------------- headers

BODY = b"To: not a header, the body\r\nCc: nor this\r\n\r\n.\r\n"


def test_a_folded_to_is_replaced_whole_and_cc_bcc_are_dropped() -> None:
    message = (
        b"From: old@example.com\r\n"
        b"to: one@example.com,\r\n two@example.com,\r\n\tthree@example.com\r\n"
        b"Subject: hi\r\n"
        b"CC: four@example.com,\r\n five@example.com\r\n"
        b"Bcc: six@example.com\r\n"
        b"\r\n" + BODY
    )
    out = rewrite_headers(message, recipients=["x@example.net", "y@example.net"])
    assert out == (
        b"From: old@example.com\r\nTo: x@example.net, y@example.net\r\nSubject: hi\r\n\r\n" + BODY
    )


def test_missing_fields_are_added_and_present_ones_replaced_in_place() -> None:
    message = b"Message-ID: <old@x>\r\nSubject: s\r\nFROM: Old <old@x>\r\n\r\n" + BODY
    out = rewrite_headers(
        message,
        sender="New <new@example.com>",
        message_id="<1.2@example.com>",
        date="Mon, 1 Jan 2024 00:00:00 +0000",
        add=[("X-Run", "r1"), ("X-Seq", "7")],
    )
    assert out == (
        b"Message-Id: <1.2@example.com>\r\n"
        b"Subject: s\r\n"
        b"From: New <new@example.com>\r\n"
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"X-Run: r1\r\n"
        b"X-Seq: 7\r\n"
        b"\r\n" + BODY
    )


def test_a_repeated_field_is_written_once_where_the_first_was() -> None:
    message = b"To: a@x\r\nSubject: s\r\nTo: b@x\r\n\r\nbody"
    assert rewrite_headers(message, recipients=["c@y"]) == b"To: c@y\r\nSubject: s\r\n\r\nbody"


def test_nothing_given_changes_nothing() -> None:
    message = b"To: a@x\r\nCc: b@x\r\n\r\n" + BODY
    assert rewrite_headers(message) == message


def test_a_message_without_an_empty_line_is_all_header() -> None:
    assert rewrite_headers(b"Subject: s\r\nTo: a@x", recipients=["b@y"], date="d") == (
        b"Subject: s\r\nTo: b@y\r\nDate: d\r\n"
    )
    assert rewrite_headers(b"Subject: s", date="d") == b"Subject: s\r\nDate: d\r\n"
    assert rewrite_headers(b"", date="d") == b"Date: d\r\n"
    # a message without a header: the fields go before its empty line
    assert rewrite_headers(b"\r\nbody\r\n", date="d") == b"Date: d\r\n\r\nbody\r\n"


def test_new_lines_end_as_the_message_s_lines_do() -> None:
    out = rewrite_headers(b"Subject: s\n\nbody\n", date="d", add=[("X-A", "1")])
    assert out == b"Subject: s\nDate: d\nX-A: 1\n\nbody\n"


def test_a_long_to_is_folded_and_unfolds_to_the_recipients() -> None:
    recipients = [f"user{n}@example.com" for n in range(40)]
    out = rewrite_headers(b"Subject: s\r\n\r\nbody\r\n", recipients=recipients)
    header = out.split(b"\r\n\r\n")[0]
    assert max(len(line) for line in header.split(b"\r\n")) <= 78
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == recipients
    assert re.sub(rb"\r\n(?=[ \t])", b"", header).endswith(b"To: " + ", ".join(recipients).encode())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sender": "a@x\r\nBcc: evil@x"},
        {"recipients": ["a@x\n"]},
        {"recipients": []},
        {"date": "d\r"},
        {"add": [("X-Bad Name", "v")]},
        {"add": [("X-A", "v\nX-B: w")]},
    ],
)
def test_values_that_would_break_the_header_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        rewrite_headers(b"Subject: s\r\n\r\n", **kwargs)  # type: ignore[arg-type]


@given(
    header=st.lists(
        st.sampled_from([b"To: a@x", b"Cc: c@x", b" folded", b"Subject: s", b"Date: d"]), max_size=6
    ),
    body=st.binary(max_size=200),
)
def test_the_body_is_kept_byte_for_byte(header: list[bytes], body: bytes) -> None:
    message = b"".join(line + b"\r\n" for line in header) + b"\r\n" + body
    out = rewrite_headers(message, sender="s@x", recipients=["r@y"], date="now", add=[("X", "1")])
    head, _, rest = out.partition(b"\r\n\r\n")
    assert rest == body
    assert b"Cc:" not in head and head.count(b"To: r@y") == 1 and b"To: a@x" not in head


# --------------------------------------------------------------------------- templates


def test_template_fields_are_filled_in() -> None:
    fields = {"seq": 42, "run_id": "r-1", "sender": "s@x", "recipient": "r@y"}
    text = "From: {sender}\nTo: {recipient}\nSubject: {run_id} #{seq} {{literal}}\n\n}}{{\n"
    assert render_template(text, fields, random.Random(1)) == (
        "From: s@x\nTo: r@y\nSubject: r-1 #42 {literal}\n\n}{\n"
    )
    assert Template(text).field_names == {"seq", "run_id", "sender", "recipient"}


def test_words_are_random_from_the_word_list_and_seeded() -> None:
    text = "Subject: {words:5}\n\n{words:40}\n"
    first = render_template(text, {}, random.Random(3))
    assert first == render_template(text, {}, random.Random(3))
    assert first != render_template(text, {}, random.Random(4))
    subject, body = first.split("\n\n")
    assert len(subject.removeprefix("Subject: ").split(" ")) == 5
    assert len(body.split()) == 40
    assert set(body.split()) <= set(WORDS)
    assert render_template("[{words:0}]", {}, random.Random(1)) == "[]"


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_pad_makes_the_message_as_sent_exactly_that_size(eol: str) -> None:
    text = eol.join(["Subject: {words:3} \u00e9t\u00e9 #{seq}", "", "Hello {seq}", "{pad:2K}", ""])
    template = Template(text)
    for seq in range(0, 2000, 7):  # subjects of different lengths: every remainder mod 78
        rng = random.Random(seq)
        rendered = template.render({"seq": seq}, rng)
        assert len(to_crlf(rendered.encode("utf-8"))) == 2048
        lines = rendered.split(eol)
        assert max(len(line) for line in lines) <= 78
        assert rendered.endswith(eol)


def test_pad_sizes_take_suffixes_and_a_big_enough_message_gets_none() -> None:
    template = Template("Subject: s\n\n{pad:1.5K}\n")
    assert len(to_crlf(template.render({}, random.Random(1)).encode())) == 1536
    assert render_template("Subject: {x}\n\n{pad:10}\n", {"x": "long"}, random.Random(1)) == (
        "Subject: long\n\n\n"
    )
    rendered = render_template("{pad:1M}", {}, random.Random(1))
    assert len(to_crlf(rendered.encode())) == 1024 * 1024
    # a lone CR before the padding and an LF after it do not make a CRLF
    rendered = render_template("a\r{pad:100}\nb", {}, random.Random(1))
    assert len(to_crlf(rendered.encode())) == 100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hello {name}", "unknown template field {name}"),
        ("Hello { seq }", "unknown template field { seq }"),
        ("Hello {words:x}", "{words:x}"),
        ("Hello {pad:12Q}", "{pad:12Q}"),
        ("a { b", "single '{'"),
        ("a } b", "single '}'"),
        ("{pad:1K}{pad:2K}", "more than one"),
    ],
)
def test_bad_templates_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        render_template(text, {"seq": 1}, random.Random(1))


# --------------------------------------------------------------------------- padding


def body_lines(padded: bytes, original: bytes) -> list[bytes]:
    return padded[len(original) :].split(b"\r\n")


def test_padding_reaches_the_exact_size_with_short_printable_lines() -> None:
    message = b"Subject: s\r\n\r\nbody\r\n"
    for size in range(len(message) + 1, len(message) + 400):
        padded = pad_to_size(message, size, random.Random(size))
        assert len(padded) == size
        assert padded.startswith(message)
        added = padded[len(message) :]
        assert re.fullmatch(rb"[ -~\r\n]*", added)
        assert max(len(line) for line in added.split(b"\r\n")) <= 76
        assert b"\n" not in added.replace(b"\r\n", b"")


def test_padding_a_big_message_is_quick_and_exact() -> None:
    padded = pad_to_size(b"Subject: s\r\n\r\n", 10 * 1024 * 1024, random.Random(1))
    assert len(padded) == 10 * 1024 * 1024


def test_a_message_already_big_enough_is_not_padded() -> None:
    message = b"Subject: s\r\n\r\n" + b"x" * 100
    assert pad_to_size(message, 50, random.Random(1)) is message
    assert pad_to_size(message, len(message), random.Random(1)) is message


def test_padding_goes_to_the_body_even_of_a_message_that_is_all_header() -> None:
    padded = pad_to_size(b"Subject: s", 500, random.Random(1))
    assert len(padded) == 500
    assert padded.startswith(b"Subject: s\r\n\r\n")
    parsed = email.message_from_bytes(padded, policy=email.policy.default)
    assert list(parsed.keys()) == ["Subject"]


# --------------------------------------------------------------------------- attachments

SIZES = [0, 1, 2, 3, 57, 58, 1000, 70_000]


def test_attachments_parse_back_with_exactly_their_sizes() -> None:
    body = b"Hello,\r\n\r\nsee attached.\r\n"
    message = b"From: a@x\r\nSubject: report\r\nMIME-Version: 1.0\r\n\r\n" + body
    out = with_attachments(message, SIZES, random.Random(5))
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert (parsed["From"], parsed["Subject"], parsed["MIME-Version"]) == ("a@x", "report", "1.0")
    assert out.count(b"MIME-Version") == 1
    parts = list(parsed.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    assert parts[0].get_payload(decode=True) == body
    attachments = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attachments] == [
        f"attachment-{n}.bin" for n in range(1, len(SIZES) + 1)
    ]
    assert [a.get_content_type() for a in attachments] == ["application/octet-stream"] * len(SIZES)
    assert [len(a.get_content()) for a in attachments] == SIZES
    assert all(len(line) <= 76 for line in out.split(b"\r\n"))
    assert b"\n" not in out.replace(b"\r\n", b"")


def test_attachment_bytes_are_random_and_seeded() -> None:
    message = b"Subject: s\r\n\r\nbody\r\n"

    def contents(seed: int) -> list[bytes]:
        out = with_attachments(message, [300, 300], random.Random(seed))
        parsed = email.message_from_bytes(out, policy=email.policy.default)
        return [a.get_content() for a in parsed.iter_attachments()]

    first = contents(1)
    assert first == contents(1)
    assert first != contents(2)
    assert first[0] != first[1]


def test_the_original_content_fields_go_with_the_original_body() -> None:
    body = b"<p>caf=C3=A9</p>\r\n"
    message = (
        b"Subject: html\r\n"
        b"Content-Type: text/html;\r\n charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n" + body
    )
    out = with_attachments(message, [10], random.Random(1))
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    first = next(parsed.iter_parts())
    assert first.get_content_type() == "text/html"
    assert first.get_content() == "<p>caf\u00e9</p>\r\n"
    assert [len(a.get_content()) for a in parsed.iter_attachments()] == [10]


def test_the_boundary_is_not_in_the_body() -> None:
    rng = random.Random(9)
    boundary = b"=_locust-smtp-%016x" % random.Random(9).getrandbits(64)
    message = b"Subject: s\r\n\r\n--" + boundary + b"\r\n"
    out = with_attachments(message, [5], rng)
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert parsed.get_boundary() != boundary.decode()
    assert next(parsed.iter_parts()).get_payload(decode=True) == b"--" + boundary + b"\r\n"


def test_a_message_that_is_all_header_gets_an_empty_first_part() -> None:
    out = with_attachments(b"Subject: s", [4], random.Random(1))
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert parsed["Subject"] == "s"
    assert next(parsed.iter_parts()).get_payload(decode=True) == b""
    content = next(parsed.iter_attachments()).get_content()
    assert base64.b64encode(content) in out


# --------------------------------------------------------------------------- layering


def test_the_workload_package_imports_neither_gevent_nor_locust() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, locust_smtp.workload\n"
            "print(sorted(m for m in ('gevent', 'locust') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr
