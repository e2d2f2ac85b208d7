"""Benchmark how account_health_score reads stored snapshots, and the snapshot, score_drops and
drill-down steps, on the RavenStack data set.

Usage: .venv/bin/python bench/bench_health.py [--days D] [--runs R]

RavenStack (500 accounts, synthetic data by River @ Rivalytics) is read in place from
../shared/data/real/ravenstack with the mappings in tests/mappings. D daily snapshots (30 by
default) are backfilled up to 2024-12-31, then the recipe runs in rounds, one run of each variant
per round: one warm-up round, then up to R rounds (7 by default) or 180 seconds. All health score
variants compile and run through run_hogql and differ only in their `snapshots` CTE:

- "snapshots table": the recipe as stored;
- "no snapshots read": its CTE condition starts with `0 AND`, so it reads no snapshot rows;
- "snapshot rows bound": the CTE reads the rows from one bound Array(Tuple(...)) parameter, as
  recipes did before the table was readable from HogQL;
- "no snapshot rows bound": the same with an empty array, the baseline of earlier runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from pathlib import Path

from harness import print_end_load, print_machine, temporary_store, time_interleaved

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.ravenstack import import_ravenstack  # noqa: E402

from pulseboard.recipes.loader import get_recipe  # noqa: E402
from pulseboard.server.settings import Settings  # noqa: E402
from pulseboard.server.snapshots import snapshot_days  # noqa: E402
from pulseboard.server.store import Store  # noqa: E402
from pulseboard.tools.drilldown import account_drilldown  # noqa: E402
from pulseboard.tools.query import run_hogql  # noqa: E402
from pulseboard.tools.recipes import run_recipe  # noqa: E402
from pulseboard.tools.snapshots import take_snapshot  # noqa: E402

AS_OF = dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
PROJECT = "ravenstack"
# The recipe's snapshots CTE reads health_snapshots with this condition prefix.
SNAPSHOTS_READ = "FROM health_snapshots\n        WHERE "
BOUND_READ = """
        SELECT tupleElement(snapshot, 1) AS account, tupleElement(snapshot, 2) AS day, tupleElement(snapshot, 3) AS score
        FROM (SELECT arrayJoin({bound_snapshots}) AS snapshot)
        WHERE """
# The days the recipe's snapshots CTE covers.
SNAPSHOT_DAYS = 37


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="Daily snapshots to backfill; default 30.")
    parser.add_argument("--runs", type=int, default=7, help="Timed rounds; default 7.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with temporary_store("bench-health-") as (store, folder):
        print_machine(store)
        settings = Settings(data_dir=folder)
        store.create_project(PROJECT)
        started = time.perf_counter()
        import_ravenstack(store, PROJECT)
        print(f"Imported RavenStack in {time.perf_counter() - started:.1f} s")

        snapshot_ms = []
        for days_back in range(args.days - 1, -1, -1):
            started = time.perf_counter()
            take_snapshot(store, settings, PROJECT, as_of=(AS_OF - dt.timedelta(days=days_back)).date(), now=AS_OF)
            snapshot_ms.append((time.perf_counter() - started) * 1000)
        rows = sum(count for _, count in snapshot_days(store, PROJECT))
        print(f"Backfilled {args.days} snapshots, {rows} rows; one snapshot took {min(snapshot_ms):.0f}-{max(snapshot_ms):.0f} ms")

        recipe = get_recipe("account_health_score")
        hogql, placeholders = recipe.render({"as_of": AS_OF, "limit": 10000}, now=AS_OF)
        if hogql.count(SNAPSHOTS_READ) != 1:
            raise SystemExit("The account_health_score recipe no longer reads health_snapshots as this benchmark expects.")
        no_snapshots = hogql.replace(SNAPSHOTS_READ, SNAPSHOTS_READ + "0 AND ")
        bound_hogql, bound = bound_variant(store, hogql, placeholders)
        rows_bound = len(bound["bound_snapshots"][0])
        empty = {**bound, "bound_snapshots": ([], bound["bound_snapshots"][1])}

        variants = {
            "health score, snapshots table": lambda: run_hogql(store, settings, PROJECT, hogql, placeholders),
            "health score, no snapshots read": lambda: run_hogql(store, settings, PROJECT, no_snapshots, placeholders),
            f"health score, {rows_bound} snapshot rows bound": lambda: run_hogql(store, settings, PROJECT, bound_hogql, bound),
            "health score, no snapshot rows bound": lambda: run_hogql(store, settings, PROJECT, bound_hogql, empty),
            "score_drops": lambda: run_recipe(store, settings, PROJECT, "score_drops", {"as_of": AS_OF}),
            "drill-down, bottom 5": lambda: account_drilldown(store, settings, PROJECT, bottom_n=5, as_of=AS_OF),
        }
        outputs = {name: run() for name, run in list(variants.items())[:3]}
        rows = [output.rows for output in outputs.values()]
        print(f"Snapshots table and bound rows give the same scores: {rows[0] == rows[2]}")
        timings = time_interleaved(variants, runs=args.runs, time_cap_s=180)

        print()
        print("| step | runs | median ms | min ms | max ms |")
        print("|---|---|---|---|---|")
        for name, (timing, _) in timings.items():
            print(f"| {name} | {timing.runs} | {timing.median_ms:.0f} | {timing.min_ms:.0f} | {timing.max_ms:.0f} |")
        medians = {name: timing.median_ms for name, (timing, _) in timings.items()}
        base = medians["health score, no snapshot rows bound"]
        print(
            f"\nAgainst no snapshot rows bound: snapshots table {medians['health score, snapshots table'] / base:.2f}x, "
            f"no snapshots read {medians['health score, no snapshots read'] / base:.2f}x, "
            f"{rows_bound} rows bound {medians[f'health score, {rows_bound} snapshot rows bound'] / base:.2f}x"
        )
        print_end_load()


def bound_variant(store: Store, hogql: str, placeholders: dict[str, tuple[object, str]]) -> tuple[str, dict]:
    """Return the recipe reading its snapshots from one bound array, with that array bound."""
    last_day = AS_OF.date()
    first_day = last_day - dt.timedelta(days=SNAPSHOT_DAYS - 1)
    result = store.query(
        "SELECT account, day, health_score FROM health_snapshots FINAL "
        "WHERE project_id = {p:String} AND day >= {first:Date} AND day <= {last:Date} ORDER BY account, day",
        {"p": PROJECT, "first": first_day, "last": last_day},
    )
    start = hogql.index(SNAPSHOTS_READ)
    select_start = hogql.rindex("SELECT", 0, start)
    bound_hogql = hogql[:select_start].rstrip() + BOUND_READ + hogql[start + len(SNAPSHOTS_READ):]
    snapshots = [tuple(row) for row in result.rows]
    return bound_hogql, {**placeholders, "bound_snapshots": (snapshots, "Array(Tuple(String, Date, Float64))")}


if __name__ == "__main__":
    main()
