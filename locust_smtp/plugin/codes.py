"""Reply codes by stage: what the server answered, counted as it answered.

Locust keeps failures by their text; an operator watching a server wants every reply,
the good ones too, grouped as the server means them: per stage (in dialogue order),
the basic code (``250``, ``450``, ``550``) and the enhanced status code (``2.1.5``,
``4.7.1``, ``5.1.1``) when the server gives one. What is no reply at all is counted
per stage in its own class: ``timeout``, ``lost connection``, ``TLS failure``,
``connect failed`` (and ``other error``; a user stopped mid-stage is not counted).
LMTP's end of data counts each recipient's reply.

Each process counts; workers send their counts with their statistics reports and
start again from zero; the master adds them up, as for :mod:`.outcomes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .outcomes import sum_on_master

if TYPE_CHECKING:
    from locust.env import Environment

    from .recorder import StageRecord

TIMEOUT, LOST, TLS, CONNECT, OTHER = (
    "timeout",
    "lost connection",
    "TLS failure",
    "connect failed",
    "other error",
)
NO_REPLY = (TIMEOUT, LOST, TLS, CONNECT, OTHER)
_CLASS_OF = {
    "SmtpTimeout": TIMEOUT,
    "ConnectionLost": LOST,
    "TlsError": TLS,
    "ConnectError": CONNECT,
    "SocketError": CONNECT,
}
_NOT_COUNTED = frozenset({"UserStopped"})
_NOT_REPLIES = frozenset({"message", "message from schedule", "start lag"})
"""Stages that are not one command's reply (``message`` repeats its last reply)."""
_ATTRIBUTE = "smtp_reply_codes"
_REPORT_KEY = "smtp_reply_codes"


def no_reply_class(exception: BaseException) -> str | None:
    """The class of a stage that ended without a reply (None: not counted)."""
    name = type(exception).__name__
    if name in _NOT_COUNTED:
        return None
    found = _CLASS_OF.get(name)
    if found is not None:
        return found
    for base in type(exception).__mro__[1:]:  # a subclass of one of them
        found = _CLASS_OF.get(base.__name__)
        if found is not None:
            return found
    return OTHER


class ReplyCodes:
    """The counts of one request type: (stage, code or class, enhanced code or "") -> n.

    Replies are counted where each stage's sample goes anyway, in its
    :class:`~.recorder.StageRecord` (``replies``: by the identity of the :class:`Reply`,
    which the parser reuses for the same bytes: one dict lookup), and sorted into codes
    only when the counts are read: finding an enhanced code is a regular expression,
    too slow for every stage of every message."""

    __slots__ = ("_counts", "_records", "rate_base", "rate_time")

    def __init__(self, records: dict[str, StageRecord] | None = None) -> None:
        self._records = records if records is not None else {}
        """The request type's stage records (:meth:`StageRecorder.table`)."""
        self.rate_base: dict[tuple[str, str, str], int] = {}
        self.rate_time = 0.0
        """The counts at ``rate_time``: the dashboard's current rates are measured from
        them."""
        self._counts: dict[tuple[str, str, str], int] = {}

    @property
    def counts(self) -> dict[tuple[str, str, str], int]:
        """Every count so far: (stage, code or no-reply class, enhanced code or "") -> n."""
        counts = self._counts
        for stage, record in list(self._records.items()):
            record.fold_replies()
            if not record.replies:
                continue
            replies, record.replies = record.replies, {}
            if stage in _NOT_REPLIES:
                continue
            for reply, n in replies.values():
                key = (stage, str(reply.code), reply.enhanced or "")
                counts[key] = counts.get(key, 0) + n
        return counts

    def no_reply(self, stage: str, exception: BaseException) -> None:
        kind = no_reply_class(exception)
        if kind is not None:
            key = (stage, kind, "")
            self._counts[key] = self._counts.get(key, 0) + 1

    def add(self, other: ReplyCodes) -> None:
        counts = self.counts
        for key, n in other.counts.items():
            counts[key] = counts.get(key, 0) + n

    def clear(self) -> None:
        self._counts.clear()
        for record in self._records.values():
            record.replies = {}
            record.seen = []
        self.rate_base = {}
        self.rate_time = 0.0

    def to_list(self) -> list[list[Any]]:
        return [[stage, code, enhanced, n] for (stage, code, enhanced), n in self.counts.items()]

    @classmethod
    def from_list(cls, rows: list[list[Any]]) -> ReplyCodes:
        codes = cls()
        for stage, code, enhanced, n in rows:
            codes._counts[(str(stage), str(code), str(enhanced))] = int(n)
        return codes

    def by_class(self) -> dict[str, int]:
        """Replies by class: ``2xx``, ``3xx``, ``4xx``, ``5xx``, and the no-reply classes."""
        classes: dict[str, int] = {}
        for (_stage, code, _enhanced), n in self.counts.items():
            kind = f"{code[0]}xx" if code[:1].isdigit() else code
            classes[kind] = classes.get(kind, 0) + n
        return classes


def codes_of(environment: Environment) -> dict[str, ReplyCodes]:
    table: dict[str, ReplyCodes] | None = getattr(environment, _ATTRIBUTE, None)
    if table is None:
        table = {}
        setattr(environment, _ATTRIBUTE, table)
    return table


def codes_for(environment: Environment, request_type: str) -> ReplyCodes:
    from .recorder import recorder_of

    table = codes_of(environment)
    codes = table.get(request_type)
    if codes is None:
        records = recorder_of(environment).table(request_type)
        codes = table[request_type] = ReplyCodes(records)
    return codes


def reset(environment: Environment, **_kwargs: Any) -> None:
    for codes in codes_of(environment).values():
        codes.clear()


def install(environment: Environment, **_kwargs: Any) -> None:
    """``events.init`` listener: workers report their counts, the master sums them."""

    def ship() -> dict[str, Any] | None:
        table = codes_of(environment)
        shipped = {kind: codes.to_list() for kind, codes in table.items()}
        return shipped if any(shipped.values()) else None

    def take(kind: str, rows: Any) -> None:
        codes_for(environment, kind).add(ReplyCodes.from_list(rows))

    sum_on_master(environment, _REPORT_KEY, ship, take, lambda: reset(environment))
