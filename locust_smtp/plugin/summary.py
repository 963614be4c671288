"""The short report ``locust-smtp`` prints on stderr at the end of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import stages
from ..protocol._errors import read_failure_key
from .outcomes import Outcomes, outcomes_for
from .recorder import recorder_of

if TYPE_CHECKING:
    from locust.env import Environment
    from locust.stats import RequestStats

_MAX_SPANS = 5
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
"""The percentiles every SMTP table shows, besides the maximum."""
COLUMNS = ("stage", "count", "failed", "avg ms", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")


def stage_rows(environment: Environment, request_type: str) -> list[dict[str, object]]:
    """One row per stage in dialogue order: count and failures from Locust's statistics,
    the mean, percentiles and maximum in ms (three decimals) from the microsecond
    histograms (:mod:`.recorder`; Locust keeps whole milliseconds below 100 ms)."""
    histograms = recorder_of(environment).histograms(request_type)  # flushes first
    stats = environment.stats
    rows: list[dict[str, object]] = []
    for name in stages.ORDER:
        entry = stats.entries.get((name, request_type))
        if entry is None or not (entry.num_requests or entry.num_failures):
            continue
        histogram = histograms.get(name)
        if histogram is not None and histogram.count:
            times = [histogram.percentile(q) / 1000.0 for q in PERCENTILES]
            peak = histogram.max / 1000.0
        else:  # no samples recorded here (a master whose workers sent no histograms)
            times = [float(entry.get_response_time_percentile(q / 100.0)) for q in PERCENTILES]
            peak = float(entry.max_response_time)
        values = [entry.num_requests, entry.num_failures, entry.avg_response_time, *times, peak]
        row: dict[str, object] = {"stage": name}
        for column, value in zip(COLUMNS[1:], values, strict=True):
            row[column] = round(value, 3) if isinstance(value, float) else value
        rows.append(row)
    return rows


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
    recorder_of(environment).flush()
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
    rows = stage_rows(environment, request_type)
    if rows:
        width = max(13, *(len(str(row["stage"])) for row in rows))
        lines.append(
            f"{COLUMNS[0]:<{width}} {COLUMNS[1]:>8} {COLUMNS[2]:>7} "
            + " ".join(f"{c:>8}" for c in COLUMNS[3:])
        )
        for row in rows:
            lines.append(
                f"{row['stage']:<{width}} {row['count']:>8} {row['failed']:>7} "
                + " ".join(f"{row[c]:>8.3f}" for c in COLUMNS[3:])
            )
    failures = failures_by_stage(stats, request_type)
    if failures:
        lines.append("failures by stage and reply code:")
        for key, count in sorted(failures.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count:>8}  {key}")
    return "\n".join(lines)
