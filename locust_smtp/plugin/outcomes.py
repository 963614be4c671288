"""What became of every attempted message: the run's accounting.

Locust's ``message`` row counts attempts and failures; these counters say what
the failures were and add what Locust cannot keep: messages delivered to only
some of their recipients, recipients accepted and refused, and when the
failures happened. Every attempted message lands in exactly one outcome::

    attempted = accepted + rejected + failed + interrupted

* **accepted**: the server took the message (the end-of-data reply was
  positive; for LMTP, at least one recipient's was). ``partial`` counts those
  of them that some recipients refused (RCPT, or a per-recipient LMTP reply).
* **rejected**: the server refused it with a reply (4xx, 5xx, or a reply
  that is not one).
* **failed**: no answer: connect failure, lost connection, timeout, a worker
  that disappeared, an unexpected error.
* **interrupted**: in flight when the user was stopped (a signal, the end of
  the test, a ramp-down after its content went out).

Each process keeps its own counters; workers send theirs to the master with
their statistics reports (``report_to_master``), where they are summed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from locust.env import Environment

#: Exception classes (by name, as Locust keeps failures) that mean "rejected by a reply".
REJECTIONS = frozenset(
    {"TransientReplyError", "PermanentReplyError", "UnexpectedReplyError", "MalformedReply"}
)
INTERRUPTIONS = frozenset({"UserStopped"})
_FIELDS = (
    "accepted",
    "partial",
    "rejected",
    "failed",
    "interrupted",
    "recipients_accepted",
    "recipients_refused",
)


def outcome_of(exception: BaseException | None) -> str:
    """``accepted``, ``rejected``, ``failed`` or ``interrupted`` for a message that ended
    with ``exception`` (None: accepted)."""
    if exception is None:
        return "accepted"
    name = type(exception).__name__
    if name in REJECTIONS:
        return "rejected"
    if name in INTERRUPTIONS:
        return "interrupted"
    return "failed"


@dataclass
class Outcomes:
    """The counters of one request type (``SMTP`` or ``LMTP``) in one process or run."""

    accepted: int = 0
    partial: int = 0
    rejected: int = 0
    failed: int = 0
    interrupted: int = 0
    recipients_accepted: int = 0
    recipients_refused: int = 0
    failed_at: dict[int, int] = field(default_factory=dict)
    """Failed messages by the whole second (``time.time()``) they ended in."""

    @property
    def attempted(self) -> int:
        return self.accepted + self.rejected + self.failed + self.interrupted

    def count(self, outcome: str, ended: float, partial: bool = False) -> None:
        """One message ended at ``ended`` (``time.time()``) with ``outcome``."""
        if outcome == "accepted":  # (nearly every message: no getattr/setattr)
            self.accepted += 1
            if partial:
                self.partial += 1
            return
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "failed":
            second = int(ended)
            self.failed_at[second] = self.failed_at.get(second, 0) + 1

    def add(self, other: Outcomes) -> None:
        for name in _FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for second, n in other.failed_at.items():
            self.failed_at[second] = self.failed_at.get(second, 0) + n

    def clear(self) -> None:
        """Back to zero (in place: users keep a reference)."""
        for name in _FIELDS:
            setattr(self, name, 0)
        self.failed_at = {}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        data["failed_at"] = [[s, n] for s, n in self.failed_at.items()]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcomes:
        outcomes = cls()
        for name in _FIELDS:
            setattr(outcomes, name, int(data.get(name, 0)))
        outcomes.failed_at = {int(s): int(n) for s, n in data.get("failed_at", ())}
        return outcomes

    def outages(self, start_time: float, gap: int = 1) -> list[tuple[str, int]]:
        """Spans of seconds with failed messages, as (``"FROM-TO s"`` counted in whole
        seconds from ``start_time``, failed messages): seconds at most ``gap`` apart
        belong to one span."""
        spans: list[list[int]] = []  # [first second, last second, failed]
        for second in sorted(self.failed_at):
            n = self.failed_at[second]
            if spans and second - spans[-1][1] <= gap:
                spans[-1][1] = second
                spans[-1][2] += n
            else:
                spans.append([second, second, n])
        zero = int(start_time)
        return [(f"{first - zero}-{last + 1 - zero} s", n) for first, last, n in spans]


_ATTRIBUTE = "smtp_outcomes"
_REPORT_KEY = "smtp_outcomes"


def outcomes_of(environment: Environment) -> dict[str, Outcomes]:
    """The counters of ``environment``, by request type (created when first asked for)."""
    table: dict[str, Outcomes] | None = getattr(environment, _ATTRIBUTE, None)
    if table is None:
        table = {}
        setattr(environment, _ATTRIBUTE, table)
    return table


def outcomes_for(environment: Environment, request_type: str) -> Outcomes:
    table = outcomes_of(environment)
    outcomes = table.get(request_type)
    if outcomes is None:
        outcomes = table[request_type] = Outcomes()
    return outcomes


def reset(environment: Environment, **_kwargs: Any) -> None:
    """A new test (``test_start``) or the web UI's *Reset stats*: start from zero."""
    for outcomes in outcomes_of(environment).values():
        outcomes.clear()


def sum_on_master(
    environment: Environment,
    key: str,
    ship: Callable[[], dict[str, Any] | None],
    take: Callable[[str, Any], None],
    reset: Callable[[], None],
) -> None:
    """Per-process counters summed on the master: each worker report carries ``ship()``
    (``{request type: counts}``, or None when there is nothing new) under ``key``, after
    which the worker starts again from zero (``reset()``); the master hands each request
    type's counts to ``take``. *Reset stats* resets them everywhere."""
    events = environment.events

    def report_to_master(data: dict[str, Any], **_kw: Any) -> None:
        shipped = ship()
        if shipped:
            data[key] = shipped
            reset()

    def worker_report(data: dict[str, Any], **_kw: Any) -> None:
        for kind, counts in data.get(key, {}).items():
            take(kind, counts)

    events.report_to_master.add_listener(report_to_master)  # type: ignore[no-untyped-call]
    events.worker_report.add_listener(worker_report)  # type: ignore[no-untyped-call]
    events.reset_stats.add_listener(lambda **_kw: reset())  # type: ignore[no-untyped-call]


def install(environment: Environment, **_kwargs: Any) -> None:
    """``events.init`` listener: workers send what they counted since their last report
    with their statistics (and start again from zero); the master adds it up."""

    def ship() -> dict[str, Any] | None:
        table = outcomes_of(environment)
        return {kind: outcomes.to_dict() for kind, outcomes in table.items()} or None

    def take(kind: str, counts: Any) -> None:
        outcomes_for(environment, kind).add(Outcomes.from_dict(counts))

    sum_on_master(environment, _REPORT_KEY, ship, take, lambda: reset(environment))
