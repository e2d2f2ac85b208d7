"""`account_drilldown`: everything known about one account, or about the N lowest-scoring accounts.

Each account gets the same titled sections, in this order: summary, usage per week, most active
users, top events, errors by message, support tickets, plan and MRR history, score history and
latest activity. Every section is one HogQL query run through `run_hogql`, or the
account_health_score recipe, so each read carries the project guard and the query limits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from pulseboard.recipes.loader import PROPERTY_PATH_PATTERN
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store, utcnow
from pulseboard.tools.errors import UserInputError
from pulseboard.tools.query import Column, QueryOutput, run_hogql
from pulseboard.tools.recipes import run_recipe
from pulseboard.tools.schema import require_project

logger = logging.getLogger(__name__)

HEALTH_RECIPE_ID = "account_health_score"
MAX_BOTTOM_N = 50
USAGE_WEEKS = 12
# Days that the users, events, errors and tickets sections cover, as the score's default window.
WINDOW_DAYS = 30
SCORE_HISTORY_DAYS = 30
SUMMARY_COLUMNS = (
    "plan", "mrr", "health_score", "status", "top_risk_signal", "second_risk_signal", "coverage",
    "events_30d", "active_users_30d", "errors_30d", "tickets_30d", "trend", "last_seen_days_ago", "nps",
    "score_change_7d", "score_change_30d",
)


class DrilldownSection(BaseModel):
    """One titled table of an account's drill-down."""

    name: str = Field(description="Stable identifier of the section, e.g. usage_by_week.")
    title: str = Field(description="Heading shown above the table.")
    columns: list[Column]
    rows: list[list[Any]]


class AccountDrilldown(BaseModel):
    account_id: str
    health_score: float | None = Field(description="Score from account_health_score; null without one.")
    status: str = Field(description="Band of the score, or 'no data'.")
    last_seen: str | None = Field(description="Time of the account's latest event at or before as_of, ISO 8601.")
    sections: list[DrilldownSection]


class DrilldownOutput(BaseModel):
    as_of: str = Field(description="Time the drill-down was computed for, ISO 8601.")
    accounts: list[AccountDrilldown]


@dataclass(frozen=True)
class SectionQuery:
    name: str
    title: str
    hogql: str


