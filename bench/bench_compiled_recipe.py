"""Benchmark: the compiled `account_health_score` recipe against hand-written ClickHouse SQL.

The hand-written query computes the same scores, reading properties as typed JSON subcolumns
(`properties.account_id.:String`, `properties.mrr.:Int64`). Both run on the same generated
events, interleaved round by round, and their results are compared before timing.

Data: one project with `--events` rows (1M and 10M by default) over 60 days before as_of.
Properties are stored with one type each, as a well-behaved SDK sends them: `account_id` a string
"acct-<n>" of 500 accounts picked by a hash of the row number, `plan` a string and `mrr` an integer on billing events. A neighbour
project holds as many events again, so the project guard has rows to skip.

    .venv/bin/python bench/bench_compiled_recipe.py            # --events 1000000 10000000 --runs 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

from harness import markdown_table, print_end_load, print_machine, temporary_store

from pulseboard.recipes.loader import get_recipe
from pulseboard.server.settings import Settings
from pulseboard.server.store import EventRow, Store
from pulseboard.tools.query import compile_hogql, execution_settings

RECIPE_ID = "account_health_score"
PROJECT = "bench"
NEIGHBOUR = "neighbour"
AS_OF = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
QUERIES_TIME_CAP_S = 600.0

# Row `number` of `total`: timestamps spread evenly over the 60 days before as_of. Every 2,000th
# row is a billing event, every 97th an $exception, every 1,009th a support ticket.
EVENTS_SQL = """
INSERT INTO events (project_id, uuid, event, distinct_id, timestamp, properties)
SELECT
    {project:String},
    generateUUIDv4(number),
    multiIf(
        number % 2000 = 7, 'subscription_started',
        number % 2000 = 1007, 'plan_changed',
        number % 97 = 3, '$exception',
        number % 1009 = 5, 'support_ticket_opened',
        ['$pageview', 'dashboard_viewed', 'query_run'][number % 3 + 1]
    ),
    concat('user-', toString(number % 5000)),
    {as_of:DateTime64(6, 'UTC')} - toIntervalMillisecond({span_ms:UInt64})
        + toIntervalMillisecond(intDiv(number * {span_ms:UInt64}, {total:UInt64})),
    CAST(
        if(number % 1000 = 7,
            concat(
                '{"account_id":"acct-', toString(cityHash64(number) % 500), '","plan":"',
                ['starter', 'pro', 'scale', 'enterprise'][intDiv(number, 1000) % 4 + 1],
                '","mrr":', toString(100 * (intDiv(number, 1000) % 50)), '}'
            ),
            concat('{"account_id":"acct-', toString(cityHash64(number) % 500), '","$browser":"Chrome"}')
        ),
        'JSON'
    )
