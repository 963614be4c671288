"""The "SMTP" and "Stage latency" tabs of Locust's web UI, and the same figures in
``PREFIX_smtp.csv`` and the HTML report.

Figures come from the runner's request statistics, which on a master are
the aggregate of every worker's: messages accepted, rejected and failed,
recipients accepted per second, failures by stage and reply code
(enhanced code where the server gave one), and per stage the count, failures,
mean, p50, p90, p99, p99.9 and maximum (also as the "Stage latency" table),
whose times come from the microsecond histograms (:mod:`.recorder`), merged
from every worker.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import TYPE_CHECKING, Any

from ..protocol import stages
from . import dashboard
from .arrivals import change_rate, current_rate
from .outcomes import outcomes_for, outcomes_of
from .recorder import recorder_of
from .summary import COLUMNS, failures_by_stage, stage_rows

if TYPE_CHECKING:
    from locust.env import Environment

TAB_KEY = "smtp"
STAGES_TAB_KEY = "smtp_stages"
REQUEST_TYPES = ("SMTP", "LMTP")
_STAGE_KEYS = {column: column.replace(" ms", "").replace(".", "_") for column in COLUMNS}
"""Stage table column -> JSON key (the web UI's table keys cannot hold dots)."""


RATE_PAGE = """<!doctype html>
<title>locust-smtp: arrival rate</title>
<h1>Arrival rate</h1>
<p>Target: {target} (profile <code>{rate}</code>)</p>
<form id="rate">
<label>Rate or profile (messages/s; e.g. <code>200</code> or <code>200-500/60s,500</code>)
<input name="rate" value="{rate}" size="40"></label>
<button>Change</button>
</form>
<p id="said"></p>
<script>
document.getElementById("rate").onsubmit = async (event) => {
  event.preventDefault();
  const reply = await fetch("", {method: "POST", body: new FormData(event.target)});
  const said = await reply.json();
  document.getElementById("said").textContent = said.message;
};
</script>
"""
"""The page of ``/smtp/rate``: the open model's rate, changed while the test runs."""


def stage_table(environment: Environment) -> list[dict[str, object]]:
    """The stage rows of every request type, for the tab, the CSV file and the report."""
    rows: list[dict[str, object]] = []
    for request_type in REQUEST_TYPES:
        for row in stage_rows(environment, request_type):
            rows.append({"type": request_type, **{_STAGE_KEYS[k]: v for k, v in row.items()}})
    return rows


def smtp_figures(environment: Environment, per_stage: bool = True) -> list[dict[str, Any]]:
    """Rows of (metric, value) for the tab and the CSV file (``per_stage``: with each
    stage's figures, which the tab's dashboard shows as a table instead)."""
    recorder_of(environment).flush()
    stats = environment.stats
    outcomes_table = outcomes_of(environment)
    rows: list[dict[str, Any]] = []
    for request_type in REQUEST_TYPES:
        if request_type not in outcomes_table and (stages.RCPT, request_type) not in stats.entries:
            continue
        outcomes = outcomes_for(environment, request_type)
        rcpt = stats.entries.get((stages.RCPT, request_type))
        per_second = whole_run = 0.0
        if rcpt is not None:
            per_second = max(0.0, rcpt.current_rps - rcpt.current_fail_per_sec)
            elapsed = (rcpt.last_request_timestamp or rcpt.start_time) - rcpt.start_time
            if elapsed > 0:
                whole_run = (rcpt.num_requests - rcpt.num_failures) / elapsed
        figures: list[tuple[str, object]] = [
            ("messages attempted", outcomes.attempted),
            ("messages accepted", outcomes.accepted),
            ("messages partly accepted (some recipients refused)", outcomes.partial),
            ("messages rejected", outcomes.rejected),
            ("messages failed", outcomes.failed),
            ("messages interrupted", outcomes.interrupted),
            ("recipients accepted", outcomes.recipients_accepted),
            ("recipients refused", outcomes.recipients_refused),
            ("recipients accepted/s", round(per_second, 1)),
            ("recipients accepted/s, whole run", round(whole_run, 1)),
        ]
        figures += [
            (f"failures {key}", count)
            for key, count in sorted(failures_by_stage(stats, request_type).items())
        ]
        figures += [
            (f"failed messages {span}", n) for span, n in outcomes.outages(stats.total.start_time)
        ]
        # per stage, from the microsecond histograms: e.g. "SMTP MAIL p99.9 ms", 0.412
        figures += [
            (f"{row['stage']} {column}", row[column])
            for row in (stage_rows(environment, request_type) if per_stage else ())
            for column in COLUMNS[1:]
        ]
        rows += [{"metric": f"{request_type} {name}", "value": value} for name, value in figures]
    rate = current_rate(environment)
    if rate is not None:  # the open model (change it at /smtp/rate)
        late = sum(
            e.num_requests for (name, _t), e in stats.entries.items() if name == stages.START_LAG
        )
        rows += [
            {"metric": "arrival rate profile", "value": rate[0]},
            {"metric": "arrival rate now (messages/s)", "value": round(rate[1], 1)},
            {"metric": "messages started late", "value": late},
        ]
    return rows


def figures_csv(environment: Environment) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Metric", "Value"])
    for row in smtp_figures(environment):
        writer.writerow([row["metric"], row["value"]])
    for row in dashboard.code_rows(environment):  # "SMTP RCPT 450 4.3.0", count
        code = " ".join(str(row[k]) for k in ("type", "stage", "code", "enhanced") if row[k])
        writer.writerow([f"{code} replies", row["count"]])
    history = dashboard.history_csv_rows(environment)
    if len(history) > 1:  # then the history: its header row, one row per interval
        writer.writerows(history)
    return out.getvalue()


def install_tab(environment: Environment, web_ui: Any = None, **_kwargs: Any) -> None:
    """Add the SMTP tab (``events.init`` listener)."""
    if web_ui is None:
        return
    from flask import make_response, request

    web_ui.template_args["extended_tabs"] = [
        {"title": "SMTP", "key": TAB_KEY},
        {"title": "Stage latency", "key": STAGES_TAB_KEY},
    ]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB_KEY,
            "structure": [
                {"key": "metric", "title": "Metric"},
                {"key": "value", "title": "Value"},
            ],
        },
        {
            "key": STAGES_TAB_KEY,
            "structure": [
                {"key": "type", "title": "Type"},
                *({"key": _STAGE_KEYS[c], "title": c} for c in COLUMNS),
            ],
        },
    ]
    web_ui.template_args["extended_csv_files"] = [
        {"href": "/smtp/csv", "title": "Download SMTP figures CSV"}
    ]

    @web_ui.app.before_request  # type: ignore[untyped-decorator]
    def flush_stage_batches() -> None:
        # Locust builds /stats/* from its statistics: hand it the batched samples first,
        # so that its rows and the SMTP tabs of one response count the same samples
        if environment.runner is not None and request.path.startswith("/stats"):
            recorder_of(environment).flush()

    @web_ui.app.after_request  # type: ignore[untyped-decorator]
    def add_smtp_figures(response: Any) -> Any:
        if environment.runner is None:
            return response
        if request.path == "/" and response.status_code == 200 and not response.direct_passthrough:
            # Locust's page: the SMTP tab shows the dashboard (dashboard.TAB_SCRIPT)
            page = response.get_data(as_text=True)
            end = page.rfind("</body>")
            if end >= 0 and "/smtp/tab.js" not in page:
                script = '<script src="./smtp/tab.js"></script>'
                response.set_data(page[:end] + script + page[end:])
            return response
        if request.path == "/stats/report" and response.status_code == 200:
            # the report the UI offers for download: the same SMTP table as --html's
            page = response.get_data(as_text=True)
            response.set_data(with_smtp_section(page, environment))
            return response
        if request.path != "/stats/requests":
            return response
        data = response.json
        if isinstance(data, dict):
            data["extended_stats"] = [
                {"key": TAB_KEY, "data": smtp_figures(environment, per_stage=False)},
                {"key": STAGES_TAB_KEY, "data": stage_table(environment)},
            ]
            response.set_data(json.dumps(data))
        return response

    @web_ui.app.route("/smtp/rate", methods=["GET", "POST"])  # type: ignore[untyped-decorator]
    def smtp_rate() -> Any:
        """The arrival rate of the running test: a form (GET), a change (POST ``rate``:
        JSON ``{"success", "message", "rate"}``)."""
        if request.method == "POST":
            spec = str(request.form.get("rate", "")).strip()
            problem = change_rate(environment, spec)
            now = current_rate(environment)
            return {
                "success": problem is None,
                "message": problem or f"rate changed to {spec}",
                "rate": now[0] if now else None,
            }
        now = current_rate(environment)
        shown = html.escape(now[0]) if now else ""
        target = f"{now[1]:.1f} messages/s now" if now else "no arrival rate set"
        page = RATE_PAGE.replace("{rate}", shown).replace("{target}", html.escape(target))
        return make_response(page)

    @web_ui.app.route("/smtp/dashboard/")  # type: ignore[untyped-decorator]
    def smtp_dashboard() -> Any:
        rate = current_rate(environment)
        form = dashboard.RATE_FORM.replace("{rate}", html.escape(rate[0])) if rate else ""
        page = dashboard.PAGE.replace("{rate_form}", form)
        page = page.replace("{fragment}", dashboard.dashboard_html(environment))
        return make_response(page)

    @web_ui.app.route("/smtp/dashboard/fragment")  # type: ignore[untyped-decorator]
    def smtp_dashboard_fragment() -> Any:
        return make_response(dashboard.dashboard_html(environment))

    @web_ui.app.route("/smtp/tab.js")  # type: ignore[untyped-decorator]
    def smtp_tab_script() -> Any:
        response = make_response(dashboard.TAB_SCRIPT)
        response.headers["Content-Type"] = "text/javascript"
        return response

    @web_ui.app.route("/smtp/csv")  # type: ignore[untyped-decorator]
    def smtp_csv() -> Any:
        assert environment.runner is not None
        response = make_response(figures_csv(environment))
        response.headers["Content-Type"] = "text/csv"
        response.headers["Content-Disposition"] = "attachment;filename=smtp.csv"
        return response


