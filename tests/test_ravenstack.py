"""RavenStack end to end: import all five files, score every account, and serve the published result.

RavenStack is a synthetic SaaS data set by River @ Rivalytics. Every expected number here is
computed from the CSV files with the `csv` module, following what tests/mappings makes of each
row, independently of the importer and the recipe.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import statistics
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from starlette.testclient import TestClient
from tests.ravenstack import FILES, import_ravenstack, read_csv

from pulseboard.server.app import create_app
from pulseboard.server.importer import ImportReport
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings, load_settings
from pulseboard.server.store import Store
from pulseboard.tools.publish import publish
from pulseboard.tools.query import QueryOutput
from pulseboard.tools.recipes import run_recipe

UTC = dt.timezone.utc
AS_OF = dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
HEALTH_PARAMS = {"as_of": "2024-12-31T23:59:59Z", "limit": 10000}
STATUSES = {"critical", "warn", "ok", "healthy", "champion"}
BASE_URL = "http://127.0.0.1:8787"
API_TOKEN = "ravenstack-test-token"

# Accounts checked one by one, each for a different rule of the recipe.
CANCELLED_ACCOUNT = "A-0a282f"  # churns on the as_of day, 4 days after its latest subscription starts
RESTARTED_ACCOUNT = "A-0b0d6d"  # churns on the day 8 subscriptions start, so it stays active
ERRORS_ACCOUNT = "A-a1b80b"  # the maximum errors_30d of all accounts
TICKETS_ACCOUNT = "A-139c3b"  # one of the five accounts with the maximum tickets_30d, 2
CHOSEN_ACCOUNTS = [CANCELLED_ACCOUNT, RESTARTED_ACCOUNT, ERRORS_ACCOUNT, TICKETS_ACCOUNT]


class CsvEvent(NamedTuple):
    """`count` events of one name that one CSV row becomes."""

    file: str
    account: str
    event: str
    timestamp: dt.datetime
    count: int


class Figures(NamedTuple):
    """An account's recipe figures, and the date of the cancellation that ends it, if any."""

    plan: str
    mrr: float
    events_30d: int
    trend: int
    errors_30d: int
    tickets_30d: int
    cancelled_on: str | None


