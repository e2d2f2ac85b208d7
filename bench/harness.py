"""Shared pieces of the benchmark scripts: a temporary store, bounded timing loops, machine facts
and Markdown tables.

Every script opens exactly one embedded chDB store, in a temporary folder, because a process can
open only one chDB data folder.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulseboard.server.store import Store

VERSIONED_PACKAGES = ("chdb", "chdb-core", "clickhouse-connect", "sqlglot", "starlette", "uvicorn", "httpx2")


@contextlib.contextmanager
def temporary_store(prefix: str) -> Iterator[tuple[Store, Path]]:
    """Open an embedded chDB store in a new temporary folder; close and delete it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    store = Store.open(f"chdb://{folder / 'clickhouse'}")
    try:
        yield store, folder
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Timings:
    """Durations of repeated runs in milliseconds, warm-up runs excluded."""

    samples_ms: tuple[float, ...]

    @property
    def runs(self) -> int:
        return len(self.samples_ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms)


def percentile(samples: Sequence[float], rank: float) -> float:
    """Return the nearest-rank percentile: the smallest sample with at least `rank` % at or below it."""
    if not samples:
        raise ValueError("percentile of no samples; run the measurement at least once")

    ordered = sorted(samples)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


def time_runs(
    run: Callable[[], Any], *, runs: int, warmup: int = 1, time_cap_s: float = 60.0
) -> tuple[Timings, Any]:
    """Call `run` `warmup` times untimed, then up to `runs` times timed; return the timings and the last result.

    The timed loop stops early once `time_cap_s` seconds have passed since it began, after at least one run.
    """
    result = None
    for _ in range(warmup):
        result = run()

    samples: list[float] = []
    deadline = time.monotonic() + time_cap_s
    while len(samples) < runs:
        started = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline:
            break
    return Timings(tuple(samples)), result


def time_interleaved(
    runs_by_name: Mapping[str, Callable[[], Any]], *, runs: int, warmup: int = 1, time_cap_s: float = 120.0
) -> dict[str, tuple[Timings, Any]]:
    """Time several callables in rounds, each round calling every one once, in the given order.

    Rounds spread a passing disturbance (another process on the machine, a background merge) over
    all callables instead of charging it to one. `warmup` untimed rounds come first; the timed
    rounds stop at `runs` or once `time_cap_s` seconds have passed, after at least one round.
    Returns each callable's timings and its last result.
    """
    results: dict[str, Any] = {}
    for _ in range(warmup):
        for name, run in runs_by_name.items():
            results[name] = run()

    samples: dict[str, list[float]] = {name: [] for name in runs_by_name}
    deadline = time.monotonic() + time_cap_s
    for _ in range(runs):
        for name, run in runs_by_name.items():
            started = time.perf_counter()
            results[name] = run()
            samples[name].append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline:
            break
    return {name: (Timings(tuple(samples[name])), results[name]) for name in runs_by_name}


def peak_rss_mb() -> float:
    """Return the peak resident set size of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Return the resident set size of this process now, in MiB, from /proc/self/status (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_summary() -> list[str]:
    """Describe the CPU, memory and software versions the figures were measured with."""
    lines = [
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs (nproc {_command_output(['nproc'])})",
        f"Memory: {_total_memory()}",
        f"OS: {platform.system()} {platform.release()}",
        f"Python: {platform.python_version()}",
        f"Load average (1, 5, 15 min) at start: {load_average()}",
    ]
    versions = []
    for package in VERSIONED_PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    lines.append("Packages: " + ", ".join(versions))
    return lines


def print_machine(store: Store | None = None) -> None:
    print("## Machine")
    for line in machine_summary():
        print(f"- {line}")
    if store is not None:
        print(f"- ClickHouse server version (chDB): {store.client.server_version}")
    print()


def print_end_load() -> None:
    print(f"Load average (1, 5, 15 min) at the end: {load_average()}")


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _cpu_model() -> str:
    for line in _command_output(["lscpu"]).splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Model name":
            return value.strip()
    return platform.processor() or "unknown CPU"


def _total_memory() -> str:
    for line in _command_output(["free", "-h"]).splitlines():
        if line.startswith("Mem:"):
            return line.split()[1] + " total"
    return "unknown"


def _command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Format rows as a Markdown table; numbers are right-aligned."""
    cells = [[format_cell(value) for value in row] for row in rows]
    numeric = [_is_numeric_column([row[index] for row in rows]) for index in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if right else "---" for right in numeric) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in cells)
    return "\n".join(lines)


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_numeric_column(values: Sequence[Any]) -> bool:
    present = [value for value in values if value is not None]
    return bool(present) and all(_is_number(value) for value in present)


SPREAD_HEADERS = ["median ms", "min ms", "max ms", "runs"]
PERCENTILE_HEADERS = ["median ms", "p95 ms", "max ms", "runs"]


def spread_cells(timings: Timings) -> list[float | int]:
    """Return the cells under SPREAD_HEADERS, for a few runs where a p95 would only repeat the max."""
    return [timings.median_ms, timings.min_ms, timings.max_ms, timings.runs]


def percentile_cells(timings: Timings) -> list[float | int]:
    """Return the cells under PERCENTILE_HEADERS, for 20 or more runs."""
    return [timings.median_ms, timings.p95_ms, timings.max_ms, timings.runs]
