"""Exactly ``--smtp-messages`` messages across Locust workers (``--processes``, ``--master``).

The master holds the pool. A worker's users that want messages ask the master
(custom message ``smtp_claim``, one request for all the users waiting at the
time); the master grants what is left, each message with its Message-Id
number (``smtp_grant``; no numbers: the pool is empty). Workers report
attempted messages back (``smtp_done``, batched) and give back messages whose
user stopped before sending them (``smtp_release``: the numbers are granted
again first). When every message has been granted and reported, and the
workers' users have ended their sessions (``smtp_idle``), the master stops the
run (headless: Locust exits; web UI: the test stops and the numbers stay).

A worker that dies or goes missing while holding granted messages: those
messages are counted as failed ``message`` requests (``WorkerLost``) in the
master's statistics, so attempted + lost = total and the run still ends. A
worker that joins late, or has no users, simply asks for nothing or is told
the pool is empty.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import AsyncResult

from ..protocol import stages
from .outcomes import outcomes_for
from .pool import MessagePool

if TYPE_CHECKING:
    from locust.env import Environment

logger = logging.getLogger(__name__)

CLAIM, GRANT, DONE, RELEASE, FATAL, DELIVERED, IDLE = (
    "smtp_claim",
    "smtp_grant",
    "smtp_done",
    "smtp_release",
    "smtp_fatal",
    "smtp_delivered",  # locust-smtp -c: a worker wrote a message's "." line
    "smtp_idle",  # a worker's users have all ended their sessions after the pool ran out
)
GRANT_TIMEOUT = 60.0
DONE_DELAY = 0.02
WATCH_INTERVAL = 1.0
LOST_AFTER = 10.0
"""Seconds a worker stays missing (Locust marks it so after about 3 s without a
heartbeat) before the messages it holds are counted lost: a worker that only stalled
(a busy machine, a paused process) comes back within it and reports them itself, so
that no message is counted twice."""


class WorkerLost(Exception):
    """Messages a worker had claimed when it disappeared; never known to be sent. Recorded
    as failed ``message`` requests of the run's request type (LMTP when its messages so far
    were LMTP, else SMTP)."""

    def __repr__(self) -> str:
        return "WorkerLost('message')"


class MasterPool:
    """The master's side: hands out messages, counts them back, notices lost workers."""

    def __init__(self, environment: Environment, total: int, on_done: Callable[[], None]) -> None:
        self.environment = environment
        self.total = total
        self._numbers = MessagePool(total)  # what is granted, and with which numbers
        self.finished = 0
        self.lost = 0
        """Messages granted to workers that went away before saying they attempted them."""
        self.results_lost = 0
        """Messages of workers that went away whose results never reached the master
        (counted failed): ``lost`` and those attempted after the worker's last report."""
        self.outstanding: dict[str, int] = {}
        self.idle: set[str] = set()
        """Workers whose users have all ended after the pool ran out."""
        self._missing_since: dict[str, float] = {}
        self._granted_to: dict[str, int] = {}
        """Messages granted to each worker (and not given back)..."""
        self._reported_by: dict[str, int] = {}
        """...and the ``message`` requests its statistics reports carried: a worker that
        dies takes with it the results of the difference."""
        self._on_done = on_done
        self._stopped = False
        self._watcher = gevent.spawn(self._watch_workers)

    def on_claim(self, environment: Environment, msg: Any) -> None:
        runner: Any = environment.runner
        want = int(msg.data.get("n", 1)) if isinstance(msg.data, dict) else 1
        numbers: list[int] = []
        while len(numbers) < want and (number := self._numbers.claim()) is not None:
            numbers.append(number)
        count = len(numbers)
        if count:
            self.outstanding[msg.node_id] = self.outstanding.get(msg.node_id, 0) + count
            self._granted_to[msg.node_id] = self._granted_to.get(msg.node_id, 0) + count
        runner.send_message(GRANT, {"numbers": numbers}, client_id=msg.node_id)

    @property
    def granted(self) -> int:
        """Messages granted to workers and not given back."""
        return self._numbers.claimed

    def on_done(self, environment: Environment, msg: Any) -> None:
        self.count_done(msg.node_id, int(msg.data.get("n", 0)))

    def count_done(self, node_id: str, n: int) -> None:
        """Worker ``node_id`` attempted ``n`` more of its messages (``smtp_done``, or its
        statistics report)."""
        self.finished += n
        self.outstanding[node_id] = self.outstanding.get(node_id, 0) - n
        self._check()

    def count_reported(self, node_id: str, entries: Iterable[dict[str, Any]]) -> None:
        """Worker ``node_id``'s statistics report arrived with these entries."""
        n = sum(int(e.get("num_requests", 0)) for e in entries if e.get("name") == stages.MESSAGE)
        if n:
            self._reported_by[node_id] = self._reported_by.get(node_id, 0) + n

    def on_idle(self, environment: Environment, msg: Any) -> None:
        self.idle.add(msg.node_id)

    def workers_busy(self) -> bool:
        """True while some worker may still have users ending their sessions (QUIT)."""
        from locust.runners import STATE_MISSING

        runner: Any = self.environment.runner
        return any(
            client.state != STATE_MISSING and client.id not in self.idle and client.user_count > 0
            for client in runner.clients.values()
        )

    def on_release(self, environment: Environment, msg: Any) -> None:
        numbers = [int(n) for n in msg.data.get("numbers", ())]
        for number in numbers:
            self._numbers.release(number)  # granted again first, with the same number
        self.outstanding[msg.node_id] = self.outstanding.get(msg.node_id, 0) - len(numbers)
        self._granted_to[msg.node_id] = self._granted_to.get(msg.node_id, 0) - len(numbers)

    def _watch_workers(self) -> None:
        from locust.runners import STATE_MISSING

        while not self._stopped:
            gevent.sleep(WATCH_INTERVAL)
            runner: Any = self.environment.runner
            if runner is None:
                continue
            now = time.monotonic()
            for node_id, count in list(self.outstanding.items()):
                client = runner.clients.get(node_id)
                if client is not None and client.state != STATE_MISSING:
                    self._missing_since.pop(node_id, None)
                    continue
                since = self._missing_since.setdefault(node_id, now)
                if count > 0 and (client is None or now - since >= LOST_AFTER):
                    self._count_lost(node_id, count)
            self._check()

    def _count_lost(self, node_id: str, count: int) -> None:
        logger.warning("worker %s went away holding %d message(s); counted failed", node_id, count)
        self.outstanding[node_id] = 0
        self.lost += count
        # and those it attempted whose results went with its unsent statistics report:
        # failed too (the server may have them), so that the statistics hold every message
        # it was granted, once
        unreported = self._granted_to.get(node_id, 0) - self._reported_by.get(node_id, 0)
        self._granted_to[node_id] = self._reported_by[node_id] = 0
        if unreported > count:
            logger.warning(
                "worker %s went away with the results of %d attempted message(s); counted failed",
                node_id,
                unreported - count,
            )
        count = max(unreported, 0)  # (fewer than held: some were in its last report)
        stats = self.environment.stats
        self.results_lost += count
        error = WorkerLost(f"worker {node_id} lost with the results of {count} message(s)")
        # the run's request type: LMTP if its messages so far were LMTP
        lmtp = (stages.MESSAGE, "LMTP") in stats.entries
        request_type = "LMTP" if lmtp and (stages.MESSAGE, "SMTP") not in stats.entries else "SMTP"
        outcomes = outcomes_for(self.environment, request_type)
        now = time.time()
        for _ in range(count):
            stats.log_request(request_type, stages.MESSAGE, 0, 0)
            stats.log_error(request_type, stages.MESSAGE, error)
            outcomes.count("failed", now)

    def _check(self) -> None:
        if self._stopped or self.granted < self.total:
            return
        if self.finished + self.lost >= self.total:
            self._stopped = True
            self._on_done()

    def report(self) -> str:
        return (
            f"message pool: {self.total} messages, {self.granted} claimed, "
            f"{self.finished} attempted, {self.lost} lost with workers"
        )

    def close(self) -> None:
        self._stopped = True
        self._watcher.kill(block=False)


