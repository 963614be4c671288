"""The short report ``locust-smtp`` prints on stderr at the end of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import stages
from ..protocol._errors import read_failure_key
from .outcomes import Outcomes, outcomes_for

if TYPE_CHECKING:
    from locust.env import Environment
    from locust.stats import RequestStats

_MAX_SPANS = 5


def failures_by_stage(stats: RequestStats, request_type: str) -> dict[str, int]:
    """Stage failures counted by ``"STAGE CODE ENHANCED (Kind)"`` (the ``message`` rows,
    which repeat them, left out)."""
    failures: dict[str, int] = {}
    for e in stats.errors.values():
        if e.method != request_type or e.name == stages.MESSAGE:
            continue
        kind, where = read_failure_key(e.error)
        key = f"{where} ({kind})"
        failures[key] = failures.get(key, 0) + e.occurrences
    return failures


def outcome_lines(outcomes: Outcomes, start_time: float) -> list[str]:
    """Recipients, and when messages failed (an outage shows as a span of seconds)."""
    lines = [
        f"recipients: {outcomes.recipients_accepted} accepted, "
        f"{outcomes.recipients_refused} refused; "
        f"{outcomes.partial} messages accepted for only some of their recipients"
    ]
    spans = outcomes.outages(start_time)
    if spans:
        text = ", ".join(f"{span}: {n}" for span, n in spans[:_MAX_SPANS])
        more = f" (and {len(spans) - _MAX_SPANS} more spans)" if len(spans) > _MAX_SPANS else ""
        lines.append(f"failed messages by time since the start: {text}{more}")
    return lines


def render(environment: Environment, request_type: str, program: str) -> str:
    stats = environment.stats
    outcomes = outcomes_for(environment, request_type)
    total = stats.total
    elapsed = max((total.last_request_timestamp or total.start_time) - total.start_time, 1e-9)
    attempted = outcomes.attempted
    interrupted = f", {outcomes.interrupted} interrupted" if outcomes.interrupted else ""
    lines = [
        f"{program}: {attempted} messages in {elapsed:.2f} s ({attempted / elapsed:.0f}/s): "
        f"{outcomes.accepted} accepted, {outcomes.rejected} rejected, "
        f"{outcomes.failed} failed{interrupted}",
        *outcome_lines(outcomes, total.start_time),
    ]
    rows = [
        (name, stats.entries[(name, request_type)])
        for name in stages.ORDER
        if (name, request_type) in stats.entries
    ]
    if rows:
        # Locust keeps percentiles in whole milliseconds below 100 ms; the mean and the
        # maximum are exact, so they show what a sub-millisecond server does
        lines.append(
            f"{'stage':<12} {'count':>8} {'failed':>7} {'avg ms':>8} {'p50 ms':>7} "
            f"{'p95 ms':>7} {'p99 ms':>7} {'max ms':>8}"
        )
        for name, entry in rows:
            p = [entry.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99)]
            lines.append(
                f"{name:<12} {entry.num_requests:>8} {entry.num_failures:>7} "
                f"{entry.avg_response_time:>8.3f} {p[0]:>7} {p[1]:>7} {p[2]:>7} "
                f"{entry.max_response_time:>8.3f}"
            )
    failures = failures_by_stage(stats, request_type)
    if failures:
        lines.append("failures by stage and reply code:")
        for key, count in sorted(failures.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count:>8}  {key}")
    return "\n".join(lines)
