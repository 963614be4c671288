"""Names of the stages of an SMTP/LMTP session, as reported to Locust.

Each stage is one Locust request (``name`` = the stage); a whole mail
transaction (MAIL up to the last end-of-data reply) is one more, ``message``.
"""

from __future__ import annotations

CONNECT = "connect"
BANNER = "banner"
HELO = "HELO"
EHLO = "EHLO"
LHLO = "LHLO"
MAIL = "MAIL"
RCPT = "RCPT"
DATA = "DATA"
END_OF_DATA = "end of data"
RSET = "RSET"
NOOP = "NOOP"
QUIT = "QUIT"
MESSAGE = "message"


def hello_stage(command: str) -> str:
    """The stage of a greeting command: ``HELO``, ``EHLO`` or ``LHLO`` (any case)."""
    stage = command.upper()
    if stage not in (HELO, EHLO, LHLO):
        raise ValueError(f"not a greeting command: {command!r}")
    return stage


#: What smtp-source says it was doing when a connection is lost or times out
#: (``lost connection while sending sender``).
CONTEXT = {
    CONNECT: "connecting",
    BANNER: "reading server greeting",
    HELO: "sending HELO",
    EHLO: "sending EHLO",
    LHLO: "sending LHLO",
    MAIL: "sending sender",
    RCPT: "sending recipient",
    DATA: "sending DATA command",
    END_OF_DATA: "sending message",
    RSET: "sending message",
    NOOP: "sending message",
    QUIT: "sending message",
    MESSAGE: "sending message",
}

#: smtp-source's wording for a rejection at each stage (``recipient rejected: 550 ...``).
REJECTED = {
    BANNER: "rejected at server banner",
    HELO: "HELO rejected",
    EHLO: "EHLO rejected",
    LHLO: "LHLO rejected",
    MAIL: "sender rejected",
    RCPT: "recipient rejected",
    DATA: "data rejected",
    END_OF_DATA: "end of data rejected",
    RSET: "rset rejected",
    NOOP: "noop rejected",
    QUIT: "quit rejected",
}