FROM numbers({total:UInt64})
"""

# The recipe with its defaults, written for ClickHouse with typed subcolumn reads.
HAND_WRITTEN_SQL = """
WITH
    billing_events AS (
        SELECT properties.account_id.:String AS account, event = 'subscription_cancelled' AS is_cancellation,
            timestamp, properties.plan.:String AS event_plan, toFloat64(properties.mrr.:Int64) AS event_mrr
        FROM events
        WHERE project_id = {project:String}
            AND event IN ('subscription_started', 'plan_changed', 'subscription_cancelled')
            AND timestamp <= {as_of:DateTime64(6, 'UTC')}
    ),
    billing AS (
        SELECT account,
            argMaxIf(event_plan, (timestamp, coalesce(event_mrr, 0), coalesce(event_plan, '')), NOT is_cancellation) AS plan,
            argMaxIf(event_mrr, (timestamp, coalesce(event_mrr, 0), coalesce(event_plan, '')), NOT is_cancellation) AS plan_mrr,
            maxIf(timestamp, NOT is_cancellation) AS subscribed_at,
            maxIf(timestamp, is_cancellation) AS cancelled_at,
            countIf(is_cancellation) > 0 AND cancelled_at > subscribed_at AS cancelled
        FROM billing_events
        GROUP BY account
        HAVING account IS NOT NULL AND account != '' AND countIf(NOT is_cancellation) > 0
    ),
    activity AS (
        SELECT properties.account_id.:String AS account,
            countIf(event != '$exception') AS events_30d,
            countIf(event != '$exception' AND timestamp > {as_of:DateTime64(6, 'UTC')} - INTERVAL 14 DAY) AS events_last_14d,
            countIf(event != '$exception' AND timestamp <= {as_of:DateTime64(6, 'UTC')} - INTERVAL 14 DAY
                AND timestamp > {as_of:DateTime64(6, 'UTC')} - INTERVAL 28 DAY) AS events_prev_14d,
            countIf(event = '$exception') AS errors_30d,
            countIf(event = 'support_ticket_opened') AS tickets_30d
        FROM events
        WHERE project_id = {project:String}
            AND timestamp > {as_of:DateTime64(6, 'UTC')} - INTERVAL 30 DAY AND timestamp <= {as_of:DateTime64(6, 'UTC')}
        GROUP BY account
    ),
    signals AS (
        SELECT billing.account AS account, billing.plan AS plan, if(billing.cancelled, 0, billing.plan_mrr) AS mrr,
            billing.cancelled AS cancelled, billing.cancelled_at AS cancelled_at,
            coalesce(activity.events_30d, 0) AS events_30d, coalesce(activity.events_last_14d, 0) AS events_last_14d,
            coalesce(activity.events_prev_14d, 0) AS events_prev_14d, coalesce(activity.errors_30d, 0) AS errors_30d,
            coalesce(activity.tickets_30d, 0) AS tickets_30d
        FROM billing LEFT JOIN activity ON billing.account = activity.account
    ),
    components AS (
        SELECT *, events_last_14d - events_prev_14d AS trend,
            log(1 + events_30d) / log(1 + greatest(max(events_30d) OVER (), 1)) AS usage_component,
            greatest(0, least(1, 0.5 + trend / greatest(events_prev_14d, 50) / (2 * 0.25))) AS trend_component,
            1 - least(1, 1000 * (errors_30d + tickets_30d) / greatest(events_30d, 1000) / 5) AS friction_component,
            coalesce(greatest(0, mrr) / nullIf(greatest(max(mrr) OVER (), 0), 0), 0) AS revenue_component
        FROM signals
    ),
    scored AS (
        SELECT *, 40 * (1 - usage_component) AS usage_lost, 30 * (1 - trend_component) AS trend_lost,
            30 * (1 - friction_component) AS friction_lost, 0 * (1 - revenue_component) AS revenue_lost,
            if(cancelled, 0, round(greatest(0, least(100, 100 - usage_lost - trend_lost - friction_lost - revenue_lost)), 1))
                AS health_score,
            greatest(usage_lost, trend_lost, friction_lost, revenue_lost) AS top_lost
        FROM components
    )
SELECT account, plan, mrr, events_30d, trend, errors_30d, tickets_30d, health_score,
    multiIf(health_score < 40, 'critical', health_score < 55, 'warn', health_score < 70, 'ok',
        health_score < 85, 'healthy', 'champion') AS status,
    multiIf(
        cancelled, concat('subscription cancelled ', toString(toDate(cancelled_at))),
        top_lost < 5, 'none',
        top_lost = friction_lost AND errors_30d > 0 AND tickets_30d > 0,
            concat('errors: ', toString(errors_30d), ', support tickets: ', toString(tickets_30d), ' in 30 days'),
        top_lost = friction_lost AND tickets_30d > 0, concat('support tickets: ', toString(tickets_30d), ' in 30 days'),
        top_lost = friction_lost, concat('errors: ', toString(errors_30d), ' in 30 days'),
        top_lost = trend_lost AND trend < 0,
            concat('usage down ', toString(round(-100 * trend / greatest(events_prev_14d, 1))), '% (', toString(trend), ' events)'),
        top_lost = trend_lost,
            concat('little usage growth: +', toString(round(100 * trend / greatest(events_prev_14d, 1))), '% (+',
                toString(trend), ' events)'),
        top_lost = usage_lost,
            concat('usage: ', toString(events_30d), ' events in 30 days, ',
                toString(round(100 * events_30d / greatest(max(events_30d) OVER (), 1))), '% of the busiest account'),
        concat('low revenue: ', toString(mrr), ' MRR')
    ) AS top_risk_signal,
    round(100 * usage_component, 1) AS usage_score, round(100 * trend_component, 1) AS trend_score,
    round(100 * friction_component, 1) AS friction_score, round(100 * revenue_component, 1) AS revenue_score
