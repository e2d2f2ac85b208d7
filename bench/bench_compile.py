"""Benchmark: time to compile the account-health example query and the account_health_score recipe.

Compiling needs no store, so this script opens none. Each query compiles `--runs` times after
`--warmup` untimed compiles. Wall time is what a caller waits; CPU time (`time.thread_time`)
leaves out the time the thread waited for a core, so it moves less when other processes load
the machine.

    .venv/bin/python bench/bench_compile.py                   # --runs 300, --warmup 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable

from bench_queries import ACCOUNT_HEALTH_QUERY
from harness import load_average, markdown_table, percentile

from pulseboard.hogql import CompileContext, compile_query
from pulseboard.recipes.loader import get_recipe

PROPERTY_TYPES = {"account_id": "String", "mrr": "Numeric", "plan": "String"}
AS_OF = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
TIME_CAP_S = 120.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="Timed compiles per query.")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed compiles per query before timing.")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    print(f"Load average (1, 5, 15 min) at start: {load_average()}")

    recipe = get_recipe("account_health_score")
    hogql, placeholders = recipe.render({"as_of": AS_OF.isoformat()}, now=AS_OF)
    example_context = CompileContext(project_id="bench", property_types=PROPERTY_TYPES)
    recipe_context = CompileContext(project_id="bench", property_types=PROPERTY_TYPES, placeholders=placeholders)
    compiles: dict[str, Callable[[], object]] = {
        "account-health example query": lambda: compile_query(ACCOUNT_HEALTH_QUERY, example_context),
        "account_health_score recipe (rendered)": lambda: compile_query(hogql, recipe_context),
    }

    rows = []
    for name, compile_once in compiles.items():
        wall, cpu = time_compiles(compile_once, runs=args.runs, warmup=args.warmup)
        rows.append([
            name, statistics.median(wall), percentile(wall, 95), statistics.median(cpu), percentile(cpu, 95), len(wall),
        ])
    headers = ["query", "wall median ms", "wall p95 ms", "CPU median ms", "CPU p95 ms", "runs"]
    print(markdown_table(headers, rows))
    print(f"Load average (1, 5, 15 min) at the end: {load_average()}")


def time_compiles(compile_once: Callable[[], object], *, runs: int, warmup: int) -> tuple[list[float], list[float]]:
    """Return wall and CPU milliseconds of each timed compile; stop early after TIME_CAP_S seconds."""
    for _ in range(warmup):
        compile_once()

    wall: list[float] = []
    cpu: list[float] = []
    deadline = time.monotonic() + TIME_CAP_S
    while len(wall) < runs and time.monotonic() < deadline:
        wall_started, cpu_started = time.perf_counter(), time.thread_time()
        compile_once()
        cpu.append((time.thread_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - wall_started) * 1000)
    return wall, cpu


if __name__ == "__main__":
    main()
