"""Benchmark the ways to read a JSON property, the two forms of the project guard, and a compiled query.

Usage: .venv/bin/python bench/bench_property_reads.py [--events N] [--other-events M] [--runs R]

The store gets N events in the project `bench` and M events in the project `neighbour`, with the
mixed stored types described in generators.py. The queries of each table run in rounds, one run
of each per round: one warm-up round, then R timed rounds. The tables show the median and the
spread. Figures are printed as Markdown, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from generators import insert_mixed_events
from harness import (
    SPREAD_HEADERS,
    Timings,
    markdown_table,
    print_end_load,
    print_machine,
    spread_cells,
    temporary_store,
    time_interleaved,
    time_runs,
)

from pulseboard.hogql import CompileContext, CompiledQuery, compile_query
from pulseboard.hogql.columns import STAR_COLUMNS
from pulseboard.server.settings import Settings, load_settings
from pulseboard.server.store import QueryResult, Store
from pulseboard.tools.query import QueryOutput, execution_settings, run_hogql

PROJECT = "bench"
NEIGHBOUR = "neighbour"
EVENTS_THROUGH_API = 1000
QUERY_TIME_CAP_S = 60.0
COMPILE_RUNS = 50


@dataclass(frozen=True)
class ReadForm:
    property: str
    label: str
    expression: str


# The reads the compiler emits for String and Numeric properties (hogql/properties.py).
COMPILER_STRING_READ = ReadForm(
    "account_id", "account_id, CAST (compiler's String read)", "CAST(properties.account_id AS Nullable(String))"
)
COMPILER_NUMERIC_READ = ReadForm(
    "mrr", "mrr, accurateCastOrNull (compiler's Numeric read)", "accurateCastOrNull(properties.mrr, 'Float64')"
)

GROUP_BY_FORMS = [
    ReadForm("account_id", "account_id, typed subcolumn", "properties.account_id.:String"),
    COMPILER_STRING_READ,
    ReadForm("account_id", "account_id, toString (a missing key reads as '')", "toString(properties.account_id)"),
    ReadForm("mrr", "mrr, typed subcolumn", "properties.mrr.:Float64"),
    ReadForm("mrr", "mrr, CAST", "CAST(properties.mrr AS Nullable(Float64))"),
    COMPILER_NUMERIC_READ,
    ReadForm("mrr", "mrr, toFloat64OrNull(toString())", "toFloat64OrNull(toString(properties.mrr))"),
]

FILTER_FORMS = [
    ReadForm("account_id", "account_id = 'acct-7', typed subcolumn", "properties.account_id.:String = 'acct-7'"),
    ReadForm("account_id", "account_id = 'acct-7', CAST", "CAST(properties.account_id AS Nullable(String)) = 'acct-7'"),
    ReadForm("mrr", "mrr > 4000, typed subcolumn", "properties.mrr.:Float64 > 4000"),
    ReadForm("mrr", "mrr > 4000, accurateCastOrNull", "accurateCastOrNull(properties.mrr, 'Float64') > 4000"),
]

GUARD_READS = [COMPILER_STRING_READ, COMPILER_NUMERIC_READ]

# The filtered subquery that hogql/guard.py puts in place of `events` when a RIGHT or FULL join
# could replace its rows with NULLs, built from the same column list.
WRAPPED_EVENTS = (
    f"(SELECT {', '.join((*STAR_COLUMNS, 'inserted_at'))} FROM events "
    "WHERE project_id = {pb_project:String}) AS pb_t0"
)

TYPICAL_QUERY = """\
SELECT properties.account_id AS account, count() AS events, countIf(event = '$exception') AS errors,
    avg(properties.mrr) AS avg_mrr