def day(text: str) -> dt.datetime:
    """Read a RavenStack date as the importer does: a date alone is midnight UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def csv_events(rows: dict[str, list[dict[str, str]]]) -> Iterator[CsvEvent]:
    """Yield the events each CSV row becomes under the mappings in tests/mappings."""
    account_of_subscription = {row["subscription_id"]: row["account_id"] for row in rows["subscriptions"]}
    for row in rows["accounts"]:
        yield CsvEvent("accounts", row["account_id"], "account_created", day(row["signup_date"]), 1)
    for row in rows["subscriptions"]:
        yield CsvEvent("subscriptions", row["account_id"], "subscription_started", day(row["start_date"]), 1)
    for row in rows["feature_usage"]:
        account = account_of_subscription[row["subscription_id"]]
        used = day(row["usage_date"])
        yield CsvEvent("feature_usage", account, "feature_used", used, int(row["usage_count"]))
        yield CsvEvent("feature_usage", account, "$exception", used, int(row["error_count"]))
    for row in rows["support_tickets"]:
        yield CsvEvent("support_tickets", row["account_id"], "support_ticket_opened", day(row["submitted_at"]), 1)
    for row in rows["churn_events"]:
        yield CsvEvent("churn_events", row["account_id"], "subscription_cancelled", day(row["churn_date"]), 1)


def expected_report_counts(rows: dict[str, list[dict[str, str]]]) -> dict[str, dict[str, int]]:
    """Return, per file, the number of events of each name that its rows become."""
    counts: dict[str, collections.Counter[str]] = {name: collections.Counter() for name in FILES}
    for event in csv_events(rows):
        if event.count:
            counts[event.file][event.event] += event.count
    return {name: dict(sorted(counter.items())) for name, counter in counts.items()}


def latest_subscriptions(rows: dict[str, list[dict[str, str]]], as_of: dt.datetime) -> dict[str, dict[str, str]]:
    """Return each account's latest subscription started at or before as_of.

    Of subscriptions that start on the same day, the one with the highest MRR, then plan name, is latest.
    """
    latest: dict[str, dict[str, str]] = {}
    for row in rows["subscriptions"]:
        if day(row["start_date"]) > as_of:
            continue
        key = (row["start_date"], int(row["mrr_amount"]), row["plan_tier"])
        current = latest.get(row["account_id"])
        if current is None or key > (current["start_date"], int(current["mrr_amount"]), current["plan_tier"]):
            latest[row["account_id"]] = row
    return latest


def expected_figures(rows: dict[str, list[dict[str, str]]], as_of: dt.datetime) -> dict[str, Figures]:
    """Compute the recipe's figures for every account that has a subscription at or before as_of."""
    latest = latest_subscriptions(rows, as_of)
    last_churn: dict[str, str] = {}
    for row in rows["churn_events"]:
        if day(row["churn_date"]) <= as_of:
            last_churn[row["account_id"]] = max(last_churn.get(row["account_id"], ""), row["churn_date"])

    windows: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for event in csv_events(rows):
        if not as_of - dt.timedelta(days=30) < event.timestamp <= as_of:
            continue
        counts = windows[event.account]
        if event.event == "$exception":
            counts["errors"] += event.count
            continue
        counts["events"] += event.count
        if event.timestamp > as_of - dt.timedelta(days=14):
            counts["last_14d"] += event.count
        elif event.timestamp > as_of - dt.timedelta(days=28):
            counts["previous_14d"] += event.count
        if event.event == "support_ticket_opened":
            counts["tickets"] += event.count

    figures = {}
    for account, subscription in latest.items():
        churned = last_churn.get(account, "")
        cancelled_on = churned if churned > subscription["start_date"] else None
        counts = windows[account]
        figures[account] = Figures(
            plan=subscription["plan_tier"],
            mrr=0.0 if cancelled_on else float(subscription["mrr_amount"]),
            events_30d=counts["events"],
            trend=counts["last_14d"] - counts["previous_14d"],
            errors_30d=counts["errors"],
            tickets_30d=counts["tickets"],
            cancelled_on=cancelled_on,
        )
    return figures


def row_figures(row: dict[str, Any]) -> Figures:
    signal = row["top_risk_signal"]
    cancelled_on = None
    if signal.startswith("subscription cancelled "):
        cancelled_on = signal.removeprefix("subscription cancelled ")
    return Figures(
        row["plan"], row["mrr"], row["events_30d"], row["trend"], row["errors_30d"], row["tickets_30d"], cancelled_on
    )


def rows_by_account(output: QueryOutput) -> dict[str, dict[str, Any]]:
    names = [column.name for column in output.columns]
    return {row[0]: dict(zip(names, row)) for row in output.rows}


def csv_cell(value: Any) -> str:
    return "" if value is None else str(value)


@pytest.fixture(scope="module")
def csv_rows() -> dict[str, list[dict[str, str]]]:
    return {name: read_csv(name) for name in FILES}


@pytest.fixture(scope="module")
def expected(csv_rows) -> dict[str, Figures]:
    return expected_figures(csv_rows, AS_OF)


@pytest.fixture(scope="module")
def ravenstack(store: Store) -> tuple[str, dict[str, ImportReport]]:
    """A fresh project with all five RavenStack files imported, and the import report of each file."""
    project, _ = store.create_project("rs" + uuid.uuid4().hex[:12])
    reports, _ = import_ravenstack(store, project.project_id)
    return project.project_id, reports


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Settings:
    return load_settings(
        data_dir=tmp_path_factory.mktemp("ravenstack-settings"), clickhouse_url=store.url, public_url=BASE_URL
    )


@pytest.fixture(scope="module")
def health(store: Store, settings: Settings, ravenstack) -> QueryOutput:
    project_id, _ = ravenstack
    return run_recipe(store, settings, project_id, "account_health_score", HEALTH_PARAMS)


