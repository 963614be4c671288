"""Exactly ``--smtp-messages`` messages across Locust workers (``--processes``, ``--master``).

The master holds the pool. A worker's user that wants a message asks the
master for one (custom message ``smtp_claim``); the master grants it (with its
Message-Id number) or answers that the pool is empty (``smtp_grant``). A
worker reports every attempted message back (``smtp_done``). When every
message has been granted and reported, the master stops the run (headless:
Locust exits; web UI: the test stops and the numbers stay).

A worker that dies or goes missing while holding granted messages: those
messages are counted as failed ``message`` requests (``WorkerLost``) in the
master's statistics, so attempted + lost = total and the run still ends. A
worker that joins late, or has no users, simply asks for nothing or is told
the pool is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import AsyncResult

from . import stages

if TYPE_CHECKING:
    from locust.env import Environment

logger = logging.getLogger(__name__)

CLAIM, GRANT, DONE, RELEASE, FATAL, DELIVERED = (
    "smtp_claim",
    "smtp_grant",
    "smtp_done",
    "smtp_release",
    "smtp_fatal",
    "smtp_delivered",  # locust-smtp -c: a worker wrote a message's "." line
)
GRANT_TIMEOUT = 60.0
WATCH_INTERVAL = 1.0


class WorkerLost(Exception):
    """Messages a worker had claimed when it disappeared; never known to be sent."""

    def __repr__(self) -> str:
        return "WorkerLost('message')"


class MasterPool:
    """The master's side: hands out messages, counts them back, notices lost workers."""

    def __init__(self, environment: Environment, total: int, on_done: Callable[[], None]) -> None:
        self.environment = environment
        self.total = total
        self.granted = 0
        self.finished = 0
        self.lost = 0
        self.outstanding: dict[str, int] = {}
        self._on_done = on_done
        self._stopped = False
        self._watcher = gevent.spawn(self._watch_workers)

    def on_claim(self, environment: Environment, msg: Any) -> None:
        runner: Any = environment.runner
        want = int(msg.data.get("n", 1)) if isinstance(msg.data, dict) else 1
        count = max(0, min(want, self.total - self.granted))
        first_left = self.total - self.granted - 1
        self.granted += count
        if count:
            self.outstanding[msg.node_id] = self.outstanding.get(msg.node_id, 0) + count
        runner.send_message(GRANT, {"count": count, "first": first_left}, client_id=msg.node_id)

    def on_done(self, environment: Environment, msg: Any) -> None:
        n = int(msg.data.get("n", 0))
        self.finished += n
        self.outstanding[msg.node_id] = self.outstanding.get(msg.node_id, 0) - n
        self._check()

    def on_release(self, environment: Environment, msg: Any) -> None:
        n = int(msg.data.get("n", 0))
        self.granted -= n
        self.outstanding[msg.node_id] = self.outstanding.get(msg.node_id, 0) - n

    def _watch_workers(self) -> None:
        from locust.runners import STATE_MISSING

        while not self._stopped:
            gevent.sleep(WATCH_INTERVAL)
            runner: Any = self.environment.runner
            if runner is None:
                continue
            for node_id, count in list(self.outstanding.items()):
                client = runner.clients.get(node_id)
                if count > 0 and (client is None or client.state == STATE_MISSING):
                    self._count_lost(node_id, count)
            self._check()

    def _count_lost(self, node_id: str, count: int) -> None:
        logger.warning("worker %s went away holding %d message(s); counted failed", node_id, count)
        self.outstanding[node_id] = 0
        self.lost += count
        stats = self.environment.stats
        error = WorkerLost(f"worker {node_id} lost with {count} claimed message(s)")
        request_type = "SMTP"
        for _ in range(count):
            stats.log_request(request_type, stages.MESSAGE, 0, 0)
            stats.log_error(request_type, stages.MESSAGE, error)

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
    """A worker's side, with the interface of :class:`~locust_smtp.pool.MessagePool`."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self._waiting: AsyncResult | None = None
        self._exhausted = False

    def claim(self) -> int | None:
        if self._exhausted:
            return None
        while self._waiting is not None:  # one request at a time; others wait for it
            self._waiting.wait(GRANT_TIMEOUT)
        self._waiting = result = AsyncResult()
        runner: Any = self.environment.runner
        try:
            runner.send_message(CLAIM, {"n": 1})
            grant = result.get(timeout=GRANT_TIMEOUT)
        except gevent.Timeout:
            grant = {"count": 0}
        finally:
            self._waiting = None
        if not grant.get("count"):
            self._exhausted = True
            return None
        return int(grant["first"])

    def on_grant(self, environment: Environment, msg: Any) -> None:
        if self._waiting is not None:
            self._waiting.set(msg.data)

    def finish(self) -> None:
        runner: Any = self.environment.runner
        runner.send_message(DONE, {"n": 1})

    def release(self) -> None:
        runner: Any = self.environment.runner
        self._exhausted = False
        runner.send_message(RELEASE, {"n": 1})

    def on_exhausted(self, callback: Callable[[], None]) -> None:
        """Workers do not stop the run; the master does."""