FROM events
WHERE timestamp >= now() - INTERVAL 30 DAY
GROUP BY account
ORDER BY events DESC
LIMIT 20"""

RIGHT_JOIN_QUERY = """\
SELECT accounts.account AS account, count(e.uuid) AS events
FROM events AS e
RIGHT JOIN (SELECT 'acct-7' AS account) AS accounts ON e.properties.account_id = accounts.account
GROUP BY account"""

FILTER_QUERY = """\
SELECT properties.account_id AS account, count() AS events
FROM events
WHERE properties.account_id = 'acct-7'
GROUP BY account"""


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)

    with temporary_store("pulseboard-bench-reads-") as (store, folder):
        print_machine(store)
        load(store, args.events, args.other_events)
        print_type_mix(store)
        print_group_by(store, args.runs)
        print_filters(store, args.runs)
        print_guards(store, args.runs)
        print_compiled(store, load_settings(data_dir=folder, clickhouse_url=store.url), args.runs)
    print_end_load()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="events in the measured project (default 2,000,000)")
    parser.add_argument(
        "--other-events", type=int, default=None,
        help="events in a second project that every query must skip (default: as many as --events)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query after one warm-up (default 5)")
    args = parser.parse_args()
    if args.events < EVENTS_THROUGH_API:
        parser.error(f"--events {args.events} is too small; give at least {EVENTS_THROUGH_API}")
    if args.other_events is None:
        args.other_events = args.events
    if args.other_events < 0 or args.runs < 1:
        parser.error("--other-events must be 0 or more and --runs at least 1")
    return args


def load(store: Store, events: int, other_events: int) -> None:
    end = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    store.create_project(PROJECT)
    store.create_project(NEIGHBOUR)
    insert_mixed_events(store, PROJECT, events, end, through_api=EVENTS_THROUGH_API)
    if other_events:
        insert_mixed_events(store, NEIGHBOUR, other_events, end, through_api=min(EVENTS_THROUGH_API, other_events))
    loaded = time.perf_counter()
    # One part per table, so every form reads the same data and no background merge runs while timing.
    store.client.command("OPTIMIZE TABLE events FINAL")
    merged = time.perf_counter()

    print("## Data")
    print(
        f"{events:,} events in project `{PROJECT}` and {other_events:,} in `{NEIGHBOUR}`, "
        f"loaded in {loaded - started:.1f} s and merged into one part in {merged - loaded:.1f} s."
    )
    print(f"Property types recorded for `{PROJECT}`: {store.property_types(PROJECT)}")
    print()


def print_type_mix(store: Store) -> None:
    rows = []
    for path in ("account_id", "mrr"):
        result = store.query(
            f"SELECT dynamicType(properties.{path}) AS stored, count() FROM events "
            "WHERE project_id = {p:String} GROUP BY stored ORDER BY stored",
            {"p": PROJECT},
        )
        rows.extend([path, stored, count] for stored, count in result.rows)
    print("## Stored types")
    print(markdown_table(["property", "stored type", "rows"], rows))
    print()


def print_group_by(store: Store, runs: int) -> None:
    queries = {
        form.label: (
            f"SELECT {form.expression} AS value, count() AS n FROM events "
            "WHERE project_id = {p:String} GROUP BY value"
        )
        for form in GROUP_BY_FORMS
    }
    measured = time_queries(store, queries, {"p": PROJECT}, runs)

    rows = []
    baselines: dict[str, float] = {}
    for form in GROUP_BY_FORMS:
        timings, result = measured[form.label]
        null_rows = sum(count for value, count in result.rows if value is None)
        baseline = baselines.setdefault(form.property, timings.median_ms)
        rows.append([
            form.label, f"`{form.expression}`", *spread_cells(timings), timings.median_ms / baseline,
            len(result.rows), null_rows,
        ])

    print("## count() GROUP BY one property read")
    print(markdown_table(["read", "expression", *SPREAD_HEADERS, "x typed", "groups", "NULL rows"], rows))
    print()


def print_filters(store: Store, runs: int) -> None:
    queries = {
        form.label: f"SELECT count() FROM events WHERE project_id = {{p:String}} AND {form.expression}"
        for form in FILTER_FORMS
    }
    measured = time_queries(store, queries, {"p": PROJECT}, runs)

    rows = []
    for form in FILTER_FORMS:
        timings, result = measured[form.label]
        rows.append([form.label, f"`{form.expression}`", *spread_cells(timings), result.rows[0][0]])

    print("## count() WHERE one property read")
    print(markdown_table(["filter", "expression", *SPREAD_HEADERS, "matching rows"], rows))
    print()


def print_guards(store: Store, runs: int) -> None:
    queries = {}
    for form in GUARD_READS:
        queries[(form.property, "WHERE guard on the table")] = (
            f"SELECT {form.expression} AS value, count() AS n FROM events AS pb_t0 "
            "WHERE pb_t0.project_id = {pb_project:String} GROUP BY value"
        )
        queries[(form.property, "filtered subquery")] = (
            f"SELECT {form.expression} AS value, count() AS n FROM {WRAPPED_EVENTS} GROUP BY value"
        )
    measured = time_queries(store, queries, {"pb_project": PROJECT}, runs)

    rows = []
    for (prop, shape), sql in queries.items():
        timings, _ = measured[(prop, shape)]
        rows.append([prop, shape, *spread_cells(timings), columns_read(store, sql)])

    print("## Project guard: WHERE on the table against a filtered subquery")
    print(f"Filtered subquery: `{WRAPPED_EVENTS}`")
    print()
    print(markdown_table(["read", "guard", *SPREAD_HEADERS, "columns read from the table"], rows))
    print()


def time_queries(
    store: Store, queries: Mapping[Hashable, str], parameters: dict[str, Any], runs: int
) -> dict[Hashable, tuple[Timings, QueryResult]]:
    """Time each query `runs` times after one warm-up, in interleaved rounds."""
    calls = {key: functools.partial(store.query, sql, parameters) for key, sql in queries.items()}
    return time_interleaved(calls, runs=runs, time_cap_s=QUERY_TIME_CAP_S)


def columns_read(store: Store, sql: str) -> str:
    """Return the columns the table scan outputs, from EXPLAIN; `properties` means the whole JSON column."""
    plan = store.query(f"EXPLAIN actions = 1 {sql}", {"pb_project": PROJECT}).rows
    in_scan = False
    for (line,) in plan:
        text = line.strip(" │└─")
        if text.startswith("ReadFromMergeTree"):
            in_scan = True
        elif in_scan and text.startswith("Output:"):
            return text.removeprefix("Output:").strip()
    return "(not found in EXPLAIN)"


def typed_subcolumn_variant(compiled: CompiledQuery) -> CompiledQuery:
    """Return the typical query's SQL with typed subcolumn reads in place of the compiler's casts."""
    sql = compiled.sql
    for cast_read, typed_read in (
        ("""CAST(properties."account_id" AS Nullable(String))""", """properties."account_id".:String"""),
        ("""accurateCastOrNull(properties."mrr", 'Float64')""", """properties."mrr".:Float64"""),
    ):
        if cast_read not in sql:
            raise RuntimeError(f"the compiled SQL no longer contains {cast_read}; update this benchmark:\n{sql}")
        sql = sql.replace(cast_read, typed_read)
    return dataclasses.replace(compiled, sql=sql)


def print_compiled(store: Store, settings: Settings, runs: int) -> None:
    context = CompileContext(project_id=PROJECT, property_types=store.property_types(PROJECT))
    compile_timings, compiled = time_runs(
        lambda: compile_query(TYPICAL_QUERY, context), runs=COMPILE_RUNS, time_cap_s=QUERY_TIME_CAP_S
    )
    typed = typed_subcolumn_variant(compiled)
    right_join = compile_query(RIGHT_JOIN_QUERY, context)
    filtered = compile_query(FILTER_QUERY, context)
    query_settings = execution_settings(settings, "UTC")

    def run_compiled(query: CompiledQuery) -> Callable[[], QueryResult]:
        return functools.partial(store.query, query.sql, query.parameters, query_settings)

    measured = time_interleaved(
        {
            "compiled SQL through Store.query": run_compiled(compiled),
            "run_hogql end to end": lambda: run_hogql(store, settings, PROJECT, TYPICAL_QUERY),
            "compiled SQL with typed subcolumn reads (wrong for mixed types)": run_compiled(typed),
            "RIGHT JOIN for one account (filtered subquery)": run_compiled(right_join),
            "WHERE filter for one account (WHERE guard)": run_compiled(filtered),
        },
        runs=runs,
        time_cap_s=QUERY_TIME_CAP_S,
    )

    print("## What the compiler emits")
    for title, hogql, query in (
        ("A typical query", TYPICAL_QUERY, compiled),
        ("A RIGHT JOIN, which gets the filtered subquery", RIGHT_JOIN_QUERY, right_join),
        ("The same count with a WHERE filter", FILTER_QUERY, filtered),
    ):
        print(f"{title}. HogQL:")
        print(f"```sql\n{hogql}\n```")
        print("ClickHouse SQL:")
        print(f"```sql\n{query.sql}\n```")
        print(f"Parameters: `{query.parameters}`")
        print()

    rows = [["compile_query (typical query)", *spread_cells(compile_timings), None]]
    for name, (timings, result) in measured.items():
        returned = result.row_count if isinstance(result, QueryOutput) else len(result.rows)
        rows.append([name, *spread_cells(timings), returned])
    print(markdown_table(["step", *SPREAD_HEADERS, "rows returned"], rows))
    print()


if __name__ == "__main__":
    main()
