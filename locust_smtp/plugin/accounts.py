"""Which row of an ``auth_credentials_file`` each user takes.

The users of a run take the rows in turn, the Nth user to authenticate row N (modulo
the number of rows), counted over the whole run: in one process by the process, and
across Locust workers by the master, which hands out the row numbers (custom messages
``smtp_account`` and ``smtp_account_grant``). So concurrent users use different
accounts whenever the file has at least as many rows as there are users, however the
users are spread over workers. A new test (the web UI's *Start*) starts again at row 0.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import AsyncResult
from locust.exception import LocustError

if TYPE_CHECKING:
    from locust.env import Environment

ACCOUNT, ACCOUNT_GRANT = "smtp_account", "smtp_account_grant"
GRANT_TIMEOUT = 30.0


class AccountNumbers:
    """Row numbers for one environment: counted here, or asked of the master."""

    def __init__(self) -> None:
        self._numbers = itertools.count()
        self._waiting: deque[AsyncResult] = deque()

    def take(self, environment: Environment) -> int:
        """The next row number of the run."""
        from locust.runners import WorkerRunner

        runner: Any = environment.runner
        if not isinstance(runner, WorkerRunner):
            return next(self._numbers)
        answer: AsyncResult = AsyncResult()
        self._waiting.append(answer)
        runner.send_message(ACCOUNT, {})
        try:
            return int(answer.get(timeout=GRANT_TIMEOUT))
        except gevent.Timeout:
            self._waiting.remove(answer)
            raise LocustError(
                f"no credentials row from the master in {GRANT_TIMEOUT:.0f} s"
            ) from None

    def on_grant(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        if self._waiting:
            self._waiting.popleft().set(int(msg.data["n"]))

    def on_ask(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        runner: Any = environment.runner
        runner.send_message(ACCOUNT_GRANT, {"n": next(self._numbers)}, client_id=msg.node_id)

    def reset(self) -> None:
        self._numbers = itertools.count()


def accounts_of(environment: Environment) -> AccountNumbers:
    numbers = getattr(environment, "smtp_accounts", None)
    if numbers is None:
        numbers = AccountNumbers()
        environment.smtp_accounts = numbers  # type: ignore[attr-defined]
    return numbers


def register(environment: Environment) -> None:
    """The master answers workers' requests; workers take the answers."""
    from locust.runners import MasterRunner, WorkerRunner

    runner: Any = environment.runner
    numbers = accounts_of(environment)
    if isinstance(runner, MasterRunner):
        runner.register_message(ACCOUNT, numbers.on_ask)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(ACCOUNT_GRANT, numbers.on_grant)


def reset(environment: Environment, **_kwargs: Any) -> None:
    """A new test starts at row 0 (on the master, and in a single process)."""
    accounts_of(environment).reset()
