"""The per-transaction log: one JSON line per message, opt-in (``--smtp-transaction-log``).

Locust's statistics say how a stage behaved in aggregate; the log says what happened
to each message, so that latency over time, a slow minute or one queue id can be
looked up after the run. Each line is one JSON object (schema below; docs/workloads.md
shows a reader). A record is written when the message is reported, so the order is
the order messages ended. Lines are buffered and written out at least once a second
and when the test stops.

Schema, version 1 (keys always present unless marked optional):

``v``
    1, the schema version.
``time``
    When the message started (Unix time, seconds, µs resolution): the claim of the
    message, before any connection it needed.
``scheduled`` (optional)
    Under an arrival rate (``--smtp-rate``): when the message was due to start (the
    ``message from schedule`` and ``start lag`` samples are not in ``stages``: they
    follow from ``time``, ``scheduled`` and ``us``).
``user``
    The session (user) that sent it: ``"W:N"``, the worker's index (0 without workers)
    and the user's number in that process.
``connection``
    That user's connection number (1 for its first connection).
``type``
    ``SMTP`` or ``LMTP`` (the user's request type).
``outcome``
    ``accepted``, ``rejected``, ``failed`` (no reply: timeout, lost connection) or
    ``stopped`` (see :mod:`locust_smtp.plugin.outcomes`).
``us``
    The message's duration in µs, as the ``message`` stage reports it.
``stages``
    Every stage reported for the message, in order: ``{"stage", "us", "code",
    "enhanced", "bytes"}``; ``code`` and ``enhanced`` (RFC 3463, ``"2.1.5"``) are null
    when there was no reply or no enhanced code; a failed stage adds ``"error"``. The
    connection's own stages (connect, banner, EHLO, STARTTLS, AUTH) appear in the
    message that opened the connection; RSET and QUIT, which follow a message, do not
    appear.
``queue_id``
    The queue id the end-of-data reply names (``queued as 4XyZ`` from Postfix, ``<id>
    Saved`` from Dovecot LMTP), else null.
``bytes``
    Bytes written for the message's stages (commands and content).
``recipients``
    ``{"accepted": N, "refused": N}``.
``error`` (optional)
    What failed the message, as the ``message`` stage's failure says it.

Each process writes its own file: on a Locust worker, ``PATH`` becomes
``PATH.worker-N`` (N the worker's index), so several workers on one machine never
share a file.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, TextIO

import gevent

from ..protocol import stages
from .arrivals import FROM_SCHEDULE, START_LAG
from .client_addresses import worker_index

if TYPE_CHECKING:
    from locust.env import Environment

    from ..protocol._replies import Reply

SCHEMA_VERSION = 1
FLUSH_INTERVAL = 1.0
_ATTRIBUTE = "smtp_transaction_log"
_AFTER_MESSAGE = (stages.RSET, stages.QUIT, FROM_SCHEDULE, START_LAG)
_QUEUE_ID = re.compile(r"queued as ([A-Za-z0-9._+/=-]+)|\s([A-Za-z0-9+/._-]+) Saved\b")


def queue_id(text: str) -> str | None:
    """The queue id an end-of-data reply's text names, if any."""
    found = _QUEUE_ID.search(text)
    if found is None:
        return None
    return found.group(1) or found.group(2)


class TransactionLog:
    """One process's log file, written in the background at least once a second."""

    def __init__(self, path: str, worker_index: int | None = None) -> None:
        if worker_index is not None:
            path = f"{path}.worker-{worker_index}"
        self.path = path
        self.worker = worker_index or 0
        self._file: TextIO | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._lines: list[str] = []
        self._flusher: gevent.Greenlet | None = None
        self.records = 0

    def write(self, record: dict[str, Any]) -> None:
        self._lines.append(json.dumps(record, separators=(",", ":")))
        self.records += 1
        if self._flusher is None:
            self._flusher = gevent.spawn_later(FLUSH_INTERVAL, self._flush_later)

    def _flush_later(self) -> None:
        self._flusher = None
        self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines and self._file is not None:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def close(self) -> None:
        self.flush()
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None
        if self._file is not None:
            self._file.close()
            self._file = None


def transaction_log_for(environment: Environment, path: str) -> TransactionLog:
    """The process's log at ``path`` (opened at first use, closed when Locust quits)."""
    log: TransactionLog | None = getattr(environment, _ATTRIBUTE, None)
    if log is not None and log._file is not None:
        return log
    log = TransactionLog(path, worker_index(environment))
    setattr(environment, _ATTRIBUTE, log)
    events = environment.events
    events.test_stop.add_listener(lambda **_kw: log.flush())  # type: ignore[no-untyped-call]
    events.quit.add_listener(lambda **_kw: log.close())  # type: ignore[no-untyped-call]
    return log


class MessageRecord:
    """The stages of the message a user is sending, gathered for its log line."""

    __slots__ = ("bytes", "connection", "log", "queue_id", "stages", "user")

    def __init__(self, log: TransactionLog, user: str) -> None:
        self.log = log
        self.user = user
        self.connection = 0
        self.stages: list[dict[str, Any]] = []
        self.bytes = 0
        self.queue_id: str | None = None

    def stage(
        self,
        stage: str,
        response_time: float,
        sent: int,
        reply: Reply | None,
        exception: BaseException | None,
    ) -> None:
        if stage == stages.CONNECT:
            self.connection += 1
        elif stage in _AFTER_MESSAGE:
            return
        entry: dict[str, Any] = {
            "stage": stage,
            "us": round(response_time * 1000.0),
            "code": reply.code if reply is not None else None,
            "enhanced": reply.enhanced if reply is not None else None,
            "bytes": sent,
        }
        if exception is not None:
            entry["error"] = str(exception)
        self.stages.append(entry)
        self.bytes += sent
        if stage == stages.END_OF_DATA and reply is not None and self.queue_id is None:
            self.queue_id = queue_id(reply.text)

    def message(
        self,
        request_type: str,
        start_time: float,
        response_time: float,
        outcome: str,
        accepted: int,
        refused: int,
        exception: BaseException | None,
        scheduled: float | None = None,
    ) -> None:
        """The message ended: write its line and start the next one's."""
        record: dict[str, Any] = {"v": SCHEMA_VERSION, "time": round(start_time, 6)}
        if scheduled is not None:
            record["scheduled"] = round(scheduled, 6)
        record.update(
            {
                "user": self.user,
                "connection": self.connection,
                "type": request_type,
                "outcome": outcome,
                "us": round(response_time * 1000.0),
                "stages": self.stages,
                "queue_id": self.queue_id,
                "bytes": self.bytes,
                "recipients": {"accepted": accepted, "refused": refused},
            }
        )
        if exception is not None:
            record["error"] = str(exception)
        self.log.write(record)
        self.stages = []
        self.bytes = 0
        self.queue_id = None
