"""The SMTP dashboard: per-stage latency in dialogue order, reply codes, and history.

What the web UI's SMTP tab shows live and the HTML report keeps after the run, drawn
on the server as HTML tables and inline SVG (no JavaScript library, nothing fetched
from the network):

* **stages**, in dialogue order (connect, TLS, banner, EHLO/HELO/LHLO, STARTTLS, AUTH,
  MAIL, RCPT, DATA/BDAT, end of data, RSET, QUIT, message): count, failures,
  p50/p90/p99/p99.9/max in ms from the microsecond histograms, and the current rate;
* **reply codes** by stage: the basic code and the enhanced status code, counts and
  current rate; timeouts, lost connections and TLS failures in classes of their own
  (:mod:`.codes`);
* **history**, sampled every second (on a master, just after its workers report, which
  they do every 3 s):
  messages accepted, rejected and failed per second with the user count (the run's
  ramps and stops show as its steps), per-stage p50 and p99 over each interval, and the
  share of 4xx and 5xx replies. On a master every figure is the sum of the workers'.

The history is also the last part of ``PREFIX_smtp.csv`` (:func:`history_csv_rows`).
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent

from ..histogram import Histogram, bucket_range
from ..protocol import stages
from .codes import NO_REPLY, codes_of
from .outcomes import outcomes_of
from .recorder import recorder_of
from .summary import COLUMNS, stage_rows

if TYPE_CHECKING:
    from locust.env import Environment

HISTORY_LIMIT = 7200
"""Points kept (two hours at one a second); older ones are thinned, not dropped."""
CHART_STAGES = (
    stages.CONNECT,
    stages.EHLO,
    stages.MAIL,
    stages.RCPT,
    stages.DATA,
    stages.BDAT,
    stages.END_OF_DATA,
    stages.MESSAGE,
)
COLORS = {
    "accepted": "#2e7d32",
    "rejected": "#ef6c00",
    "failed": "#c62828",
    "users": "#555555",
    "4xx": "#ef6c00",
    "5xx": "#c62828",
    stages.CONNECT: "#8e24aa",
    stages.EHLO: "#5e35b1",
    stages.MAIL: "#1e88e5",
    stages.RCPT: "#00897b",
    stages.DATA: "#7cb342",
    stages.BDAT: "#c0ca33",
    stages.END_OF_DATA: "#f4511e",
    stages.MESSAGE: "#212121",
}
_ATTRIBUTE = "smtp_history"


@dataclass
class Point:
    """One interval of the run."""

    t: float
    """Seconds since the test started (the end of the interval)."""
    users: int
    accepted: float
    rejected: float
    failed: float
    """Messages per second over the interval."""
    share_4xx: float
    share_5xx: float
    """Of the replies in the interval (0 to 1)."""
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)
    """(request type and) stage -> (p50, p99) in ms over the interval."""


@dataclass
class History:
    """The points of the running (or last) test, and what the next one is measured from."""

    started: float = 0.0
    points: list[Point] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    """(seconds since the start, what happened): the start, user count changes, the stop."""
    _last_time: float = 0.0
    _last_outcomes: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    _last_histograms: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    _last_classes: dict[str, int] = field(default_factory=dict)
    _last_users: int = -1
    _sampler: Any = None
    _pending: Any = None

    def sample(self, environment: Environment) -> Point:
        """Add the point of the interval since the last sample."""
        now = time.time()
        elapsed = max(now - self._last_time, 1e-6)
        runner = environment.runner
        users = int(getattr(runner, "user_count", 0) or 0)
        if users != self._last_users:
            if self._last_users >= 0:
                self.events.append((now - self.started, f"{users} users"))
            self._last_users = users
        totals = [0, 0, 0]
        for kind, outcomes in outcomes_of(environment).items():
            current = (outcomes.accepted, outcomes.rejected, outcomes.failed)
            before = self._last_outcomes.get(kind, (0, 0, 0))
            for i in range(3):
                totals[i] += current[i] - before[i]
            self._last_outcomes[kind] = current
        classes: dict[str, int] = {}
        for codes in codes_of(environment).values():
            for kind, n in codes.by_class().items():
                classes[kind] = classes.get(kind, 0) + n
        delta = {k: n - self._last_classes.get(k, 0) for k, n in classes.items()}
        self._last_classes = classes
        replies = sum(delta.values())
        point = Point(
            t=round(now - self.started, 3),
            users=users,
            accepted=totals[0] / elapsed,
            rejected=totals[1] / elapsed,
            failed=totals[2] / elapsed,
            share_4xx=delta.get("4xx", 0) / replies if replies else 0.0,
            share_5xx=delta.get("5xx", 0) / replies if replies else 0.0,
        )
        recorder = recorder_of(environment)
        for request_type in ("SMTP", "LMTP"):
            for stage, histogram in recorder.histograms(request_type).items():
                key = (request_type, stage)
                before_counts = self._last_histograms.get(key, {})
                interval = {
                    i: n - before_counts.get(i, 0)
                    for i, n in histogram.counts.items()
                    if n != before_counts.get(i, 0)
                }
                self._last_histograms[key] = dict(histogram.counts)
                if interval:
                    name = stage if request_type == "SMTP" else f"LMTP {stage}"
                    point.latency[name] = (
                        _percentile(interval, 50) / 1000.0,
                        _percentile(interval, 99) / 1000.0,
                    )
        self._last_time = now
        self.points.append(point)
        if len(self.points) > HISTORY_LIMIT:  # keep the whole run, at half the detail
            self.points = self.points[::2]
        return point


def _percentile(counts: dict[int, int], percent: float) -> int:
    """A percentile (µs) of histogram bucket counts (:class:`Histogram`'s rule)."""
    histogram = Histogram()
    histogram.counts = counts
    histogram.count = sum(counts.values())
    histogram.min = bucket_range(min(counts))[0]
    histogram.max = bucket_range(max(counts))[1]
    return histogram.percentile(percent)


def history_of(environment: Environment) -> History:
    history: History | None = getattr(environment, _ATTRIBUTE, None)
    if history is None:
        history = History()
        setattr(environment, _ATTRIBUTE, history)
    return history


def start_history(environment: Environment, **_kwargs: Any) -> None:
    """``test_start`` (master or local runner): a new history, sampled until the stop."""
    from locust.runners import MasterRunner, WorkerRunner

    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    old = history_of(environment)
    if old._sampler is not None and old._sampler is not True:
        old._sampler.kill(block=False)
    history = History(started=time.time())
    history._last_time = history.started
    history.events.append((0.0, "start"))
    setattr(environment, _ATTRIBUTE, history)
    if isinstance(runner, MasterRunner):
        history._sampler = True  # sampled as the workers' reports come (on_worker_report)
        return

    def sample_forever() -> None:
        while True:
            gevent.sleep(1.0)
            history.sample(environment)

    history._sampler = gevent.spawn(sample_forever)


def on_worker_report(environment: Environment, **_kwargs: Any) -> None:
    """On a master, a point shortly after each batch of worker reports (they come every
    3 s, the workers' last ones after the stop): the figures have just changed."""
    history = history_of(environment)
    if history.started and history._pending is None:

        def sample() -> None:
            history._pending = None
            history.sample(environment)

        history._pending = gevent.spawn_later(0.2, sample)


def stop_history(environment: Environment, **_kwargs: Any) -> None:
    """``test_stop``: the last interval, and the stop marked."""
    history = history_of(environment)
    if history._sampler is None:
        return
    if history._sampler is not True:
        history._sampler.kill(block=False)
    history._sampler = None
    history.sample(environment)
    history.events.append((time.time() - history.started, "stop"))


# -- the page -----------------------------------------------------------------------------


def code_rows(environment: Environment) -> list[dict[str, object]]:
    """Reply codes by stage (dialogue order), then code: count and current rate."""
    history = history_of(environment)
    rows: list[dict[str, object]] = []
    order = {name: i for i, name in enumerate(stages.ORDER)}
    for request_type, codes in sorted(codes_of(environment).items()):
        counts = codes.counts
        previous = codes.rate_base
        base_time = codes.rate_time or history.started or time.time()
        now = time.time()
        span = max(now - base_time, 1e-6)
        for (stage, code, enhanced), n in sorted(
            counts.items(),
            key=lambda kv: (order.get(kv[0][0], 99), kv[0][1] in NO_REPLY, kv[0][1], kv[0][2]),
        ):
            rate = (n - previous.get((stage, code, enhanced), 0)) / span if previous else 0.0
            rows.append(
                {
                    "type": request_type,
                    "stage": stage,
                    "code": code,
                    "enhanced": enhanced,
                    "count": n,
                    "rate": round(rate, 1),
                }
            )
        if now - base_time >= 2.0 or not previous:  # the rate is over the last 2 s or more
            codes.rate_base = dict(counts)
            codes.rate_time = now
    return rows


def _table(head: list[str], rows: list[list[object]], table_id: str) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<table id="{table_id}"><thead><tr>{heads}</tr></thead><tbody>{cells}</tbody></table>'


def stage_table_html(environment: Environment) -> str:
    rows = []
    for request_type in ("SMTP", "LMTP"):
        for row in stage_rows(environment, request_type):
            entry = environment.stats.entries.get((str(row["stage"]), request_type))
            rate = round(entry.current_rps, 1) if entry is not None else 0.0
            rows.append([request_type, *(row[c] for c in COLUMNS), rate])
    return _table(["type", *COLUMNS, "rate/s"], rows, "smtp-stage-table")


def code_table_html(environment: Environment) -> str:
    rows = [
        [r["type"], r["stage"], r["code"], r["enhanced"], r["count"], r["rate"]]
        for r in code_rows(environment)
    ]
    return _table(["type", "stage", "code", "enhanced", "count", "rate/s"], rows, "smtp-code-table")


def chart(
    title: str,
    series: list[tuple[str, str, list[tuple[float, float]]]],
    y_label: str,
    events: list[tuple[float, str]],
    chart_id: str,
    *,
    log: bool = False,
    percent: bool = False,
) -> str:
    """An SVG line chart: ``series`` of (name, colour, points (x, y)) over seconds."""
    width, height, left, right, top, bottom = 640, 220, 56, 150, 24, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for _n, _c, pts in series for x, _y in pts] or [0.0]
    ys = [y for _n, _c, pts in series for _x, y in pts if not log or y > 0] or [0.0]
    x_max = max(max(xs), 1.0)
    y_min = min(ys) if log else 0.0
    y_max = max(ys) if ys else 1.0
    if log:
        y_min = 10 ** math.floor(math.log10(max(y_min, 0.001)))
        y_max = 10 ** math.ceil(math.log10(max(y_max, y_min * 10)))
    else:
        y_max = y_max * 1.1 if y_max > 0 else 1.0

    def sx(x: float) -> float:
        return left + plot_w * x / x_max

    def sy(y: float) -> float:
        if log:
            y = max(y, y_min)
            span = math.log10(y_max) - math.log10(y_min)
            return top + plot_h * (1 - (math.log10(y) - math.log10(y_min)) / span)
        return top + plot_h * (1 - y / y_max)

    parts = [
        f'<svg id="{chart_id}" class="smtp-chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#bbb"/>',
    ]
    if log:
        ticks = []
        v = y_min
        while v <= y_max * 1.0001:
            ticks.append(v)
            v *= 10
    else:
        ticks = [y_max * i / 4 for i in range(5)]
    for v in ticks:
        if percent:
            label = f"{v * 100:.0f}%" if y_max >= 0.1 else f"{v * 100:.2g}%"
        else:
            label = f"{v:g}" if log else f"{v:.3g}"
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" '
            'stroke="#eee"/>'
            f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{label}</text>'
        )
    for i in range(5):
        x = x_max * i / 4
        shown = f"{x:.0f}" if x_max >= 20 else f"{x:.1f}"
        parts.append(
            f'<text x="{sx(x):.1f}" y="{height - 12}" text-anchor="middle">{shown} s</text>'
        )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2}" transform="rotate(-90 12 {top + plot_h / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>'
    )
    for at, what in events:  # the run's start, user count changes, the stop
        x = sx(min(at, x_max))
        parts.append(
            f'<line class="event" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="#999" stroke-dasharray="3,3"><title>{html.escape(what)} at {at:.0f} s'
            "</title></line>"
        )
    for n, (name, color, points) in enumerate(series):
        dash = ' stroke-dasharray="5,3"' if name.endswith(" p99") else ""  # p50 solid
        if points:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            parts.append(
                f'<polyline class="series" data-name="{html.escape(name)}" '
                f'data-points="{len(points)}" fill="none" stroke="{color}"{dash} '
                f'stroke-width="1.6" points="{path}"/>'
            )
        y = top + 10 + 14 * n
        parts.append(
            f'<line x1="{width - right + 10}" x2="{width - right + 28}" y1="{y - 4}" '
            f'y2="{y - 4}" stroke="{color}"{dash} stroke-width="2"/>'
            f'<text x="{width - right + 32}" y="{y}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def charts_html(environment: Environment) -> str:
    history = history_of(environment)
    points = history.points
    events = history.events
    messages = chart(
        "Messages per second",
        [
            ("accepted/s", COLORS["accepted"], [(p.t, p.accepted) for p in points]),
            ("rejected/s", COLORS["rejected"], [(p.t, p.rejected) for p in points]),
            ("failed/s", COLORS["failed"], [(p.t, p.failed) for p in points]),
            ("users", COLORS["users"], [(p.t, float(p.users)) for p in points]),
        ],
        "per second / users",
        events,
        "smtp-chart-messages",
    )
    names = [s for s in CHART_STAGES if any(s in p.latency for p in points)]
    names += sorted(
        {n for p in points for n in p.latency if n.startswith("LMTP ")}
        & {f"LMTP {s}" for s in CHART_STAGES}
    )
    latency_series = []
    for name in names:
        color = COLORS.get(name.removeprefix("LMTP "), "#444")
        latency_series.append(
            (f"{name} p50", color, [(p.t, p.latency[name][0]) for p in points if name in p.latency])
        )
        latency_series.append(
            (f"{name} p99", color, [(p.t, p.latency[name][1]) for p in points if name in p.latency])
        )
    latency = chart(
        "Latency by stage (p50, p99)", latency_series, "ms", events, "smtp-chart-latency", log=True
    )
    shares = chart(
        "Share of 4xx and 5xx replies",
        [
            ("4xx", COLORS["4xx"], [(p.t, p.share_4xx) for p in points]),
            ("5xx", COLORS["5xx"], [(p.t, p.share_5xx) for p in points]),
        ],
        "of replies",
        events,
        "smtp-chart-codes",
        percent=True,
    )
    return messages + latency + shares


STYLE = """<style>
#smtp-dashboard { font-family: sans-serif; font-size: 13px; }
#smtp-dashboard table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
#smtp-dashboard th, #smtp-dashboard td { padding: 2px 8px; border-bottom: 1px solid #ddd;
  text-align: right; }
#smtp-dashboard th:nth-child(-n+2), #smtp-dashboard td:nth-child(-n+2) { text-align: left; }
#smtp-dashboard svg { display: block; margin: 0.5em 0; background: #fff; }
</style>"""


def dashboard_html(environment: Environment) -> str:
    """The dashboard as one HTML fragment (the SMTP tab's content, the report's section)."""
    recorder_of(environment).flush()
    return (
        STYLE + '<div id="smtp-dashboard">'
        "<h3>Stages (ms, dialogue order)</h3>"
        + stage_table_html(environment)
        + "<h3>Charts</h3>"
        + charts_html(environment)
        + "<h3>Reply codes by stage</h3>"
        + code_table_html(environment)
        + "</div>"
    )


def history_csv_rows(environment: Environment) -> list[list[object]]:
    """The history as CSV rows (a header row first): one per interval."""
    points = history_of(environment).points
    names = sorted({n for p in points for n in p.latency}, key=_stage_key)
    head: list[object] = ["history: seconds", "users", "accepted/s", "rejected/s", "failed/s",
                          "4xx share", "5xx share"]  # fmt: skip
    for name in names:
        head += [f"{name} p50 ms", f"{name} p99 ms"]
    rows: list[list[object]] = [head]
    for p in points:
        row: list[object] = [p.t, p.users, round(p.accepted, 2), round(p.rejected, 2)]
        row += [round(p.failed, 2), round(p.share_4xx, 4), round(p.share_5xx, 4)]
        for name in names:
            p50, p99 = p.latency.get(name, ("", ""))
            row += [p50, p99]
        rows.append(row)
    return rows


def _stage_key(name: str) -> tuple[int, int]:
    lmtp = name.startswith("LMTP ")
    stage = name.removeprefix("LMTP ")
    order = stages.ORDER.index(stage) if stage in stages.ORDER else 99
    return (int(lmtp), order)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>locust-smtp: SMTP dashboard</title></head>
<body style="margin: 8px">
{rate_form}<div id="smtp-live">{fragment}</div>
<script>
// refreshed like Locust's own charts: the server draws, the page swaps it in
const live = document.getElementById("smtp-live");
function tellHeight() {
  if (window.parent !== window) {
    window.parent.postMessage({smtpDashboardHeight: document.body.scrollHeight + 16}, "*");
  }
}
async function refresh() {
  try {
    const reply = await fetch("fragment", {cache: "no-store"});
    if (reply.ok) { live.innerHTML = await reply.text(); tellHeight(); }
  } catch (e) { /* the run is over or the server is gone: keep the last picture */ }
}
tellHeight();
setInterval(refresh, 2000);
</script>
</body></html>
"""
"""``/smtp/dashboard/``: the dashboard, refreshed every 2 s (the SMTP tab shows it)."""

RATE_FORM = """<form id="smtp-rate-form" style="font-family: sans-serif; font-size: 13px">
<label>Arrival rate (messages/s, or a profile such as <code>200-500/60s,500</code>):
<input name="rate" value="{rate}" size="32"></label> <button>Change</button>
<span id="smtp-rate-said"></span></form>
<script>
document.getElementById("smtp-rate-form").onsubmit = async (event) => {
  event.preventDefault();
  const reply = await fetch("../rate", {method: "POST", body: new FormData(event.target)});
  document.getElementById("smtp-rate-said").textContent = (await reply.json()).message;
};
</script>
"""
"""Above the dashboard when the test runs at an arrival rate: change it like the user
count (``/smtp/rate``)."""

TAB_SCRIPT = """// locust-smtp: show the SMTP dashboard in Locust's SMTP tab
(function () {
  let frame = null;
  function smtpTab() {
    return [...document.querySelectorAll('[role="tab"]')]
      .find((tab) => tab.textContent.trim() === "SMTP");
  }
  function place() {
    const tab = smtpTab();
    const active = tab && tab.getAttribute("aria-selected") === "true";
    if (active && !frame) {
      const tabs = tab.closest(".MuiTabs-root") || tab.parentElement;
      frame = document.createElement("iframe");
      frame.id = "smtp-dashboard-frame";
      frame.title = "SMTP dashboard";
      frame.src = "./smtp/dashboard/";
      frame.style.cssText = "width: 100%; height: 1500px; border: 0; background: #fff;";
      tabs.insertAdjacentElement("afterend", frame);
    } else if (!active && frame) {
      frame.remove();
      frame = null;
    }
  }
  window.addEventListener("message", (event) => {
    if (frame && event.data && event.data.smtpDashboardHeight) {
      frame.style.height = event.data.smtpDashboardHeight + "px";
    }
  });
  setInterval(place, 250);
})();
"""
"""Added to Locust's page: Locust's extended tabs show tables only, so in the SMTP tab
this puts the dashboard (an iframe of ``/smtp/dashboard/``) under the tab bar."""
