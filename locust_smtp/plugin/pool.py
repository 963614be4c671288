"""The message pool: exactly ``-m`` messages in total, however many users send them.

As in smtp-source (reference §7.1) the pool is one global counter: a user
*claims* a message before it starts it, and a claimed message is attempted
exactly once, whether it is then accepted, rejected or fails. When every
message has been claimed, users end their sessions; when the last claimed
message has finished, the pool fires ``exhausted`` and the run stops.

The claim returns what smtp-source shows as the third Message-Id field: the
number of messages left after this one (``-m 3`` gives 2, 1, 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from locust.env import Environment


class MessagePool:
    """A budget of ``total`` messages shared by every user of one process."""

    def __init__(self, total: int) -> None:
        if total < 0:
            raise ValueError(f"bad message count: {total}")
        self.total = total
        self.claimed = 0
        self.finished = 0
        self._issued = 0
        self._returned: list[int] = []
        self._on_exhausted: list[Callable[[], None]] = []
        self._fired = False

    def claim(self) -> int | None:
        """Take one message; returns its number (how many were left after it when it was
        first handed out: ``-m 3`` gives 2, 1, 0), or None if none was left."""
        if self.claimed >= self.total:
            return None
        self.claimed += 1
        if self._returned:
            return self._returned.pop()
        self._issued += 1
        return self.total - self._issued

    def release(self, number: int) -> None:
        """Give back claimed message ``number``, not attempted (its user was stopped before
        sending it); another user will send it, with the same number."""
        self.claimed -= 1
        self._returned.append(number)

    def finish(self) -> None:
        """A claimed message has been attempted (whatever the outcome)."""
        self.finished += 1
        if self.finished >= self.total:
            self._check()

    def on_exhausted(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when every message has been claimed and finished."""
        self._on_exhausted.append(callback)
        self._check()

    def _check(self) -> None:
        if not self._fired and self.finished >= self.total:
            self._fired = True
            for callback in self._on_exhausted:
                callback()


_ATTRIBUTE = "smtp_message_pool"


def get_pool(environment: Environment) -> MessagePool | None:
    """The pool of this environment, if the run has a message count (on a worker, a
    :class:`~locust_smtp.plugin.distributed.WorkerPool` with the same interface)."""
    pool: Any = getattr(environment, _ATTRIBUTE, None)
    return pool  # type: ignore[no-any-return]


def set_pool(environment: Environment, pool: MessagePool | None) -> None:
    setattr(environment, _ATTRIBUTE, pool)
