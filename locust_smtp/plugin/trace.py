"""End-to-end delivery tracing, the generator's side: a header on every message.

With ``trace_delivery`` (``--smtp-trace-delivery``, ``locust-smtp --trace-delivery``)
each message starts with

    X-Locust-Smtp-Trace: run=<run id>; seq=<n>; sent=<Unix time, µs>

so that whatever receives it (the bundled sink, also behind the server under test)
can tell which run it belongs to, whether it came twice or never, and how long it
took (docs/delivery.md). The header is the message's first line: it is added to the
content as it goes out, after any headers the content has, so a message with none
gains a header section of one field.

``run`` is ``--smtp-run-id`` or, by default, one made when the test starts (on the
master, which hands it to the workers). ``seq`` is the message's place in the run's
exact count (``--smtp-messages``, ``-m``): 0, 1, 2 ... across all workers, so the
receiver knows what is missing. Without a count each process numbers its own
messages, and a worker's run id gets ``.wN`` (its index) so that numbers never
collide.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

HEADER = b"X-Locust-Smtp-Trace"
RUN_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def new_run_id() -> str:
    """A run id that says when the run started: ``20261126T234812-3f9a``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(2).hex()


def check_run_id(run_id: str) -> str:
    if not 1 <= len(run_id) <= 64 or not set(run_id) <= RUN_ID_CHARS:
        raise ValueError(f"bad run id: {run_id!r} (1 to 64 of A-Z a-z 0-9 . _ -)")
    return run_id


def trace_header(run_id: str, seq: int, sent: float | None = None) -> bytes:
    """The header line, CRLF included."""
    when = time.time() if sent is None else sent
    return b"%s: run=%s; seq=%d; sent=%.6f\r\n" % (HEADER, run_id.encode(), seq, when)


class Tracer:
    """One user's numbering of its messages in the run (for the trace header and the
    templates' ``{seq}`` and ``{run_id}``)."""

    def __init__(self, run_id: str, total: int, worker: int | None) -> None:
        self.total = total
        """The run's exact message count (0: none), whose numbers count down."""
        self.run_id = run_id if total or worker is None else f"{run_id}.w{worker}"
        self._numbers = _process_numbers

    def seq(self, number: int | None) -> int:
        """The run's number (from 0 up) of the message the pool numbered ``number``
        (None: no pool, so the process's next number)."""
        if number is None or not self.total:
            return next(self._numbers)
        return self.total - 1 - number  # the pool counts down from total - 1

    def header(self, seq: int) -> bytes:
        """The trace header of message ``seq`` (:meth:`seq`)."""
        return trace_header(self.run_id, seq)


_process_numbers = itertools.count()


def name_run(environment: Any, **_kwargs: Any) -> None:
    """At a test's start on the master or a local runner: a run id unless one was given,
    and the number of workers (Locust sends both to the workers with the options)."""
    from locust.runners import MasterRunner, WorkerRunner

    options = environment.parsed_options
    runner = environment.runner
    if options is None or isinstance(runner, WorkerRunner):
        return
    # (the workers' number too: --smtp-unique-addresses splits address files by it)
    options.smtp_worker_count = runner.worker_count if isinstance(runner, MasterRunner) else 1
    given = getattr(options, "smtp_run_id", None)
    if not given or given == "default":
        options.smtp_run_id = new_run_id()


_default_run_id: list[str] = []


def make_tracer(environment: Any) -> Tracer:
    """A user's tracer, from the run's options (or, with none, a run id per process)."""
    from .client_addresses import worker_index
    from .options import option_value
    from .pool import get_pool

    options = environment.parsed_options
    run_id = option_value(options, "smtp_run_id") if options is not None else None
    if not run_id:
        if not _default_run_id:
            _default_run_id.append(new_run_id())
        run_id = _default_run_id[0]
    total = option_value(options, "smtp_messages") if options is not None else None
    pool = get_pool(environment)
    if not total and pool is not None:
        total = getattr(pool, "total", 0)
    return Tracer(check_run_id(str(run_id)), int(total or 0), worker_index(environment))