# Import


def test_import_reports_match_csv(ravenstack, csv_rows):
    _, reports = ravenstack
    expected_counts = expected_report_counts(csv_rows)

    for name in FILES:
        assert reports[name].rows_read == len(csv_rows[name]), name
        assert reports[name].events_by_name == expected_counts[name], name
        assert reports[name].events_stored == sum(expected_counts[name].values()), name


def test_import_stores_every_event(ravenstack, store: Store, csv_rows):
    project_id, _ = ravenstack
    expected_counts: collections.Counter[str] = collections.Counter()
    for counts in expected_report_counts(csv_rows).values():
        expected_counts.update(counts)

    stored = store.query(
        "SELECT event, count() FROM events WHERE project_id = {p:String} GROUP BY event ORDER BY event",
        {"p": project_id},
    ).rows

    assert dict(stored) == dict(sorted(expected_counts.items()))


# account_health_score as of 2024-12-31


def test_health_scores_every_subscribed_account(health: QueryOutput, csv_rows):
    subscribed = {row["account_id"] for row in csv_rows["subscriptions"] if day(row["start_date"]) <= AS_OF}
    accounts = [row[0] for row in health.rows]

    assert len(subscribed) == 500
    assert health.truncated is False
    assert health.row_count == len(subscribed)
    assert sorted(accounts) == sorted(subscribed)


def test_health_scores_and_bands_valid(health: QueryOutput):
    rows = rows_by_account(health).values()
    score_columns = ["health_score", "usage_score", "trend_score", "friction_score", "revenue_score"]

    for name in score_columns:
        assert all(0 <= row[name] <= 100 for row in rows), name
    assert {row["status"] for row in rows} <= STATUSES


def test_health_figures_match_csv(health: QueryOutput, expected: dict[str, Figures]):
    rows = rows_by_account(health)

    assert {account: row_figures(row) for account, row in rows.items()} == expected


def test_chosen_accounts_fit_their_role(csv_rows, expected: dict[str, Figures]):
    latest = latest_subscriptions(csv_rows, AS_OF)
    restarted_starts = [
        row for row in csv_rows["subscriptions"]
        if row["account_id"] == RESTARTED_ACCOUNT and row["start_date"] == latest[RESTARTED_ACCOUNT]["start_date"]
    ]
    restarted_churns = {row["churn_date"] for row in csv_rows["churn_events"] if row["account_id"] == RESTARTED_ACCOUNT}

    assert expected[CANCELLED_ACCOUNT].cancelled_on == "2024-12-31"
    assert latest[CANCELLED_ACCOUNT]["start_date"] == "2024-12-27"
    assert len(restarted_starts) == 8
    assert latest[RESTARTED_ACCOUNT]["start_date"] in restarted_churns
    assert expected[RESTARTED_ACCOUNT].cancelled_on is None
    assert expected[ERRORS_ACCOUNT].errors_30d == max(figures.errors_30d for figures in expected.values())
    assert expected[TICKETS_ACCOUNT].tickets_30d == max(figures.tickets_30d for figures in expected.values())


@pytest.mark.parametrize("account", CHOSEN_ACCOUNTS)
def test_chosen_account_matches_csv(health: QueryOutput, expected: dict[str, Figures], account: str):
    row = rows_by_account(health)[account]
    figures = expected[account]

    assert row["plan"] == figures.plan
    assert row["mrr"] == figures.mrr
    assert row["events_30d"] == figures.events_30d
    assert row["trend"] == figures.trend
    assert row["errors_30d"] == figures.errors_30d
    assert row["tickets_30d"] == figures.tickets_30d
    if figures.cancelled_on is None:
        assert not row["top_risk_signal"].startswith("subscription cancelled")
    else:
        assert row["top_risk_signal"] == f"subscription cancelled {figures.cancelled_on}"


# Score distribution at several dates, as the recipe's description reports it


