"""`snapshot_health_scores`: store a day's account_health_score result as that day's snapshot."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from pulseboard.server.settings import Settings
from pulseboard.server.snapshots import SnapshotRow, snapshot_day, write_snapshots
from pulseboard.server.store import Store, utcnow
from pulseboard.tools.errors import UserInputError
from pulseboard.tools.recipes import run_recipe
from pulseboard.tools.schema import require_project

logger = logging.getLogger(__name__)

HEALTH_RECIPE_ID = "account_health_score"
# The recipe returns at most this many accounts, its own maximum limit.
MAX_ACCOUNTS = 10_000


class SnapshotOutput(BaseModel):
    project_id: str
    day: dt.date = Field(description="Day the snapshot is stored under, in the project's time zone.")
    as_of: dt.datetime = Field(description="Time the scores were computed for.")
    accounts: int = Field(description="Accounts stored; accounts without a score are left out.")
    skipped: int = Field(description="Accounts with status 'no data', which have no score to store.")


def parse_snapshot_time(value: str | dt.datetime | dt.date | None, timezone: str, now: dt.datetime) -> dt.datetime:
    """Return the time to score at: now, a given date-time, or the end of a given day.

    A bare date (2025-03-14) means the last microsecond of that day in the project's time zone, so
    a backfilled day counts that day's events as a snapshot taken at midnight would.
    """
    if value is None:
        return now
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        day = value
    else:
        text = value.strip()
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                raise UserInputError(
                    f"as_of {value!r} is not a date (2025-03-14) or ISO 8601 date-time (2025-03-14T23:00:00Z)."
                ) from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    end = dt.datetime.combine(day, dt.time.max, tzinfo=zoneinfo.ZoneInfo(timezone))
    return end.astimezone(dt.timezone.utc)


def take_snapshot(
    store: Store,
    settings: Settings,
    project_id: str,
    *,
    as_of: str | dt.datetime | dt.date | None = None,
    params: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> SnapshotOutput:
    """Score every account as of a time and store the scores as the snapshot of that day.

    Running it again for the same day replaces that day's snapshot. `params` are further
    account_health_score parameters, such as weights; as_of, sort and limit are set here.
    """
    project = require_project(store, project_id)
    fixed = sorted({"as_of", "limit", "sort"} & set(params or {}))
    if fixed:
        raise UserInputError(
            f"Parameters {', '.join(fixed)} are set by the snapshot itself; give the time as as_of instead."
        )

    now = now or utcnow()
    scored_at = parse_snapshot_time(as_of, project.timezone, now)
    if scored_at > now:
        # Today's date means the end of a day that has not ended yet: score it as of now.
        if snapshot_day(scored_at, project.timezone) != snapshot_day(now, project.timezone):
            raise UserInputError(
                f"as_of {scored_at.isoformat()} is in the future; snapshots record past or present scores."
            )
        scored_at = now

    output = run_recipe(
        store, settings, project_id, HEALTH_RECIPE_ID,
        {**dict(params or {}), "as_of": scored_at, "limit": MAX_ACCOUNTS},
    )
    names = [column.name for column in output.columns]
    rows = [dict(zip(names, row)) for row in output.rows]
    stored = [
        SnapshotRow(row["account"], row["health_score"], row["status"], row["top_risk_signal"] or "")
        for row in rows
        if row["health_score"] is not None
    ]
    if len(output.rows) >= MAX_ACCOUNTS:
        logger.warning("snapshot of project %s stores only the first %d accounts", project_id, MAX_ACCOUNTS)

    day = snapshot_day(scored_at, project.timezone)
    write_snapshots(store, project_id, day, scored_at, stored)
    return SnapshotOutput(
        project_id=project_id, day=day, as_of=scored_at, accounts=len(stored), skipped=len(rows) - len(stored)
    )
