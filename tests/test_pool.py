"""The message pools: claim batching across processes, and released numbers reused.

The real :class:`MasterPool` and :class:`WorkerPool` exchange their custom
messages through an in-process bus that delivers each message in its own
greenlet, as Locust's ZeroMQ link does, so that claims from many users overlap
and a user can be killed while its claim is on the way.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gevent
import pytest
from gevent.pool import Group
from locust.env import Environment

from locust_smtp import SmtpUser
from locust_smtp.plugin import distributed
from locust_smtp.plugin.distributed import MasterPool, WorkerPool
from locust_smtp.plugin.pool import set_pool


class Bus:
    """Routes custom messages between one master and its workers, asynchronously."""

    def __init__(self, total: int) -> None:
        self.done = gevent.event.Event()
        self.master_env = SimpleNamespace(runner=SimpleNamespace(clients={}))
        self.master_env.runner.send_message = self._to_worker
        self.master = MasterPool(self.master_env, total, self.done.set)  # type: ignore[arg-type]
        self.workers: dict[str, WorkerPool] = {}
        self.messages: list[tuple[str, str, Any]] = []
        self.held: list[tuple[WorkerPool, Any]] | None = None
        """When a list, grants wait there until :meth:`deliver_held`."""

    def add_worker(self, node_id: str) -> WorkerPool:
        runner = SimpleNamespace(user_greenlets=Group())
        runner.send_message = lambda kind, data=None: self._to_master(node_id, kind, data)
        pool = WorkerPool(SimpleNamespace(runner=runner))  # type: ignore[arg-type]
        self.workers[node_id] = pool
        return pool

    def _to_master(self, node_id: str, kind: str, data: Any) -> None:
        self.messages.append((node_id, kind, data))
        handler = {
            distributed.CLAIM: self.master.on_claim,
            distributed.DONE: self.master.on_done,
            distributed.RELEASE: self.master.on_release,
            distributed.IDLE: self.master.on_idle,
        }[kind]
        msg = SimpleNamespace(node_id=node_id, data=data)
        gevent.spawn(handler, self.master_env, msg)  # type: ignore[arg-type]

    def _to_worker(self, kind: str, data: Any, client_id: str) -> None:
        assert kind == distributed.GRANT
        msg = SimpleNamespace(node_id="master", data=data)
        if self.held is not None:
            self.held.append((self.workers[client_id], msg))
            return
        gevent.spawn(self.workers[client_id].on_grant, None, msg)  # type: ignore[arg-type]

    def deliver_held(self) -> None:
        """Deliver the held grants now, in this greenlet."""
        held, self.held = self.held or [], None
        for pool, msg in held:
            pool.on_grant(None, msg)  # type: ignore[arg-type]


def user(pool: WorkerPool, got: list[int], work: float = 0.0) -> None:
    while (number := pool.claim()) is not None:
        got.append(number)
        gevent.sleep(work)
        pool.finish()


def test_batched_claims_hand_out_every_message_once() -> None:
    bus = Bus(500)
    got: list[int] = []
    for w in range(3):
        pool = bus.add_worker(f"w{w}")
        for _ in range(7):
            pool.environment.runner.user_greenlets.spawn(user, pool, got)
    gevent.joinall([g for p in bus.workers.values() for g in p.environment.runner.user_greenlets])
    assert bus.done.wait(5)
    assert sorted(got) == list(range(500))  # numbers 499 down to 0, each once
    assert (bus.master.granted, bus.master.finished, bus.master.lost) == (500, 500, 0)
    claims = [data["n"] for _, kind, data in bus.messages if kind == distributed.CLAIM]
    assert max(claims) > 1, "users waiting together are served by one request"
    assert len(claims) < 500
    idle = {node for node, kind, _ in bus.messages if kind == distributed.IDLE}
    assert idle == set(bus.workers)


class Waiting(SmtpUser):
    host = "127.0.0.1:1"  # never reached: the user is stopped while "connecting"


def claim_then_send(pool: WorkerPool) -> int | None:
    """A real SmtpUser's claim (counted_message, as every send makes it): stopped before
    sending, it gives the message back; otherwise the message is finished."""
    environment = Environment(user_classes=[Waiting])
    set_pool(environment, pool)
    with Waiting(environment).counted_message() as number:
        gevent.sleep(0.05)  # connecting, say
    return number


@pytest.mark.parametrize("killed", ["before the grant", "after the grant, before sending"])
def test_a_user_killed_while_waiting_gives_its_message_back(killed: str) -> None:
    bus = Bus(10)
    pool = bus.add_worker("w0")
    bus.held = []
    first = gevent.spawn(claim_then_send, pool)
    waiting = [gevent.spawn(claim_then_send, pool) for _ in range(2)]
    while not bus.held:  # the first user's request went alone; the others queued behind it
        gevent.sleep(0.001)
    assert bus.held[0][1].data == {"numbers": [9]}
    bus.deliver_held()  # which sends one request for both queued users
    bus.held = []
    while not bus.held:
        gevent.sleep(0.001)
    assert bus.held[0][1].data == {"numbers": [8, 7]}
    if killed == "before the grant":
        waiting[0].kill()
        bus.deliver_held()
    else:
        bus.deliver_held()
        gevent.sleep(0.01)  # both have their numbers and are "connecting"
        waiting[0].kill()
    # before the grant, the survivor takes the first number; after it, its own
    survivor = 8 if killed == "before the grant" else 7
    assert [first.get(), waiting[1].get()] == [9, survivor]
    gevent.sleep(0.01)
    assert bus.master.granted == 2, "the killed user's message went back"
    got: list[int] = [9, survivor]  # finished by counted_message
    user(pool, got)
    assert bus.done.wait(5)
    assert sorted(got) == list(range(10)), "every message attempted once, numbers unique"
    assert (bus.master.granted, bus.master.finished) == (10, 10)


@pytest.mark.parametrize("asked_then_left", [1, 3])
def test_grants_for_users_that_left_are_released(asked_then_left: int) -> None:
    bus = Bus(10)
    pool = bus.add_worker("w0")
    bus.held = []
    waiters = [gevent.spawn(pool.claim) for _ in range(asked_then_left)]
    while not bus.held:
        gevent.sleep(0.001)
    for g in waiters:
        g.kill()  # every user left while the grant was on its way
    bus.deliver_held()
    gevent.sleep(0.01)
    assert bus.master.granted == 0, "the messages granted to nobody went back"
    assert pool.claim() == 9  # the next user gets the first message, number 9 again


def test_one_process_pool_reuses_a_released_number() -> None:
    from locust_smtp.plugin.pool import MessagePool

    pool = MessagePool(5)
    assert [pool.claim(), pool.claim(), pool.claim()] == [4, 3, 2]
    pool.release(3)
    assert [pool.claim(), pool.claim(), pool.claim(), pool.claim()] == [3, 1, 0, None]
