"""Synthetic client addresses for users: which one each user (or connection) gets.

Numbers come from a process-wide counter, interleaved across Locust workers by the
worker's index when the number of workers is known (``--processes``,
``--expect-workers``), so that one machine's users look like many different
clients; :class:`~locust_smtp.protocol.client_identity.AddressPool` turns a number
into an address of the user's CIDR block.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from locust.env import Environment

_numbers = itertools.count()


def worker_index(environment: Environment) -> int | None:
    """This process's index among the run's Locust workers (None: it is not a worker)."""
    from locust.runners import WorkerRunner

    runner: Any = environment.runner
    return int(runner.worker_index) if isinstance(runner, WorkerRunner) else None


def worker_slot(environment: Environment) -> tuple[int, int]:
    """(this worker's index, the number of workers) when known, else (index, index + 1)
    for a worker and (0, 1) for a single process."""
    index = worker_index(environment)
    if index is None:
        return 0, 1
    options = environment.parsed_options
    workers = int(getattr(options, "processes", 0) or 0) if options is not None else 0
    if workers <= 0 and options is not None:
        workers = int(getattr(options, "expect_workers", 1) or 1)
    return index, max(workers, index + 1)


def next_client_number(environment: Environment) -> int:
    """A number no other user or connection of the run has been given (while the number
    of workers is known; beyond it, numbers of different workers may meet)."""
    index, stride = worker_slot(environment)
    return next(_numbers) * stride + index