class WorkerPool:
    """A worker's side, with the interface of :class:`~locust_smtp.plugin.pool.MessagePool`.

    Claims are batched: while one request is on its way to the master, users that
    want a message queue up, and the next request asks for all of them at once.
    Every granted message goes straight to a waiting user (a user that gave up
    waiting has its message given back), so a worker never holds a stock that
    another worker could have sent. Finished messages are reported in batches too,
    at most :data:`DONE_DELAY` seconds late."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self._waiters: deque[AsyncResult] = deque()
        self._asked = 0  # messages asked for by the request on its way, 0 if none
        self._exhausted = False
        self._done = 0
        self._flush: gevent.Greenlet[Any, Any] | None = None
        self._idle_report: gevent.Greenlet[Any, Any] | None = None

    def claim(self) -> int | None:
        if self._exhausted:
            return None
        waiter = AsyncResult()
        self._waiters.append(waiter)
        if not self._asked:
            self._ask()
        try:
            number: int | None = waiter.get(timeout=GRANT_TIMEOUT)
        except BaseException as exc:
            # stopped or timed out while waiting: the message, if it came, goes back
            if waiter.ready() and waiter.value is not None:
                self.release(waiter.value)
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(exc, gevent.Timeout):
                self._exhausted = True
                return None
            raise
        return number

    def _ask(self) -> None:
        self._asked = len(self._waiters)
        runner: Any = self.environment.runner
        runner.send_message(CLAIM, {"n": self._asked})

    def on_grant(self, environment: Environment, msg: Any) -> None:
        numbers = deque(int(n) for n in msg.data.get("numbers", ()))
        count = len(numbers)
        asked, self._asked = self._asked, 0
        while numbers and self._waiters:
            self._waiters.popleft().set(numbers.popleft())
        if numbers:  # their users stopped waiting meanwhile
            runner: Any = self.environment.runner
            runner.send_message(RELEASE, {"numbers": list(numbers)})
        if count < asked:
            self._exhausted = True
            while self._waiters:
                self._waiters.popleft().set(None)
            if self._idle_report is None:
                self._idle_report = gevent.spawn(self._report_idle)
        elif self._waiters:
            self._ask()

    def _report_idle(self) -> None:
        """Once every user here has ended its session, say so: the master need not wait
        for the next statistics report to see it."""
        runner: Any = self.environment.runner
        runner.user_greenlets.join()
        self._report_done()
        runner.send_message(IDLE, None)

    def finish(self) -> None:
        self._done += 1
        if self._flush is None:
            self._flush = gevent.spawn_later(DONE_DELAY, self._report_done)

    def _take_done(self) -> int:
        done, self._done = self._done, 0
        if self._flush is not None and self._flush is not gevent.getcurrent():
            self._flush.kill(block=False)
        self._flush = None
        return done

    def _report_done(self) -> None:
        done = self._take_done()
        if done:
            runner: Any = self.environment.runner
            runner.send_message(DONE, {"n": done})

    def report_done_into(self, data: dict[str, Any]) -> None:
        """Add the finished messages not reported yet to a statistics report (Locust sends
        one as a worker quits, after its users were stopped, where a batched
        ``smtp_done`` would come too late: the master would count them lost)."""
        done = self._take_done()
        if done:
            data[DONE] = done

    def release(self, number: int) -> None:
        runner: Any = self.environment.runner
        self._exhausted = False
        runner.send_message(RELEASE, {"numbers": [number]})

    def on_exhausted(self, callback: Callable[[], None]) -> None:
        """Workers do not stop the run; the master does."""