# `{account_path}` is replaced by the checked account property path; every other brace is a
# bound placeholder: account (String) and as_of (DateTime64).
SECTION_QUERIES = (
    SectionQuery(
        "usage_by_week",
        f"Usage per week, last {USAGE_WEEKS} weeks",
        f"""
        WITH
            weeks AS (
                SELECT toStartOfWeek(toTimeZone({{as_of}}, timezone()) - toIntervalWeek(number), 1) AS week
                FROM (SELECT arrayJoin(range({USAGE_WEEKS})) AS number)
            ),
            usage AS (
                SELECT
                    toStartOfWeek(timestamp, 1) AS week,
                    countIf(event != '$exception') AS events,
                    uniqExactIf(distinct_id, event != '$exception') AS active_users,
                    countIf(event = '$exception') AS errors
                FROM events
                WHERE toString(properties.{{account_path}}) = {{account}}
                    AND timestamp <= {{as_of}} AND timestamp > {{as_of}} - toIntervalWeek({USAGE_WEEKS + 1})
                GROUP BY week
            )
        SELECT
            toDate(weeks.week) AS week_start,
            coalesce(usage.events, 0) AS events,
            coalesce(usage.active_users, 0) AS active_users,
            coalesce(usage.errors, 0) AS errors
        FROM weeks
        LEFT JOIN usage ON weeks.week = usage.week
        ORDER BY week_start
        """,
    ),
    SectionQuery(
        "active_users",
        f"Most active users, last {WINDOW_DAYS} days",
        f"""
        SELECT distinct_id AS user, count() AS events, max(timestamp) AS last_seen
        FROM events
        WHERE toString(properties.{{account_path}}) = {{account}} AND event != '$exception'
            AND timestamp <= {{as_of}} AND timestamp > {{as_of}} - toIntervalDay({WINDOW_DAYS})
        GROUP BY user
        ORDER BY events DESC, user
        LIMIT 10
        """,
    ),
    SectionQuery(
        "top_events",
        f"Top events, last {WINDOW_DAYS} days",
        f"""
        SELECT event, count() AS events, uniqExact(distinct_id) AS users, max(timestamp) AS last_seen
        FROM events
        WHERE toString(properties.{{account_path}}) = {{account}} AND event != '$exception'
            AND timestamp <= {{as_of}} AND timestamp > {{as_of}} - toIntervalDay({WINDOW_DAYS})
        GROUP BY event
        ORDER BY events DESC, event
        LIMIT 10
        """,
    ),
    SectionQuery(
        "errors",
        f"Errors by message, last {WINDOW_DAYS} days",
        f"""
        SELECT
            coalesce(toString(properties.$exception_message), '(no message)') AS message,
            coalesce(toString(properties.$exception_type), '') AS type,
            count() AS errors,
            uniqExact(distinct_id) AS users,
            min(timestamp) AS first_seen,
            max(timestamp) AS last_seen
        FROM events
        WHERE toString(properties.{{account_path}}) = {{account}} AND event = '$exception'
            AND timestamp <= {{as_of}} AND timestamp > {{as_of}} - toIntervalDay({WINDOW_DAYS})
        GROUP BY message, type
        ORDER BY errors DESC, message
        LIMIT 20
        """,
    ),
    SectionQuery(
        "tickets",
        f"Support tickets, last {WINDOW_DAYS} days",
        f"""
        SELECT
            timestamp AS opened_at,
            distinct_id AS user,
            toString(properties.subject) AS subject,
            toString(properties.priority) AS priority
        FROM events
        WHERE toString(properties.{{account_path}}) = {{account}} AND event = 'support_ticket_opened'
            AND timestamp <= {{as_of}} AND timestamp > {{as_of}} - toIntervalDay({WINDOW_DAYS})
        ORDER BY opened_at DESC
        LIMIT 50
        """,
    ),
    SectionQuery(
        "billing",
        "Plan and MRR history",
        """
        SELECT timestamp AS at, event, toString(properties.plan) AS plan, toFloat(properties.mrr) AS mrr
        FROM events
        WHERE toString(properties.{account_path}) = {account}
            AND event IN ('subscription_started', 'plan_changed', 'subscription_cancelled')
            AND timestamp <= {as_of}
        ORDER BY at, event
        LIMIT 100
        """,
    ),
    SectionQuery(
        "score_history",
        f"Health score snapshots, last {SCORE_HISTORY_DAYS} days",
        f"""
        SELECT day, health_score, status, top_risk_signal
        FROM health_snapshots
        WHERE account = {{account}}
            AND day > toDate(toTimeZone({{as_of}}, timezone())) - {SCORE_HISTORY_DAYS}
            AND day <= toDate(toTimeZone({{as_of}}, timezone()))
        ORDER BY day
        """,
    ),
    SectionQuery(
        "last_activity",
        "Latest activity",
        """
        SELECT timestamp, event, distinct_id AS user
        FROM events
        WHERE toString(properties.{account_path}) = {account} AND timestamp <= {as_of}
        ORDER BY timestamp DESC, event
        LIMIT 10
        """,
    ),
)


