#!/usr/bin/env python3
"""Latency over time from a transaction log (``--transaction-log``), as a PNG.

    pip install pandas matplotlib
    python benchmarks/plot_transaction_log.py LOG.jsonl [LOG.jsonl.worker-1 ...] -o plot.png
        [--title TEXT] [--delivery ARRIVALS.jsonl]

Reads the JSON Lines (docs/workloads.md has the schema), one record per message,
and draws per second of the run: the messages started (bars, right axis) and the
p50 and p99 of the message's latency from its start, and, when the run had an
arrival rate, from its scheduled time (lines, left axis, log scale). With
``--delivery``, the sink's ``--delivery-log`` of the same run adds the p50 and p99
of the delivery latency (from send to arrival at the sink, by second of sending).
Prints the same figures as a table.
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd


def load(paths: list[str]) -> pd.DataFrame:
    frames = [pd.read_json(path, lines=True) for path in paths]
    log = pd.concat(frames, ignore_index=True)
    log["end"] = log["time"] + log["us"] / 1e6
    if "scheduled" in log:
        log["from_schedule_ms"] = (log["end"] - log["scheduled"]) * 1000.0
    log["ms"] = log["us"] / 1000.0
    log["second"] = (log["time"] - log["time"].min()).astype(int)
    return log


def with_delivery(table: pd.DataFrame, log: pd.DataFrame, path: str) -> pd.DataFrame:
    """Add the delivery latencies of the sink's --delivery-log, by second of sending."""
    arrivals = pd.read_json(path, lines=True)
    arrivals = arrivals.drop_duplicates(["run", "seq"])  # each number's first arrival
    arrivals["second"] = (arrivals["sent"] - log["time"].min()).astype(int)
    grouped = arrivals.groupby("second")["us"]
    table["p50 delivery ms"] = grouped.quantile(0.5) / 1000.0
    table["p99 delivery ms"] = grouped.quantile(0.99) / 1000.0
    return table


def per_second(log: pd.DataFrame) -> pd.DataFrame:
    grouped = log.groupby("second")
    table = pd.DataFrame(
        {
            "messages": grouped.size(),
            "p50 ms": grouped["ms"].quantile(0.5),
            "p99 ms": grouped["ms"].quantile(0.99),
            "refused recipients": grouped["recipients"].apply(
                lambda r: sum(x["refused"] for x in r)
            ),
        }
    )
    if "from_schedule_ms" in log:
        table["p50 from schedule ms"] = grouped["from_schedule_ms"].quantile(0.5)
        table["p99 from schedule ms"] = grouped["from_schedule_ms"].quantile(0.99)
    return table


def plot(table: pd.DataFrame, title: str, output: str) -> None:
    fig, latency = plt.subplots(figsize=(9, 4.5))
    count = latency.twinx()
    count.bar(table.index, table["messages"], color="#dddddd", width=0.9, label="messages/s")
    count.set_ylabel("messages started per second")
    latency.set_zorder(count.get_zorder() + 1)
    latency.patch.set_visible(False)
    for column, style in (
        ("p50 ms", "-"),
        ("p99 ms", "--"),
        ("p50 from schedule ms", "-"),
        ("p99 from schedule ms", "--"),
        ("p50 delivery ms", "-"),
        ("p99 delivery ms", "--"),
    ):
        if column in table:
            kind = "schedule" if "schedule" in column else column.split()[1]
            color = {"schedule": "#c03030", "delivery": "#208040"}.get(kind, "#3060c0")
            latency.plot(table.index, table[column], style, color=color, label=column)
    latency.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _pos: f"{value:g}")
    latency.yaxis.set_major_formatter(plain)
    low, high = latency.get_ylim()
    # within a decade the minor ticks are the only ones: label them
    latency.yaxis.set_minor_formatter(
        plain if high / low < 10 else matplotlib.ticker.NullFormatter()
    )
    latency.set_xlabel("seconds into the run")
    latency.set_ylabel("message latency (ms)")
    latency.legend(loc="upper left", fontsize="small")
    latency.set_title(title)
    fig.tight_layout()
    fig.savefig(output, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+")
    parser.add_argument("-o", "--output", default="latency.png")
    parser.add_argument("--title", default="locust-smtp: message latency over time")
    parser.add_argument("--delivery", metavar="ARRIVALS", help="the sink's --delivery-log")
    args = parser.parse_args()
    log = load(args.logs)
    table = per_second(log)
    if args.delivery:
        table = with_delivery(table, log, args.delivery)
    with pd.option_context("display.width", 160, "display.max_rows", 400):
        print(table.round(2).to_string())
    plot(table, args.title, args.output)
    print(f"{len(log)} messages; plot written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