def write_csv(environment: Environment, **_kwargs: Any) -> None:
    """With ``--csv PREFIX``, at the end (``events.quitting``): write ``PREFIX_smtp.csv``,
    and the final rows of Locust's ``PREFIX_stats.csv`` and ``PREFIX_failures.csv``, which
    Locust rewrites only once a second, so that a run shorter than that left them empty."""
    from locust.runners import WorkerRunner
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    options = environment.parsed_options
    prefix = getattr(options, "csv_prefix", None)
    runner = environment.runner
    if not prefix or runner is None or isinstance(runner, WorkerRunner):
        return
    with open(f"{prefix}_smtp.csv", "w", newline="") as f:
        f.write(figures_csv(environment))
    locust_csv = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, columns, rows in (
        ("stats", locust_csv.requests_csv_columns, locust_csv._requests_data_rows),
        ("failures", locust_csv.failures_columns, locust_csv._failures_data_rows),
    ):
        with open(f"{prefix}_{suffix}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            rows(writer)


def with_smtp_section(report: str, environment: Environment) -> str:
    """Locust's HTML ``report`` with the SMTP figures added as a table of their own (the
    report cannot show the SMTP tab)."""
    end = report.rfind("</body>")
    if end < 0 or 'id="smtp-figures"' in report:
        return report
    rows = "".join(
        f"<tr><td>{html.escape(str(row['metric']))}</td>"
        f"<td>{html.escape(str(row['value']))}</td></tr>"
        for row in smtp_figures(environment)
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("type", *COLUMNS))
    stage_cells = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(row[key]))}</td>"
            for key in ("type", *(_STAGE_KEYS[c] for c in COLUMNS))
        )
        + "</tr>"
        for row in stage_table(environment)
    )
    section = (
        '<section id="smtp-figures" style="font-family: sans-serif; margin: 2em">'
        "<h2>SMTP</h2><table><thead><tr><th>Metric</th><th>Value</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        '<h3>Stages (ms; percentiles at 1 µs resolution)</h3><table id="smtp-stages">'
        f"<thead><tr>{head}</tr></thead><tbody>{stage_cells}</tbody></table>"
        f"{dashboard.dashboard_html(environment)}</section>"
    )
    return report[:end] + section + report[end:]


def add_to_html_report(environment: Environment, **_kwargs: Any) -> None:
    """With ``--html FILE``, at the end (``events.quitting``, which Locust fires after
    writing the report): add the SMTP figures to the report."""
    from locust.runners import WorkerRunner

    path = getattr(environment.parsed_options, "html_file", None)
    runner = environment.runner
    if not path or runner is None or isinstance(runner, WorkerRunner):
        return
    try:
        with open(path, encoding="utf-8") as f:
            report = f.read()
    except OSError:
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(with_smtp_section(report, environment))
