"""Benchmark account_health_score with and without stored snapshots, and the snapshot, score_drops
and drill-down steps, on the RavenStack data set.

Usage: .venv/bin/python bench/bench_health.py [--days D] [--runs R]

RavenStack (500 accounts, synthetic data by River @ Rivalytics) is read in place from
../shared/data/real/ravenstack with the mappings in tests/mappings. D daily snapshots (30 by
default) are backfilled up to 2024-12-31, then the recipe runs in rounds, one run of each variant
per round: one warm-up round, then up to R rounds (7 by default) or 180 seconds. "without
snapshots" binds an empty snapshot array, so the two variants differ only in the bound rows.
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

from pulseboard.recipes.loader import SNAPSHOTS_PLACEHOLDER, get_recipe, snapshots_type  # noqa: E402
from pulseboard.server.settings import Settings  # noqa: E402
from pulseboard.server.snapshots import snapshot_days  # noqa: E402
from pulseboard.tools.drilldown import account_drilldown  # noqa: E402
from pulseboard.tools.query import run_hogql  # noqa: E402
from pulseboard.tools.recipes import project_snapshots, run_recipe  # noqa: E402
from pulseboard.tools.snapshots import take_snapshot  # noqa: E402

AS_OF = dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
PROJECT = "ravenstack"


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
        with_snapshots = {**placeholders, SNAPSHOTS_PLACEHOLDER: project_snapshots(store, PROJECT, recipe, placeholders)}
        empty = ([], snapshots_type(recipe.header.snapshot_columns))
        without_snapshots = {**placeholders, SNAPSHOTS_PLACEHOLDER: empty}
        bound = len(with_snapshots[SNAPSHOTS_PLACEHOLDER][0])

        variants = {
            "health score, without snapshots": lambda: run_hogql(store, settings, PROJECT, hogql, without_snapshots),
            f"health score, {bound} snapshot rows bound": lambda: run_hogql(store, settings, PROJECT, hogql, with_snapshots),
            "score_drops": lambda: run_recipe(store, settings, PROJECT, "score_drops", {"as_of": AS_OF}),
            "drill-down, bottom 5": lambda: account_drilldown(store, settings, PROJECT, bottom_n=5, as_of=AS_OF),
        }
        timings = time_interleaved(variants, runs=args.runs, time_cap_s=180)

        print()
        print("| step | runs | median ms | min ms | max ms |")
        print("|---|---|---|---|---|")
        for name, (timing, _) in timings.items():
            print(f"| {name} | {timing.runs} | {timing.median_ms:.0f} | {timing.min_ms:.0f} | {timing.max_ms:.0f} |")
        base = timings["health score, without snapshots"][0].median_ms
        bound_name = f"health score, {bound} snapshot rows bound"
        print(f"\nBound snapshots / none: {timings[bound_name][0].median_ms / base:.2f}x")
        print_end_load()


if __name__ == "__main__":
    main()
