"""Which row of an ``auth_credentials_file`` each user takes.

A user takes the lowest row number no running user holds, and gives it back when it
stops: so concurrent users use different accounts whenever the file has at least as
many rows as there are users (more users than rows: the numbers go on past the end
and wrap around, modulo the rows). One process counts for itself; across Locust
workers the master counts for all of them (custom messages ``smtp_account``, answered
by ``smtp_account_grant`` with the request's id, and ``smtp_account_release``), so the
rule holds however Locust spreads the users. A new test (the web UI's *Start*)
starts again from row 0.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import AsyncResult

from ..protocol import stages
from ..protocol._errors import SmtpError

if TYPE_CHECKING:
    from locust.env import Environment

ACCOUNT, ACCOUNT_GRANT, ACCOUNT_RELEASE = (
    "smtp_account",
    "smtp_account_grant",
    "smtp_account_release",
)
GRANT_TIMEOUT = 30.0


class NoAccount(SmtpError):
    """The master did not hand out a credentials row in time (stage ``AUTH``)."""

    def __init__(self) -> None:
        super().__init__(
            stages.AUTH, f"no credentials row from the master in {GRANT_TIMEOUT:.0f} s"
        )


class AccountNumbers:
    """Row numbers for one environment: counted here, or asked of the master."""

    def __init__(self) -> None:
        self._next = 0
        self._free: list[int] = []
        """Numbers given back, taken again lowest first."""
        self._ids = itertools.count()
        self._waiting: dict[int, AsyncResult] = {}

    def take(self, environment: Environment) -> int:
        """The lowest free row number of the run; raises :class:`NoAccount` when the
        master does not answer."""
        from locust.runners import WorkerRunner

        runner: Any = environment.runner
        if not isinstance(runner, WorkerRunner):
            return self._take_here()
        request = next(self._ids)
        answer: AsyncResult = AsyncResult()
        self._waiting[request] = answer
        try:
            runner.send_message(ACCOUNT, {"id": request})
            return int(answer.get(timeout=GRANT_TIMEOUT))
        except gevent.Timeout:
            raise NoAccount() from None
        finally:
            del self._waiting[request]  # a late answer finds nobody waiting

    def give_back(self, environment: Environment, number: int) -> None:
        from locust.runners import WorkerRunner

        runner: Any = environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(ACCOUNT_RELEASE, {"n": number})
        else:
            self._give_back_here(number)

    def _take_here(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        number = self._next
        self._next += 1
        return number

    def _give_back_here(self, number: int) -> None:
        if number < self._next and number not in self._free:
            heapq.heappush(self._free, number)

    # the master's side, and the worker's handler of its answers

    def on_ask(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        runner: Any = environment.runner
        data = {"id": msg.data.get("id"), "n": self._take_here()}
        runner.send_message(ACCOUNT_GRANT, data, client_id=msg.node_id)

    def on_release(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        self._give_back_here(int(msg.data["n"]))

    def on_grant(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        answer = self._waiting.get(msg.data.get("id"))
        if answer is not None:
            answer.set(int(msg.data["n"]))
        else:  # its user gave up waiting (or was stopped): hand the number back
            self.give_back(environment, int(msg.data["n"]))

    def reset(self) -> None:
        self._next = 0
        self._free.clear()


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
        runner.register_message(ACCOUNT_RELEASE, numbers.on_release)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(ACCOUNT_GRANT, numbers.on_grant)


def reset(environment: Environment, **_kwargs: Any) -> None:
    """A new test starts at row 0 (on the master, and in a single process)."""
    accounts_of(environment).reset()