BANDS = ["critical", "warn", "ok", "healthy", "champion"]
# as_of day: (rows, cancelled, accounts per band, median score), over accounts that have not cancelled.
DISTRIBUTION = {
    "2023-06-30": (445, 7, [33, 168, 129, 96, 12], 57.05),
    "2023-12-31": (469, 22, [49, 140, 133, 105, 20], 57.6),
    "2024-06-30": (475, 39, [44, 112, 158, 101, 21], 59.55),
    "2024-12-31": (500, 62, [43, 129, 148, 100, 18], 58.75),
}
# as_of day: (accounts with a churn event in the 90 days after as_of, accounts) per band.
CHURN_BY_BAND = {
    "2023-12-31": [(6, 49), (17, 140), (14, 133), (7, 105), (1, 20)],
    "2024-06-30": [(9, 44), (23, 112), (37, 158), (23, 101), (6, 21)],
}


def active_rows(store: Store, settings: Settings, project_id: str, as_of: str) -> tuple[list[dict[str, Any]], int]:
    """Return the rows of accounts that have not cancelled, and the number of all rows."""
    output = run_recipe(
        store, settings, project_id, "account_health_score", {"as_of": f"{as_of}T23:59:59Z", "limit": 10000}
    )
    rows = list(rows_by_account(output).values())
    return [row for row in rows if not row["top_risk_signal"].startswith("subscription cancelled")], len(rows)


@pytest.mark.parametrize("as_of", sorted(DISTRIBUTION))
def test_score_distribution(store: Store, settings: Settings, ravenstack, as_of: str):
    project_id, _ = ravenstack
    rows, cancelled, bands, median = DISTRIBUTION[as_of]

    active, total = active_rows(store, settings, project_id, as_of)

    assert (total, total - len(active)) == (rows, cancelled)
    assert [sum(row["status"] == band for row in active) for band in BANDS] == bands
    assert statistics.median(row["health_score"] for row in active) == median


@pytest.mark.parametrize("as_of", sorted(CHURN_BY_BAND))
def test_churn_by_band(store: Store, settings: Settings, ravenstack, csv_rows, as_of: str):
    project_id, _ = ravenstack
    start = dt.date.fromisoformat(as_of)
    churned = {
        row["account_id"] for row in csv_rows["churn_events"]
        if start < dt.date.fromisoformat(row["churn_date"]) <= start + dt.timedelta(days=90)
    }

    active, _ = active_rows(store, settings, project_id, as_of)

    by_band = [[row["account"] for row in active if row["status"] == band] for band in BANDS]
    assert [(sum(account in churned for account in accounts), len(accounts)) for accounts in by_band] == (
        CHURN_BY_BAND[as_of]
    )


def test_usage_predates_subscriptions(csv_rows):
    starts = {row["subscription_id"]: row["start_date"] for row in csv_rows["subscriptions"]}
    early = [row for row in csv_rows["feature_usage"] if row["usage_date"] < starts[row["subscription_id"]]]

    assert (len(early), len(csv_rows["feature_usage"])) == (19142, 25000)


# Publication


def test_published_health_serves_every_row(store: Store, settings: Settings, ravenstack, health: QueryOutput):
    project_id, _ = ravenstack
    published = publish(
        store,
        settings,
        project_id,
        description="Health of every RavenStack account at the end of 2024",
        recipe_id="account_health_score",
        params=HEALTH_PARAMS,
    )
    app = create_app(Runtime(settings, store), api_token=API_TOKEN)

    with TestClient(app, base_url=BASE_URL) as client:
        as_json = client.get(published.public_url + "&format=json")
        as_csv = client.get(published.public_url + "&format=csv")

    names = [column.name for column in health.columns]
    document = as_json.json()
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert published.public_url.startswith(f"{BASE_URL}/q/{published.publication_id}?key=")
    assert published.row_count == 500
    assert as_json.status_code == 200
    assert document["rows"] == health.rows
    assert document["row_count"] == 500
    assert document["truncated"] is False
    assert [column["name"] for column in document["columns"]] == names
    assert as_csv.status_code == 200
    assert table[0] == names
    assert table[1:] == [[csv_cell(value) for value in row] for row in health.rows]
