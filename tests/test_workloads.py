"""Real traffic end to end: corpora, templates, drawn sizes, recipients and domains,
address files split between workers and messages per connection, through the command
and a locustfile's users, checked in what the project's sink recorded."""

from __future__ import annotations

import collections
import email
import email.policy
import re
import subprocess
from pathlib import Path

import pytest
from servers import LOCUST_SMTP, our_sink, run_users

from locust_smtp import SmtpUser

RCPT = re.compile(rb"^RCPT TO:<([^>]*)>", re.M)
MAIL = re.compile(rb"^MAIL FROM:<([^>]*)>", re.M)


def transactions(record: Path) -> list[tuple[bytes, list[bytes], bytes]]:
    """(sender, recipients, content) of every recorded DATA transaction, in order."""
    found = []
    for f in sorted(record.glob("*.client")):
        data = f.read_bytes()
        for part in data.split(b"MAIL FROM:")[1:]:
            head, _, rest = part.partition(b"DATA\r\n")
            content = rest.split(b"\r\n.\r\n")[0] + b"\r\n"
            found.append(
                (
                    MAIL.search(b"MAIL FROM:" + head).group(1),  # type: ignore[union-attr]
                    RCPT.findall(head),
                    content.replace(b"\r\n..", b"\r\n."),
                )
            )
    return found


def run(*args: str, record: Path, sink_options: tuple[str, ...] = ()) -> dict[str, int]:
    with our_sink(*sink_options, record=record) as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, *args, sink.address], capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 0, proc.stderr
    return sink.counts


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "eml" / "deep").mkdir(parents=True)
    (root / "eml" / "one.eml").write_bytes(
        b"From: someone@else\nTo: nobody@else\nCc: copy@else\nSubject: first\n\n"
        b"body of the first\n.a dotted line\n"
    )
    (root / "eml" / "deep" / "two.eml").write_bytes(
        b"Subject: second\r\nDate: long ago\r\n\r\nbody of the second\r\n"
    )
    (root / "box.mbox").write_bytes(
        b"From a@b Thu Jan  1 00:00:00 2026\nSubject: boxed\n\nbody of the boxed\n"
    )
    return root


def test_a_weighted_corpus_with_rewritten_headers(tmp_path: Path, corpus: Path) -> None:
    record = tmp_path / "record"
    counts = run("-d", "-s", "2", "-m", "400", "--seed", "5",
                 "--corpus", f"{corpus / 'eml'}=3,{corpus / 'box.mbox'}=1",
                 "-f", "me@here.example", "-t", "you@there.example", record=record)  # fmt: skip
    assert counts["messages"] == 400
    seen: collections.Counter[str] = collections.Counter()
    for sender, recipients, content in transactions(record):
        assert sender == b"me@here.example" and recipients == [b"you@there.example"]
        message = email.message_from_bytes(content, policy=email.policy.compat32)
        assert message["From"] == "<me@here.example>"
        assert message["To"] == "<you@there.example>"
        assert message["Cc"] is None  # the corpus message's copies are not sent
        assert re.fullmatch(r"<[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4,}@.+>", message["Message-Id"])
        assert message["Date"] != "long ago"
        seen[message["Subject"]] += 1
        body = {"first": b"body of the first\r\n.a dotted line\r\n",
                "second": b"body of the second\r\n", "boxed": b"body of the boxed\r\n"}  # fmt: skip
        assert content.endswith(b"\r\n\r\n" + body[message["Subject"]])
    assert sum(seen.values()) == 400
    # the eml tree (two messages) weighs 3, the mbox 1: 37.5%, 37.5%, 25% (within 3.5
    # standard deviations of 400 draws)
    assert seen["boxed"] == pytest.approx(100, abs=30)
    assert seen["first"] == pytest.approx(150, abs=34)


def test_keep_headers_sends_the_corpus_as_it_is(tmp_path: Path, corpus: Path) -> None:
    record = tmp_path / "record"
    run("-m", "3", "--keep-headers", "--corpus", str(corpus / "eml" / "one.eml"), record=record)
    for _sender, _recipients, content in transactions(record):
        assert content == (
            b"From: someone@else\r\nTo: nobody@else\r\nCc: copy@else\r\n"
            b"Subject: first\r\n\r\nbody of the first\r\n.a dotted line\r\n"
        )


def test_drawn_recipients_domains_and_invalid_share(tmp_path: Path) -> None:
    record = tmp_path / "record"
    run("-d", "-s", "4", "-m", "600", "--seed", "11", "--recipient-counts", "weights:1=50,3=50",
        "--recipient-domains", "gmail.com:67,outlook.com:20,example.net:13",
        "--invalid-recipients", "0.2", record=record)  # fmt: skip
    found = transactions(record)
    assert len(found) == 600
    counts = collections.Counter(len(recipients) for _s, recipients, _c in found)
    assert set(counts) == {1, 3}
    assert counts[3] == pytest.approx(300, abs=45)
    everyone = [r for _s, recipients, _c in found for r in recipients]
    domains = collections.Counter(r.rpartition(b"@")[2] for r in everyone)
    assert domains[b"gmail.com"] / len(everyone) == pytest.approx(0.67, abs=0.04)
    assert domains[b"example.net"] / len(everyone) == pytest.approx(0.13, abs=0.03)
    invalid = sum(r.startswith(b"invalid-") for r in everyone)
    assert invalid / len(everyone) == pytest.approx(0.2, abs=0.03)
    # To: says the drawn recipients
    for _s, recipients, content in found[:20]:
        to = re.sub(r"\s+", " ", email.message_from_bytes(content)["To"])  # unfolded
        assert to == ", ".join(f"<{r.decode()}>" for r in recipients)


