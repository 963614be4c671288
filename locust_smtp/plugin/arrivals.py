"""The open model: messages start at a target arrival rate, not when a session is free.

smtp-source (and a Locust user with ``wait_time = constant(0)``) is a closed model: a
session sends its next message as soon as the last one is answered, so a slow server
slows the load down and its latency hides in a lower rate ("coordinated omission").
Under an arrival rate (``--smtp-rate``), each message has a *scheduled* time fixed in
advance by the rate alone; the sessions (``-s``, the users) are the capacity that
serves the schedule. A message is reported twice: as ``message``, from its actual
start, and as ``message from schedule``, from its scheduled time, so queueing in the
generator is part of the latency. A message that starts more than
:data:`LATE_AFTER` after its time (every session was busy) is also reported as a
``start lag`` sample of how late it started: that row's count is the number of
messages that could not start on time.

Rate profiles (:func:`parse_profile`): ``RATE`` messages per second, or segments
``RATE/DURATION`` (hold) and ``FROM-TO/DURATION`` (a linear ramp) separated by
commas, the last one held after its duration (which it may omit): ``200``,
``10-200/60s,200/5m,1000/10s,200`` (a ramp, a plateau, a spike, back). Durations take
``ms``, ``s``, ``m`` or ``h`` (seconds by default).

Arrivals are ``constant`` (evenly spaced: the k-th arrival when the profile's
cumulative count reaches k) or ``poisson`` (a Poisson process of that rate: the k-th
arrival when the cumulative count reaches the sum of k exponential draws, seeded).

Across Locust workers the schedule is one: the master fixes its start time, the seed
and the number of workers, and worker ``i`` of ``n`` takes arrivals ``i``, ``i + n``,
``i + 2n``, ...; the run's rate is exact whatever the number of workers, and the sum
of the workers' arrivals is the single-process schedule.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gevent

from ..protocol import stages

ARRIVALS = ("constant", "poisson")
LATE_AFTER = 0.001
"""Seconds after its scheduled time at which a message counts as started late."""
FROM_SCHEDULE = stages.FROM_SCHEDULE
START_LAG = stages.START_LAG

_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class Segment:
    """The rate going from ``start`` to ``end`` messages/s over ``duration`` seconds
    (``math.inf`` for the last, held segment)."""

    start: float
    end: float
    duration: float

    def count(self, t: float) -> float:
        """Arrivals expected in the first ``t`` seconds of the segment."""
        if self.duration == math.inf or self.start == self.end:
            return self.start * t
        slope = (self.end - self.start) / self.duration
        return self.start * t + slope * t * t / 2.0

    def time_of(self, count: float) -> float:
        """The time into the segment at which ``count`` arrivals are expected (inf when
        the rate is zero)."""
        if self.duration == math.inf or self.start == self.end:
            return count / self.start if self.start > 0 else math.inf
        slope = (self.end - self.start) / self.duration
        # start*t + slope*t^2/2 = count; the root in [0, duration]
        disc = self.start * self.start + 2.0 * slope * count
        if disc < 0:
            return math.inf
        if slope == 0:
            return count / self.start
        return (math.sqrt(disc) - self.start) / slope


class RateProfile:
    """A piecewise linear rate over time (messages per second)."""

    def __init__(self, segments: list[Segment], spec: str = "") -> None:
        if not segments:
            raise ValueError("empty rate profile")
        self.segments = segments
        self.spec = spec

    def rate(self, t: float) -> float:
        """The target rate ``t`` seconds into the run."""
        for segment in self.segments:
            if t < segment.duration:
                if segment.duration == math.inf:
                    return segment.start
                return segment.start + (segment.end - segment.start) * t / segment.duration
            t -= segment.duration
        return self.segments[-1].end

    def count_at(self, t: float) -> float:
        """The cumulative count ``t`` seconds into the run (the rate's integral)."""
        total = 0.0
        for segment in self.segments:
            if t <= segment.duration:
                return total + segment.count(t)
            total += segment.count(segment.duration)
            t -= segment.duration
        return total

    def time_of(self, count: float) -> float:
        """Seconds into the run at which the cumulative count reaches ``count``."""
        elapsed = 0.0
        for segment in self.segments:
            whole = segment.count(segment.duration) if segment.duration != math.inf else math.inf
            if count <= whole:
                return elapsed + segment.time_of(count)
            count -= whole
            elapsed += segment.duration
        return math.inf

    def __str__(self) -> str:
        return self.spec


def _duration(text: str, spec: str) -> float:
    found = _DURATION.match(text.strip())
    if found is None:
        raise ValueError(f"bad duration {text!r} in rate profile {spec!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def _rate(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"bad rate {text!r} in rate profile {spec!r}")
    return value


def parse_profile(spec: str) -> RateProfile:
    """``RATE`` or ``RATE/DURATION`` and ``FROM-TO/DURATION`` segments, comma-separated
    (see the module's documentation). Raises ValueError naming what is wrong."""
    parts = [part.strip() for part in str(spec).split(",")]
    segments: list[Segment] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        rates, _, duration_text = part.partition("/")
        low, dash, high = rates.partition("-")
        if dash and not low.strip():  # "-5": a negative rate, not a ramp from nothing
            raise ValueError(f"bad rate {rates.strip()!r} in rate profile {spec!r}")
        start = _rate(low, spec)
        end = _rate(high, spec) if dash else start
        if duration_text:
            duration = _duration(duration_text, spec)
            if duration <= 0:
                raise ValueError(f"bad duration {duration_text!r} in rate profile {spec!r}")
        elif not last:
            raise ValueError(f"segment {part!r} of rate profile {spec!r} needs a /DURATION")
        else:
            duration = math.inf
        if dash and duration == math.inf:
            raise ValueError(f"the ramp {part!r} in rate profile {spec!r} needs a /DURATION")
        segments.append(Segment(start, end, duration))
    if segments[-1].duration != math.inf:  # the last rate is held
        segments.append(Segment(segments[-1].end, segments[-1].end, math.inf))
    if all(s.start == 0 and s.end == 0 for s in segments):
        raise ValueError(f"rate profile {spec!r} never sends anything")
    return RateProfile(segments, spec)


class ArrivalSchedule:
    """One process's share of the run's arrivals: :meth:`take` hands out scheduled
    times in order, each once."""

    def __init__(
        self,
        profile: RateProfile,
        start: float,
        arrivals: str = "constant",
        seed: int = 0,
        worker: int = 0,
        workers: int = 1,
    ) -> None:
        if arrivals not in ARRIVALS:
            raise ValueError(f"bad arrivals {arrivals!r} (one of {', '.join(ARRIVALS)})")
        self.profile = profile
        self.start = start
        self.arrivals = arrivals
        self.worker = worker
        self.workers = max(workers, 1)
        self._counts = self._cumulative_counts(random.Random(seed))
        self._base = 0.0
        self.taken = 0
        self.late = 0

    def _cumulative_counts(self, rng: random.Random) -> Iterator[float]:
        """The cumulative counts at which this worker's arrivals fall."""
        count = 0.0
        k = 0
        while True:
            k += 1
            count = count + rng.expovariate(1.0) if self.arrivals == "poisson" else float(k)
            if (k - 1) % self.workers == self.worker:
                yield count

    def take(self) -> float:
        """The next scheduled time (Unix time; ``inf`` once the profile stops)."""
        self.taken += 1
        count = next(self._counts)
        return self.start + self.profile.time_of(max(count - self._base, 0.0))

    def change(self, profile: RateProfile, at: float | None = None) -> None:
        """Go on at ``profile``'s rates from ``at`` (Unix time, default now): arrivals
        not yet taken are rescheduled (those already due are due at ``at``). Every worker
        given the same ``at`` computes the same new schedule."""
        at = time.time() if at is None else at
        self._base += self.profile.count_at(max(at - self.start, 0.0))
        self.profile = profile
        self.start = at

    def wait(self) -> tuple[float, float]:
        """Take the next arrival and sleep until it is due. Returns (scheduled time,
        how late it started in seconds: 0 when on time)."""
        due = self.take()
        now = time.time()
        if due == math.inf:
            gevent.sleep(10**9)  # nothing more is scheduled: the test's end stops the user
        if due > now:
            gevent.sleep(due - now)
            return due, 0.0
        lag = now - due
        if lag > LATE_AFTER:
            self.late += 1
            return due, lag
        return due, 0.0


_ATTRIBUTE = "smtp_arrivals"
START_LEAD = 1.0
"""Seconds between a distributed test's start on the master and its schedule's start:
the workers hear of the test and start their users in that time."""


def start_schedule(environment: Any, **_kwargs: Any) -> None:
    """At each test's start (``test_start``): on the master or a local runner, fix the
    schedule's start time and seed in the options (Locust sends them to the workers
    with the spawn message, with the worker count :func:`.trace.name_run` puts there);
    everywhere, forget the last test's schedule."""
    from locust.runners import MasterRunner, WorkerRunner

    setattr(environment, _ATTRIBUTE, None)
    options = environment.parsed_options
    runner = environment.runner
    if options is None or isinstance(runner, WorkerRunner):
        return
    from .options import option_value

    if not option_value(options, "smtp_rate"):
        return
    master = isinstance(runner, MasterRunner)
    options.smtp_rate_start = time.time() + (START_LEAD if master else 0.0)
    if option_value(options, "smtp_rate_seed") is None:
        options.smtp_rate_seed = random.randrange(2**31)


def schedule_for(environment: Any) -> ArrivalSchedule | None:
    """This process's arrival schedule for the running test (made at first use), or
    None when no rate is set."""
    schedule: ArrivalSchedule | None = getattr(environment, _ATTRIBUTE, None)
    if schedule is not None:
        return schedule
    options = environment.parsed_options
    if options is None:
        return None
    from locust.exception import LocustError

    from .client_addresses import worker_index
    from .options import option_value

    spec = option_value(options, "smtp_rate")
    if not spec:
        return None
    try:
        profile = parse_profile(spec)
    except ValueError as exc:
        raise LocustError(str(exc)) from None
    start = getattr(options, "smtp_rate_start", None) or time.time()
    seed = option_value(options, "smtp_rate_seed")
    schedule = ArrivalSchedule(
        profile,
        float(start),
        option_value(options, "smtp_arrivals") or "constant",
        int(seed or 0),
        worker_index(environment) or 0,
        int(getattr(options, "smtp_worker_count", 1) or 1),  # (trace.name_run sets it)
    )
    setattr(environment, _ATTRIBUTE, schedule)
    return schedule


RATE_MESSAGE = "smtp_rate"
"""The master's custom message to its workers: a new rate profile and when it applies."""


def change_rate(environment: Any, spec: str) -> str | None:
    """Change the running test's rate to ``spec`` (the web UI's ``/smtp/rate``); on a
    master, every worker changes at the same moment. Returns what is wrong, or None."""
    from locust.runners import MasterRunner

    try:
        profile = parse_profile(spec)
    except ValueError as exc:
        return str(exc)
    schedule = getattr(environment, _ATTRIBUTE, None)
    runner = environment.runner
    master = isinstance(runner, MasterRunner)
    if schedule is None and not master:
        return "no arrival rate is running: start the test with one (--smtp-rate)"
    at = time.time() + (START_LEAD if master else 0.0)
    if environment.parsed_options is not None:
        environment.parsed_options.smtp_rate = spec
        environment.parsed_options.smtp_rate_start = at
    if master:
        runner.send_message(RATE_MESSAGE, {"rate": spec, "at": at})
    if schedule is not None:
        schedule.change(profile, at)
    return None


def on_rate_message(environment: Any, msg: Any, **_kwargs: Any) -> None:
    """A worker hears of a new rate from its master."""
    spec, at = str(msg.data["rate"]), float(msg.data["at"])
    if environment.parsed_options is not None:
        environment.parsed_options.smtp_rate = spec
    schedule = getattr(environment, _ATTRIBUTE, None)
    if schedule is not None:
        schedule.change(parse_profile(spec), at)


def current_rate(environment: Any) -> tuple[str, float] | None:
    """The rate profile in force and its target rate now (messages/s), or None."""
    options = environment.parsed_options
    spec = getattr(options, "smtp_rate", None) if options is not None else None
    if not spec or spec == "default":
        return None
    try:
        profile = parse_profile(spec)
    except ValueError:
        return None
    start = getattr(options, "smtp_rate_start", None) or time.time()
    return spec, profile.rate(max(time.time() - float(start), 0.0))