FROM scored
ORDER BY health_score, account
LIMIT 100
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000], help="Events per project, one measurement per size.")
    parser.add_argument("--runs", type=int, default=7, help="Timed rounds per size, after one warm-up round.")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)

    for total in args.events:
        with temporary_store("pb_bench_recipe_") as (store, folder):
            if total == args.events[0]:
                print_machine(store)
            measure(store, Settings(data_dir=folder, clickhouse_url=store.url), total, args.runs)
    print_end_load()


def measure(store: Store, settings: Settings, total: int, runs: int) -> None:
    started = time.perf_counter()
    load_events(store, total)
    print(f"\n{total:,} events per project stored and merged in {time.perf_counter() - started:.1f} s")

    recipe = get_recipe(RECIPE_ID)
    hogql, placeholders = recipe.render({"as_of": AS_OF.isoformat()}, now=AS_OF)
    compiled, context = compile_hogql(store, PROJECT, hogql, placeholders)
    run_settings = execution_settings(settings, context.timezone)
    hand_parameters = {"project": PROJECT, "as_of": AS_OF}

    def compiled_run() -> Any:
        return store.query(compiled.sql, compiled.parameters, run_settings)

    def hand_written_run() -> Any:
        return store.query(HAND_WRITTEN_SQL, hand_parameters, run_settings)

    compiled_rows, hand_rows = compiled_run().rows, hand_written_run().rows
    same = [list(row) for row in compiled_rows] == [list(row) for row in hand_rows]
    print(f"Results: compiled {len(compiled_rows)} rows, hand-written {len(hand_rows)} rows, identical: {same}")

    samples = time_wall_and_cpu({"compiled recipe": compiled_run, "hand-written": hand_written_run}, runs)
    rows = [
        [name, statistics.median(wall), min(wall), statistics.median(cpu), min(cpu), len(wall)]
        for name, (wall, cpu) in samples.items()
    ]
    print(markdown_table(["query", "wall median ms", "wall min ms", "CPU median ms", "CPU min ms", "runs"], rows))
    (compiled_wall, compiled_cpu), (hand_wall, hand_cpu) = samples["compiled recipe"], samples["hand-written"]
    print(
        f"ratio compiled / hand-written: wall medians {statistics.median(compiled_wall) / statistics.median(hand_wall):.2f}, "
        f"CPU medians {statistics.median(compiled_cpu) / statistics.median(hand_cpu):.2f}, "
        f"wall minimums {min(compiled_wall) / min(hand_wall):.2f}"
    )
    print("\nCompiled SQL:\n" + compiled.sql)


def time_wall_and_cpu(runs_by_name: dict[str, Callable[[], Any]], runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Run each callable once per round, after one warm-up round; return wall and CPU milliseconds.

    chDB runs queries in threads of this process, so the process's CPU time counts the query's
    work on every core, and leaves out the time other processes held the cores.
    """
    for run in runs_by_name.values():
        run()

    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in runs_by_name}
    deadline = time.monotonic() + QUERIES_TIME_CAP_S
    for _ in range(runs):
        for name, run in runs_by_name.items():
            wall_started, cpu_started = time.perf_counter(), time.process_time()
            run()
            samples[name][1].append((time.process_time() - cpu_started) * 1000)
            samples[name][0].append((time.perf_counter() - wall_started) * 1000)
        if time.monotonic() > deadline:
            break
    return samples


def load_events(store: Store, total: int) -> None:
    span_ms = int(dt.timedelta(days=60).total_seconds() * 1000)
    with store.connection() as client:
        for project in (PROJECT, NEIGHBOUR):
            client.command(
                EVENTS_SQL,
                parameters={"project": project, "as_of": AS_OF, "span_ms": span_ms, "total": total},
                settings={"input_format_try_infer_datetimes": 0},
            )
        client.command("OPTIMIZE TABLE events FINAL")

    store.create_project(PROJECT)
    # Record the property types as ingestion does from the first events it receives.
    sample = EventRow(uuid="00000000-0000-4000-8000-000000000000", event="subscription_started", distinct_id="u",
                      timestamp=AS_OF, properties={"account_id": "acct-0", "plan": "pro", "mrr": 100, "$browser": "Chrome"})
    store.record_definitions(PROJECT, [sample])


if __name__ == "__main__":
    main()
