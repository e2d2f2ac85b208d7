"""Daily account health score snapshots: one row per project, day and account.

`pulseboard snapshot` writes the account_health_score result of a day here, and HogQL queries and
recipes read these rows as the `health_snapshots` table (hogql/snapshot_table.py). Writing a day
again replaces every row of that day, so a rerun never leaves an account of an earlier run behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from pulseboard.server.store import Store, utcnow

logger = logging.getLogger(__name__)

TABLE = "health_snapshots"


@dataclass(frozen=True)
class SnapshotRow:
    account: str
    health_score: float
    status: str
    top_risk_signal: str


def snapshot_day(as_of: dt.datetime, timezone: str) -> dt.date:
    """Return the day a snapshot taken at as_of belongs to: its date in the project's time zone."""
    return as_of.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def write_snapshots(store: Store, project_id: str, day: dt.date, as_of: dt.datetime, rows: Sequence[SnapshotRow]) -> None:
    """Replace the project's snapshot rows of one day with `rows`."""
    parameters = {"p": project_id, "d": day}
    with store.connection() as client:
        # A lightweight delete hides the day's old rows at once; a day rewritten with fewer
        # accounts must not keep the missing ones.
        client.command(f"DELETE FROM {TABLE} WHERE project_id = {{p:String}} AND day = {{d:Date}}", parameters)
        if rows:
            now = utcnow()
            version = time.time_ns()
            client.insert(
                TABLE,
                [
                    [project_id, day, row.account, row.health_score, row.status, row.top_risk_signal, as_of, now, version]
                    for row in rows
                ],
                column_names=[
                    "project_id", "day", "account", "health_score", "status", "top_risk_signal", "as_of",
                    "computed_at", "version",
                ],
            )
    logger.info("stored %d health snapshots of %s in project %s", len(rows), day, project_id)


def snapshot_days(store: Store, project_id: str) -> list[tuple[dt.date, int]]:
    """Return each stored day of the project with its number of accounts, oldest first."""
    result = store.query(
        f"SELECT day, count() FROM {TABLE} FINAL WHERE project_id = {{p:String}} GROUP BY day ORDER BY day",
        {"p": project_id},
    )
    return [(day, int(count)) for day, count in result.rows]
