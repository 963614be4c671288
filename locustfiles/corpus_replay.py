"""Replay a corpus of real mail: every message read from disk, readdressed.

    CORPUS=/path/to/maildir-or-eml-tree-or.mbox \
        locust -f locustfiles/corpus_replay.py --host smtp://127.0.0.1:2525 \
        --headless -u 20 --smtp-messages 10000 --smtp-transaction-log replay.jsonl

``CORPUS`` is ``PATH[=WEIGHT],...``: Maildirs, directories of ``.eml`` files
(searched recursively), mboxes or single files, mixed by weight
(``spam.mbox=1,ham/=9``); by default the three messages of ``locustfiles/corpus/``.
The corpus is indexed once, not loaded: each message is
read when it is sent. From, To, Message-Id and Date become the transaction's
(``--smtp-keep-headers`` sends them as they are). Sizes stay the corpus's own.
"""

import os

from locust_smtp import SmtpUser


class Replayer(SmtpUser):
    corpus = os.environ.get("CORPUS", os.path.join(os.path.dirname(__file__), "corpus"))
    sender = "replay@example.com"
    recipient = "inbox@example.net"
    reuse_connection = True
    hello_command = "EHLO"
    pipelining = "auto"  # MAIL, RCPT and DATA in one write when the server offers it
