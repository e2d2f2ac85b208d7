"""The RavenStack data set in tests: file paths, CSV reading, and an import of all five files.

RavenStack is a synthetic SaaS data set by River @ Rivalytics. The files are read in place from
the shared data folder and never copied into the repository.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from pathlib import Path

from tests.conftest import SHARED_DATA

from pulseboard.server.importer import ImportReport, import_file
from pulseboard.server.store import Store

RAVENSTACK = SHARED_DATA / "real" / "ravenstack"
MAPPINGS = Path(__file__).parent / "mappings"
FILES = ["accounts", "subscriptions", "feature_usage", "support_tickets", "churn_events"]
# Server time of the import. Every RavenStack date (2023-01-01 to 2024-12-31) lies before it.
IMPORT_NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


def read_csv(name: str) -> list[dict[str, str]]:
    """Read ravenstack_<name>.csv as one dict per data row."""
    with (RAVENSTACK / f"ravenstack_{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def import_ravenstack(
    store: Store, project_id: str, *, now: dt.datetime = IMPORT_NOW
) -> tuple[dict[str, ImportReport], dict[str, float]]:
    """Import all five files into the project and return each file's report and wall-clock seconds."""
    reports = {}
    seconds = {}
    for name in FILES:
        started = time.perf_counter()
        reports[name] = import_file(
            store, project_id, RAVENSTACK / f"ravenstack_{name}.csv", MAPPINGS / f"ravenstack_{name}.toml", now=now
        )
        seconds[name] = time.perf_counter() - started
    return reports, seconds
