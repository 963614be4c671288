"""Names of the stages of an SMTP/LMTP session, as reported to Locust.

Each stage is one Locust request (``name`` = the stage); a whole mail
transaction (MAIL up to the last end-of-data reply) is one more, ``message``.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNECT = "connect"
TLS = "TLS handshake"
BANNER = "banner"
HELO = "HELO"
EHLO = "EHLO"
LHLO = "LHLO"
STARTTLS = "STARTTLS"
AUTH = "AUTH"
XCLIENT = "XCLIENT"
XFORWARD = "XFORWARD"
MAIL = "MAIL"
RCPT = "RCPT"
DATA = "DATA"
BDAT = "BDAT"
"""A BDAT chunk before the last (RFC 3030); the last chunk's reply is ``end of data``."""
END_OF_DATA = "end of data"
RSET = "RSET"
NOOP = "NOOP"
QUIT = "QUIT"
MESSAGE = "message"
START_LAG = "start lag"
"""Under an arrival rate: how late a message started after its scheduled time."""
FROM_SCHEDULE = "message from schedule"
"""Under an arrival rate: a message timed from its scheduled time, not its start."""


def hello_stage(command: str) -> str:
    """The stage of a greeting command: ``HELO``, ``EHLO`` or ``LHLO`` (any case)."""
    stage = _HELLO.get(command.upper())
    if stage is None:
        raise ValueError(f"not a greeting command: {command!r}")
    return stage  # the constant itself: the session machine compares stages by identity


_HELLO = {HELO: HELO, EHLO: EHLO, LHLO: LHLO}


@dataclass(frozen=True)
class Stage:
    """One stage, and how smtp-source words it."""

    name: str
    """The Locust request name."""
    context: str
    """What smtp-source says it was doing when the connection is lost or times out
    (``lost connection while sending sender``)."""
    rejected: str
    """How it words a non-positive reply (``recipient rejected: 550 ...``)."""


#: Every stage, in dialogue order: the order of every report this project prints.
TABLE = (
    Stage(CONNECT, "connecting", "connect failed"),
    Stage(BANNER, "reading server greeting", "rejected at server banner"),
    Stage(HELO, "sending HELO", "HELO rejected"),
    Stage(EHLO, "sending EHLO", "EHLO rejected"),
    Stage(LHLO, "sending LHLO", "LHLO rejected"),
    Stage(STARTTLS, "sending STARTTLS", "STARTTLS rejected"),
    Stage(TLS, "in the TLS handshake", "TLS handshake failed"),
    Stage(AUTH, "authenticating", "authentication failed"),
    Stage(XCLIENT, "sending XCLIENT", "XCLIENT rejected"),
    Stage(XFORWARD, "sending XFORWARD", "XFORWARD rejected"),
    Stage(MAIL, "sending sender", "sender rejected"),
    Stage(RCPT, "sending recipient", "recipient rejected"),
    Stage(DATA, "sending DATA command", "data rejected"),
    Stage(BDAT, "sending message", "chunk rejected"),
    Stage(END_OF_DATA, "sending message", "end of data rejected"),
    Stage(RSET, "sending message", "rset rejected"),
    Stage(NOOP, "sending message", "noop rejected"),
    Stage(QUIT, "sending message", "quit rejected"),
    Stage(MESSAGE, "sending message", "message rejected"),
    Stage(START_LAG, "waiting for a session", "started late"),
    Stage(FROM_SCHEDULE, "sending message", "message rejected"),
)
ORDER = tuple(stage.name for stage in TABLE)
CONTEXT = {stage.name: stage.context for stage in TABLE}
REJECTED = {stage.name: stage.rejected for stage in TABLE}