def test_sizes_attachments_and_a_template(tmp_path: Path) -> None:
    template = tmp_path / "message.txt"
    template.write_text(
        "From: <{sender}>\nTo: {recipients}\nSubject: number {seq}: {words:3}\n"
        "Message-Id: {message_id}\n\nHello {recipient}.\n"
    )
    record = tmp_path / "record"
    run("-d", "-m", "40", "--template", str(template), "--message-sizes", "uniform:4K-8K",
        "--attachments", "1K,3000", record=record)  # fmt: skip
    found = transactions(record)
    assert len(found) == 40
    subjects = set()
    for _sender, recipients, content in found:
        message = email.message_from_bytes(content, policy=email.policy.default)
        subjects.add(str(message["Subject"]).split(":")[0])
        assert str(message["Subject"]).count(" ") >= 4  # "number N:" and three words
        parts = list(message.iter_attachments())
        assert [len(p.get_content()) for p in parts] == [1024, 3000]
        body = message.get_body(("plain",))
        assert body is not None and f"Hello {recipients[0].decode()}." in body.get_content()
    assert subjects == {f"number {n}" for n in range(40)}  # {seq}: each message once
    sizes = []
    record2 = tmp_path / "record2"
    run("-d", "-m", "60", "--seed", "2", "--message-sizes", "uniform:4K-8K", record=record2)
    sizes = [len(content) for _s, _r, content in transactions(record2)]
    assert all(4096 <= size <= 8192 for size in sizes)
    assert max(sizes) - min(sizes) > 2000  # drawn, not one size


def test_messages_per_connection(tmp_path: Path) -> None:
    counts = run("-s", "1", "-m", "9", "--messages-per-connection", "3", record=tmp_path)
    assert counts["messages"] == 9
    assert counts["connections"] == 3
    per_connection = [f.read_bytes().count(b"MAIL FROM:") for f in sorted(tmp_path.glob("*"))]
    assert per_connection == [3, 3, 3]
    assert all(f.read_bytes().endswith(b"QUIT\r\n") for f in tmp_path.glob("*.client"))


def test_address_files_are_split_between_workers(tmp_path: Path) -> None:
    senders = tmp_path / "senders.csv"
    senders.write_text("address,name\n" + "".join(f"s{i}@x.example,S{i}\n" for i in range(10)))
    record = tmp_path / "record"
    run("-d", "-s", "4", "-m", "200", "--sender-file", str(senders), "--unique-addresses",
        record=record, sink_options=())  # fmt: skip
    # one process: every address in use
    used = {s for s, _r, _c in transactions(record)}
    assert used == {f"s{i}@x.example".encode() for i in range(10)}
    record2 = tmp_path / "record2"
    with our_sink(record=record2) as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-d", "-s", "4", "-m", "200", "--sender-file", str(senders),
             "--unique-addresses", sink.address, "--", "--processes", "2"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    by_connection = [
        {s for s in MAIL.findall(f.read_bytes())} for f in sorted(record2.glob("*.client"))
    ]
    halves = [{f"s{i}@x.example".encode() for i in range(k, 10, 2)} for k in (0, 1)]
    for senders_used in by_connection:  # a worker's sessions use its half only
        assert senders_used <= halves[0] or senders_used <= halves[1]
    assert set().union(*by_connection) == halves[0] | halves[1]


def test_a_user_class_draws_its_traffic(tmp_path: Path, corpus: Path) -> None:
    recipients = tmp_path / "rcpt.csv"
    recipients.write_text("".join(f"r{i}@y.example\n" for i in range(5)))
    box = str(corpus / "box.mbox")
    with our_sink(record=tmp_path / "record") as sink:

        class Drawn(SmtpUser):
            host = sink.address
            reuse_connection = True
            corpus = box
            recipient_file = str(recipients)
            recipient_counts = "2"
            workload_seed = 1

        run_users(Drawn, 2, 20)
    found = transactions(tmp_path / "record")
    assert len(found) == 20
    for _sender, rcpts, content in found:
        assert len(rcpts) == 2 and len(set(rcpts)) == 2
        assert all(re.fullmatch(rb"r[0-4]@y\.example", r) for r in rcpts)
        assert b"Subject: boxed" in content


def test_bad_workload_settings_are_clear_errors(tmp_path: Path) -> None:
    for args, says in [
        (["--corpus", str(tmp_path / "none")], "no such file or directory"),
        (["--message-sizes", "lognormal:64K"], "bad size distribution 'lognormal:64K'"),
        (["--recipient-domains", "a.example:-1"], "a.example:-1"),
        (["--invalid-recipients", "2"], "bad invalid recipients share: 2 (0 to 1)"),
        (["--template", str(tmp_path / "none.txt")], "No such file or directory"),
        (["--seed", "x"], "fatal: bad seed: x"),
        (["--seed", "12abc"], "fatal: bad seed: 12abc"),
        (["--rate-seed", "7x"], "fatal: bad rate seed: 7x"),
    ]:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-m", "1", *args, "127.0.0.1:9"], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert proc.returncode == 1, args
        assert says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