def account_drilldown(
    store: Store,
    settings: Settings,
    project_id: str,
    *,
    account_id: str | None = None,
    bottom_n: int | None = None,
    as_of: dt.datetime | None = None,
    account_property: str = "account_id",
) -> DrilldownOutput:
    """Return the drill-down of one account, or of the bottom_n lowest-scoring active accounts.

    Cancelled accounts score 0, so the bottom N leave them out: they have already left.
    Raises UserInputError for a bad argument, an unknown project or an account without events.
    """
    if (account_id is None) == (bottom_n is None):
        raise UserInputError("Give exactly one of account_id (one account) or bottom_n (the lowest-scoring accounts).")
    if bottom_n is not None and not 1 <= bottom_n <= MAX_BOTTOM_N:
        raise UserInputError(f"bottom_n must be from 1 to {MAX_BOTTOM_N}; got {bottom_n}.")
    if account_id is not None and not account_id.strip():
        raise UserInputError("account_id is empty; give the account's id as its events carry it.")
    if not isinstance(account_property, str) or not PROPERTY_PATH_PATTERN.match(account_property):
        raise UserInputError(
            f"account_property {account_property!r} is not a property path such as account_id or $groups.company."
        )
    require_project(store, project_id)

    as_of = (as_of or utcnow()).astimezone(dt.timezone.utc)
    health = run_recipe(
        store, settings, project_id, HEALTH_RECIPE_ID,
        {"as_of": as_of, "account_property": account_property, "limit": 10_000},
    )
    health_rows = [dict(zip([column.name for column in health.columns], row)) for row in health.rows]
    if bottom_n is not None:
        active = [row for row in health_rows if not (row["top_risk_signal"] or "").startswith("subscription cancelled")]
        chosen = [row["account"] for row in active if row["health_score"] is not None][:bottom_n]
    else:
        chosen = [account_id]

    by_account = {row["account"]: row for row in health_rows}
    accounts = [
        _drilldown_one(store, settings, project_id, account, by_account.get(account), as_of, account_property)
        for account in chosen
    ]
    logger.info("drill-down of %d accounts in project %s", len(accounts), project_id)
    return DrilldownOutput(as_of=as_of.isoformat(), accounts=accounts)


def drill_down_scored(
    store: Store,
    settings: Settings,
    project_id: str,
    health_rows: Sequence[dict[str, Any]],
    *,
    as_of: dt.datetime,
    account_property: str = "account_id",
) -> list[AccountDrilldown]:
    """Build the drill-down of each account in `health_rows`, rows of the health recipe that the
    caller scored with its own parameters, so the summary section shows the caller's scores."""
    return [
        _drilldown_one(store, settings, project_id, str(row["account"]), row, as_of, account_property)
        for row in health_rows
    ]


def _drilldown_one(
    store: Store,
    settings: Settings,
    project_id: str,
    account: str,
    health_row: dict[str, Any] | None,
    as_of: dt.datetime,
    account_property: str,
) -> AccountDrilldown:
    placeholders = {"account": (account, "String"), "as_of": (as_of, "DateTime64(6, 'UTC')")}
    sections = [_summary_section(health_row)]
    for query in SECTION_QUERIES:
        hogql = query.hogql.replace("{account_path}", account_property)
        output = run_hogql(store, settings, project_id, hogql, placeholders)
        sections.append(_section(query.name, query.title, output))

    activity = next(section for section in sections if section.name == "last_activity")
    if health_row is None and not activity.rows:
        raise UserInputError(
            f"Account {account!r} has no events at or before {as_of.isoformat()} in project {project_id!r}; "
            f"check the id, or the account_property ({account_property})."
        )
    return AccountDrilldown(
        account_id=account,
        health_score=health_row["health_score"] if health_row else None,
        status=health_row["status"] if health_row else "no data",
        last_seen=activity.rows[0][0] if activity.rows else None,
        sections=sections,
    )


def _summary_section(health_row: dict[str, Any] | None) -> DrilldownSection:
    rows = [[name, _text(health_row.get(name))] for name in SUMMARY_COLUMNS] if health_row else []
    return DrilldownSection(
        name="summary",
        title="Health score summary",
        columns=[Column(name="field", type="String"), Column(name="value", type="String")],
        rows=rows,
    )


def _section(name: str, title: str, output: QueryOutput) -> DrilldownSection:
    return DrilldownSection(name=name, title=title, columns=output.columns, rows=output.rows)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
