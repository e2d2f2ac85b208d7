"""Benchmark compiling and running the queries an agent sends, on demo data at two scales.

Usage: .venv/bin/python bench/bench_queries.py [--extra-accounts 40 300] [--runs R] [--compile-runs C]

For each scale, the demo generator (`pulseboard.server.demo`) writes the five reference accounts
plus the given number of generated accounts into a project of its own, through the ingestion
parser in batches of 1,000. All projects share one store, so the later scales also skip the rows
of the earlier ones. Compiles run once to warm up, then up to C times or 60 seconds. Queries run
in rounds, one run of each per round: one warm-up round, then up to R rounds or 180 seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable

from harness import (
    PERCENTILE_HEADERS,
    current_rss_mb,
    markdown_table,
    peak_rss_mb,
    percentile_cells,
    print_end_load,
    print_machine,
    temporary_store,
    time_interleaved,
    time_runs,
)

from pulseboard.hogql import CompileContext, CompiledQuery, compile_query
from pulseboard.recipes.loader import get_recipe
from pulseboard.server.demo import load_demo
from pulseboard.server.settings import Settings, load_settings
from pulseboard.server.store import Store
from pulseboard.tools.query import QueryOutput, run_hogql
from pulseboard.tools.recipes import run_recipe

COMPILE_TIME_CAP_S = 60.0
QUERIES_TIME_CAP_S = 180.0
RECIPE_ID = "account_health_score"

# The account-health query an agent wrote for the demo, word for word.
ACCOUNT_HEALTH_QUERY = (
    "WITH usage AS (SELECT properties.account_id AS aid, count() AS cnt_30d, countIf(timestamp >= now() - "
    "INTERVAL 14 DAY) - countIf(timestamp < now() - INTERVAL 14 DAY AND timestamp >= now() - INTERVAL 28 DAY) "
    "AS trend FROM events WHERE timestamp >= now() - INTERVAL 30 DAY AND event != '$exception' GROUP BY aid), "
    "friction AS (SELECT properties.account_id AS aid, count() AS errors_30d FROM events WHERE event = "
    "'$exception' AND timestamp >= now() - INTERVAL 30 DAY GROUP BY aid), revenue AS (SELECT "
    "properties.account_id AS aid, argMax(properties.mrr, timestamp) AS mrr, argMax(properties.plan, timestamp) "
    "AS plan FROM events WHERE event IN ('plan_changed','seat_count_set','subscription_started') GROUP BY aid), "
    "maxes AS (SELECT max(cnt_30d) AS max_usage, max(errors_30d) AS max_friction FROM usage, friction) SELECT "
    "r.aid AS account, r.plan AS plan, r.mrr AS mrr, COALESCE(u.cnt_30d, 0) AS events_30d, COALESCE(u.trend, 0) "
    "AS trend, COALESCE(f.errors_30d, 0) AS errors_30d, round( 40 * COALESCE(u.cnt_30d, 0) / m.max_usage + 30 * "
    "least(greatest(COALESCE(u.trend, 0) / 1000 * 30, -30), 30) + 30 * (1 - COALESCE(f.errors_30d, 0) / "
    "nullIf(m.max_friction, 0)), 1 ) AS health_score FROM revenue r LEFT JOIN usage u ON r.aid = u.aid LEFT JOIN "
    "friction f ON r.aid = f.aid CROSS JOIN maxes m WHERE r.mrr > 0 ORDER BY health_score ASC LIMIT 30"
)

AGENT_QUERIES = {
    "DAU by day, 30 days": (
        "SELECT toStartOfDay(timestamp) AS day, count(DISTINCT distinct_id) AS dau FROM events "
        "WHERE timestamp >= now() - INTERVAL 30 DAY GROUP BY day ORDER BY day"
    ),
    "top events, 30 days": (
        "SELECT event, count() AS events FROM events WHERE timestamp >= now() - INTERVAL 30 DAY "
        "GROUP BY event ORDER BY events DESC LIMIT 20"
    ),
    "errors by message, 30 days": (
        "SELECT properties.$exception_message AS message, count() AS errors, "
        "count(DISTINCT properties.account_id) AS accounts FROM events "
        "WHERE event = '$exception' AND timestamp >= now() - INTERVAL 30 DAY "
        "GROUP BY message ORDER BY errors DESC LIMIT 20"
    ),
    "events per account, 30 days": (
        "SELECT properties.account_id AS account, count() AS events, count(DISTINCT distinct_id) AS users "
        "FROM events WHERE timestamp >= now() - INTERVAL 30 DAY GROUP BY account ORDER BY events DESC LIMIT 50"
    ),
}


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)

    with temporary_store("pulseboard-bench-queries-") as (store, folder):
        settings = load_settings(data_dir=folder, clickhouse_url=store.url)
        print_machine(store)
        for extra_accounts in args.extra_accounts:
            project_id = f"demo-{extra_accounts}"
            load(store, project_id, extra_accounts)
            print_measurements(store, settings, project_id, args.runs, args.compile_runs)
    print_end_load()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--extra-accounts", type=int, nargs="+", default=[40, 300],
        help="generated accounts per scale, one project each (default: 40 300, about 0.2M and 1M events)",
    )
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each query (default 20)")
    parser.add_argument("--compile-runs", type=int, default=200, help="timed runs of each compile (default 200)")
    args = parser.parse_args()
    if args.runs < 1 or args.compile_runs < 1:
        parser.error("--runs and --compile-runs must be at least 1")
    if any(count < 0 for count in args.extra_accounts):
        parser.error("--extra-accounts takes counts of 0 or more")
    return args


def load(store: Store, project_id: str, extra_accounts: int) -> None:
    store.create_project(project_id)
    started = time.perf_counter()
    stored = load_demo(store, project_id, dt.datetime.now(dt.timezone.utc), extra_accounts)
    loaded = time.perf_counter()
    # Merge the parts that 1,000-event inserts leave behind, so no background merge runs while timing.
    store.client.command("OPTIMIZE TABLE events FINAL")
    merged = time.perf_counter()

    print(f"## Project `{project_id}`: 5 reference + {extra_accounts} generated accounts")
    print(
        f"{stored:,} events generated and stored in {loaded - started:.1f} s "
        f"({stored / (loaded - started):,.0f} events/s, generation included); "
        f"table merged in {merged - loaded:.1f} s."
    )
    print(
        f"After loading: RSS {current_rss_mb():,.0f} MiB, peak RSS so far {peak_rss_mb():,.0f} MiB "
        "(the generator builds every event in memory before storing them)."
    )
    print()


def print_measurements(store: Store, settings: Settings, project_id: str, runs: int, compile_runs: int) -> None:
    context = CompileContext(project_id=project_id, property_types=store.property_types(project_id))
    recipe = get_recipe(RECIPE_ID)

    def compile_recipe() -> CompiledQuery:
        hogql, placeholders = recipe.render({}, now=dt.datetime.now(dt.timezone.utc))
        recipe_context = CompileContext(
            project_id=project_id, property_types=store.property_types(project_id), placeholders=placeholders
        )
        return compile_query(hogql, recipe_context)

    compiles: dict[str, Callable[[], CompiledQuery]] = {
        "compile account-health query": lambda: compile_query(ACCOUNT_HEALTH_QUERY, context),
        f"render and compile recipe {RECIPE_ID}": compile_recipe,
    }
    queries: dict[str, Callable[[], QueryOutput]] = {
        f"run_recipe {RECIPE_ID}": lambda: run_recipe(store, settings, project_id, RECIPE_ID),
        "run_hogql account-health query": lambda: run_hogql(store, settings, project_id, ACCOUNT_HEALTH_QUERY),
    }
    for name, query in AGENT_QUERIES.items():
        queries[f"run_hogql {name}"] = functools.partial(run_hogql, store, settings, project_id, query)

    rows = []
    for name, run in compiles.items():
        timings, _ = time_runs(run, runs=compile_runs, time_cap_s=COMPILE_TIME_CAP_S)
        rows.append([name, *percentile_cells(timings), None])
    for name, (timings, output) in time_interleaved(queries, runs=runs, time_cap_s=QUERIES_TIME_CAP_S).items():
        rows.append([name, *percentile_cells(timings), output.row_count])

    print(markdown_table(["measurement", *PERCENTILE_HEADERS, "rows returned"], rows))
    print()
    print(f"After the queries: RSS {current_rss_mb():,.0f} MiB, peak RSS so far {peak_rss_mb():,.0f} MiB.")
    print()


if __name__ == "__main__":
    main()
