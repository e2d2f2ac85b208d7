"""Demo data: five reference B2B accounts plus generated ones, and a terminal table printer.

The five reference accounts (demo_accounts.json) reproduce their figures exactly as of the
reference time. The figures are usage events in the last 30 days, the 14-day trend, errors and
support tickets in the last 30 days, and plan and MRR from the latest billing event. As in the
account_health_score recipe, events_30d and the trend count every event except `$exception`, so
support tickets and billing events count as account activity alongside usage events.

Every event lies at least EDGE_MARGIN (6 hours) away from each window edge: the reference time
minus 0, 14, 28 and 30 days. So when the data is generated with reference_time set to the
generation time, the figures stay exact for a recipe run with as_of = now up to 6 hours later.
The windows move, but no event crosses an edge.
"""

from __future__ import annotations

import collections
import datetime as dt
import importlib.resources
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pulseboard.server.store import Store

logger = logging.getLogger(__name__)

DAY_S = 86_400.0
EDGE_MARGIN = dt.timedelta(hours=6)
HISTORY_DAYS = 60
INGEST_BATCH_SIZE = 1000
MAX_EXTRA_ACCOUNTS = 1000

# Window segments in days before the reference time: (newer edge, older edge).
LAST_14D = (0, 14)
PREVIOUS_14D = (14, 28)
DAYS_28_TO_30 = (28, 30)
OLDER = (30, HISTORY_DAYS)
RECENT_30D = (LAST_14D, PREVIOUS_14D, DAYS_28_TO_30)

PLAN_MRR = {"starter": 250, "pro": 750, "scale": 1875, "enterprise": 5000}
PLAN_WEIGHTS = {"starter": 0.35, "pro": 0.35, "scale": 0.2, "enterprise": 0.1}
# Range of usage events in 30 days per plan for generated accounts; sampled on a log scale.
PLAN_USAGE_RANGE = {"starter": (30, 800), "pro": (200, 4000), "scale": (800, 8000), "enterprise": (1500, 12000)}

USAGE_EVENTS = {
    "$pageview": 30,
    "dashboard_viewed": 25,
    "query_run": 20,
    "filter_applied": 8,
    "insight_created": 6,
    "report_exported": 5,
    "dashboard_shared": 2,
    "alert_created": 2,
    "user_invited": 1,
}
PAGES = ["/home", "/dashboards", "/insights", "/reports", "/settings", "/alerts"]
DASHBOARDS = ["Revenue overview", "Weekly active users", "Funnel health", "Ops latency", "Board pack"]
EXPORT_FORMATS = ["csv", "pdf", "xlsx"]
EXCEPTIONS = [
    ("TimeoutError", "Query timed out after 30 s"),
    ("TypeError", "Cannot read properties of undefined (reading 'series')"),
    ("ValueError", "Invalid date range: start is after end"),
    ("HTTPError", "502 Bad Gateway from /api/insights"),
    ("ChunkLoadError", "Loading chunk 417 failed"),
]
TICKET_SUBJECTS = [
    "Dashboard does not load",
    "Export to PDF is empty",
    "Numbers differ from our billing system",
    "How do I invite my team?",
    "Alerts arrive late",
]
CANCEL_REASONS = ["pricing", "switched to competitor", "missing features", "budget cuts"]
EXTRA_ACCOUNT_NAMES = [
    "northwind", "contoso", "initech", "umbrella", "hooli", "piedpiper", "wayne", "stark", "wonka",
    "soylent", "cyberdyne", "tyrell", "aperture", "blackmesa", "vandelay", "dunder", "prestige",
    "oscorp", "massive", "gringotts", "bluth", "kramerica", "monarch", "gekko", "rekall", "duff",
    "sterling", "zorg", "nakatomi", "weyland", "dharma", "lacroix", "octan", "virtucon", "spacely",
    "cogswell", "wernham", "krusty", "ollivander", "buynlarge", "yoyodyne", "omnicorp", "sirius",
    "globochem", "bigkahuna", "paperstreet", "strickland", "binford",
]

# Relative weight of each weekday (Monday first) and UTC hour; events are sampled in proportion.
WEEKDAY_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 0.9, 0.35, 0.3]
HOUR_WEIGHTS = [0.15] * 7 + [0.5, 0.9, 1.0, 1.0, 1.0, 0.8, 1.0, 1.0, 1.0, 0.9, 0.7, 0.4] + [0.25] * 5


@dataclass(frozen=True)
class AccountSpec:
    """Generator parameters of one account; its figures hold as of the reference time."""

    account: str
    plan: str
    mrr: float
    events_30d: int
    trend: int
    errors_30d: int
    tickets_30d: int
    previous_plan: str | None = None
    previous_mrr: float | None = None
    cancelled: bool = False

    def window_counts(self) -> tuple[int, int, int]:
        """Split events_30d into (last 14 days, previous 14 days, days 28 to 30) with the exact trend.

        Days 28 to 30 get the daily rate of the previous 14 days, so with `previous` events there,
        events_30d = previous + (previous + trend) + previous / 7, which gives
        previous = 7 * (events_30d - trend) / 15.
        """
        if not -self.events_30d <= self.trend <= self.events_30d:
            raise ValueError(
                f"Account {self.account!r}: trend {self.trend} must lie within ±events_30d ({self.events_30d})."
            )

        previous = round(7 * (self.events_30d - self.trend) / 15)
        last = previous + self.trend
        oldest = self.events_30d - previous - last
        if last < 0 or oldest < 0:
            raise ValueError(
                f"Account {self.account!r}: events_30d {self.events_30d} and trend {self.trend} cannot be split "
                "into 14-day windows; use a trend nearer 0."
            )
        return last, previous, oldest


def reference_accounts() -> list[AccountSpec]:
    """Return the five reference accounts shipped in demo_accounts.json."""
    text = importlib.resources.files("pulseboard.server").joinpath("demo_accounts.json").read_text(encoding="utf-8")
    return [AccountSpec(**entry) for entry in json.loads(text)["accounts"]]


def extra_account_name(index: int) -> str:
    base = EXTRA_ACCOUNT_NAMES[index % len(EXTRA_ACCOUNT_NAMES)]
    round_number = index // len(EXTRA_ACCOUNT_NAMES)
    return base if round_number == 0 else f"{base}-{round_number + 1}"


def random_extra_account(rng: random.Random, name: str) -> AccountSpec:
    """Return a generated account with a plausible plan, usage, trend, errors and tickets."""
    plan = rng.choices(list(PLAN_WEIGHTS), weights=list(PLAN_WEIGHTS.values()))[0]
    low, high = PLAN_USAGE_RANGE[plan]
    events_30d = round(math.exp(rng.uniform(math.log(low), math.log(high))))

    profile = rng.choices(["growing", "flat", "declining"], weights=[0.4, 0.4, 0.2])[0]
    change = {"growing": (0.1, 0.6), "flat": (-0.08, 0.08), "declining": (-0.5, -0.1)}[profile]
    relative_change = rng.uniform(*change)
    previous = events_30d / (15 / 7 + relative_change)
    trend = round(relative_change * previous)

    # Most accounts see under 2 errors per 1,000 events; about one in seven has a noisy integration.
    errors_per_1000 = rng.uniform(4, 20) if rng.random() < 0.15 else rng.uniform(0.1, 1.5)
    errors_30d = round(errors_per_1000 * events_30d / 1000)
    tickets_30d = rng.choices([0, 1, 2, 3, 5], weights=[0.55, 0.25, 0.12, 0.06, 0.02])[0]

    previous_plan = None
    if rng.random() < 0.3:
        previous_plan = rng.choice([other for other in PLAN_MRR if other != plan])
    return AccountSpec(
        account=name,
        plan=plan,
        mrr=PLAN_MRR[plan],
        events_30d=events_30d,
        trend=trend,
        errors_30d=errors_30d,
        tickets_30d=tickets_30d,
        previous_plan=previous_plan,
        previous_mrr=PLAN_MRR[previous_plan] if previous_plan else None,
        cancelled=rng.random() < 0.08,
    )


class AccountEventBuilder:
    """Builder of API-shaped events for one account, at random times inside window segments."""

    def __init__(self, rng: random.Random, reference_time: dt.datetime, spec: AccountSpec) -> None:
        self.rng = rng
        self.reference_s = reference_time.timestamp()
        self.margin_s = EDGE_MARGIN.total_seconds()
        self.spec = spec
        user_count = max(2, min(60, round(math.sqrt(max(spec.events_30d, 1)) / 3)))
        self.users = [f"{spec.account}-user-{index:02d}" for index in range(1, user_count + 1)]
        # Earlier users are more active, as a few power users are in a real account.
        self.user_weights = [1 / (index + 1) for index in range(user_count)]
        self.events: list[dict[str, Any]] = []
        # Events other than $exception per window segment: the activity that events_30d counts.
        self.activity: collections.Counter[tuple[float, float] | None] = collections.Counter()

    def random_time(self, segment: tuple[float, float]) -> float:
        """Return a POSIX time inside the segment, at least EDGE_MARGIN from both of its edges."""
        newer_days, older_days = segment
        low = self.reference_s - older_days * DAY_S + self.margin_s
        high = self.reference_s - newer_days * DAY_S - self.margin_s
        moment = self.rng.uniform(low, high)
        for _ in range(20):
            day_index = int(moment // DAY_S)
            weekday = (day_index + 3) % 7  # 1970-01-01 was a Thursday.
            hour = int(moment % DAY_S // 3600)
            if self.rng.random() < WEEKDAY_WEIGHTS[weekday] * HOUR_WEIGHTS[hour]:
                break
            moment = self.rng.uniform(low, high)
        return moment

    def segment_of(self, moment: float) -> tuple[float, float] | None:
        days_ago = (self.reference_s - moment) / DAY_S
        for segment in (LAST_14D, PREVIOUS_14D, DAYS_28_TO_30, OLDER):
            if segment[0] <= days_ago < segment[1]:
                return segment
        return None

    def add(self, event: str, moment: float, properties: dict[str, Any], distinct_id: str | None = None) -> None:
        if event != "$exception":
            self.activity[self.segment_of(moment)] += 1
        self.events.append(
            {
                "event": event,
                "distinct_id": distinct_id or self.rng.choices(self.users, weights=self.user_weights)[0],
                "properties": {"account_id": self.spec.account, **properties},
                "timestamp": dt.datetime.fromtimestamp(moment, dt.timezone.utc).isoformat(timespec="microseconds"),
                "uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            }
        )

    def fill_activity(self, segment: tuple[float, float], total: int) -> None:
        """Add usage events until the segment contains `total` events other than $exception."""
        count = total - self.activity[segment]
        if count < 0:
            raise ValueError(
                f"Account {self.spec.account!r} has {self.activity[segment]} ticket and billing events between "
                f"{segment[0]} and {segment[1]} days ago, more than the {total} events it should have there."
            )
        self.add_usage(segment, count)

    def add_usage(self, segment: tuple[float, float], count: int) -> None:
        names = self.rng.choices(list(USAGE_EVENTS), weights=list(USAGE_EVENTS.values()), k=count)
        users = self.rng.choices(self.users, weights=self.user_weights, k=count)
        for name, user in zip(names, users):
            self.add(name, self.random_time(segment), self.usage_properties(name), user)

    def usage_properties(self, name: str) -> dict[str, Any]:
        if name == "$pageview":
            return {"$pathname": self.rng.choice(PAGES)}
        if name == "dashboard_viewed":
            return {"dashboard": self.rng.choice(DASHBOARDS)}
        if name == "query_run":
            return {"duration_ms": self.rng.randint(40, 4000)}
        if name == "report_exported":
            return {"format": self.rng.choice(EXPORT_FORMATS)}
        return {}

    def add_errors(self, segments: Sequence[tuple[float, float]], count: int) -> None:
        for _ in range(count):
            kind, message = self.rng.choice(EXCEPTIONS)
            segment = self.pick_segment(segments)
            self.add("$exception", self.random_time(segment), {"$exception_type": kind, "$exception_message": message})

    def add_tickets(self, segments: Sequence[tuple[float, float]], count: int) -> None:
        for _ in range(count):
            properties = {
                "subject": self.rng.choice(TICKET_SUBJECTS),
                "priority": self.rng.choice(["low", "normal", "high"]),
            }
            self.add("support_ticket_opened", self.random_time(self.pick_segment(segments)), properties)

    def pick_segment(self, segments: Sequence[tuple[float, float]]) -> tuple[float, float]:
        """Choose a segment with probability in proportion to its length."""
        return self.rng.choices(list(segments), weights=[older - newer for newer, older in segments])[0]

    def add_billing(self) -> None:
        spec = self.spec
        admin = self.users[0]
        first_plan = spec.previous_plan or spec.plan
        first_mrr = spec.previous_mrr if spec.previous_plan else spec.mrr
        started = {"plan": first_plan, "mrr": first_mrr}
        self.add("subscription_started", self.random_time((50, HISTORY_DAYS)), started, admin)
        if spec.previous_plan:
            segment = self.rng.choice([(30, 50), PREVIOUS_14D, LAST_14D])
            changed = {
                "plan": spec.plan,
                "mrr": spec.mrr,
                "previous_plan": spec.previous_plan,
                "previous_mrr": spec.previous_mrr,
            }
            self.add("plan_changed", self.random_time(segment), changed, admin)

    def cancel(self) -> None:
        """End the subscription in the last 28 days and drop the account's later events."""
        moment = self.random_time(self.rng.choice([PREVIOUS_14D, LAST_14D]))
        cutoff = dt.datetime.fromtimestamp(moment, dt.timezone.utc).isoformat(timespec="microseconds")
        self.events = [event for event in self.events if event["timestamp"] < cutoff]
        properties = {"plan": self.spec.plan, "mrr": 0, "reason": self.rng.choice(CANCEL_REASONS)}
        self.add("subscription_cancelled", moment, properties, self.users[0])


def account_events(rng: random.Random, reference_time: dt.datetime, spec: AccountSpec) -> list[dict[str, Any]]:
    """Return 60 days of events for one account."""
    builder = AccountEventBuilder(rng, reference_time, spec)
    builder.add_billing()
    builder.add_tickets([LAST_14D, PREVIOUS_14D], spec.tickets_30d)
    builder.add_tickets([OLDER], rng.choice([0, 1, 2]))

    # Tickets and billing events count as activity too, so usage events fill each window up to
    # its exact total.
    last, previous, oldest = spec.window_counts()
    builder.fill_activity(LAST_14D, last)
    builder.fill_activity(PREVIOUS_14D, previous)
    builder.fill_activity(DAYS_28_TO_30, oldest)
    builder.add_usage(OLDER, round(previous * 30 / 14 * rng.uniform(0.8, 1.1)))

    builder.add_errors(RECENT_30D, spec.errors_30d)
    builder.add_errors([OLDER], round(spec.errors_30d * rng.uniform(0.5, 1.2)))
    if spec.cancelled:
        builder.cancel()
    return builder.events


def demo_accounts(extra_accounts: int, seed: int) -> list[AccountSpec]:
    """Return the reference accounts followed by `extra_accounts` generated ones."""
    if not 0 <= extra_accounts <= MAX_EXTRA_ACCOUNTS:
        raise ValueError(f"extra_accounts must be from 0 to {MAX_EXTRA_ACCOUNTS}; got {extra_accounts}.")

    rng = random.Random(f"accounts-{seed}")
    extras = [random_extra_account(rng, extra_account_name(index)) for index in range(extra_accounts)]
    return reference_accounts() + extras


def generate_demo_events(
    reference_time: dt.datetime, *, extra_accounts: int = 40, seed: int = 7
) -> list[dict[str, Any]]:
    """Return API-shaped events for the demo accounts over the 60 days before reference_time.

    The output depends only on reference_time, extra_accounts and seed. Events are sorted by time.
    """
    if reference_time.tzinfo is None:
        raise ValueError("reference_time must be timezone-aware, e.g. datetime.now(timezone.utc).")

    rng = random.Random(f"events-{seed}")
    events: list[dict[str, Any]] = []
    for spec in demo_accounts(extra_accounts, seed):
        events.extend(account_events(rng, reference_time, spec))
    events.sort(key=lambda event: event["timestamp"])
    return events


def ingest_events(store: Store, project_id: str, events: Sequence[dict[str, Any]], *, now: dt.datetime) -> int:
    """Validate events through the ingestion API's parser and store them in batches; return the count."""
    from pulseboard.server.ingest import parse_events

    stored = 0
    for start in range(0, len(events), INGEST_BATCH_SIZE):
        rows = parse_events({"batch": list(events[start : start + INGEST_BATCH_SIZE])}, now=now)
        store.insert_events(project_id, rows)
        stored += len(rows)
    return stored


def load_demo(store: Store, project_id: str, reference_time: dt.datetime, extra_accounts: int = 40) -> int:
    """Generate the demo events as of reference_time and store them in a project; return the count."""
    started = time.perf_counter()
    events = generate_demo_events(reference_time, extra_accounts=extra_accounts)
    generated = time.perf_counter()
    stored = ingest_events(store, project_id, events, now=reference_time)
    logger.info(
        "loaded %d demo events for %d extra accounts into project %s (generate %.1f s, ingest %.1f s)",
        stored, extra_accounts, project_id, generated - started, time.perf_counter() - generated,
    )
    return stored


# Terminal table

MONEY_COLUMNS = {"mrr", "arr", "revenue"}
SIGNED_COLUMNS = {"trend", "change", "delta"}
# The account_health_score columns that `pulseboard demo` prints, in the order a customer success
# lead reads them. The recipe has 23 columns, too many for a terminal line.
SUMMARY_COLUMNS = ("account", "health_score", "status", "trend", "top_risk_signal", "mrr")


def format_summary_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], shown: Sequence[str] = SUMMARY_COLUMNS
) -> str:
    """Format the `shown` columns of a result as a table. When columns were left out, a note after
    the table counts them and names where to read them. Shown names missing from `columns` are skipped."""
    indexes = [columns.index(name) for name in shown if name in columns]
    table = format_table([columns[index] for index in indexes], [[row[index] for index in indexes] for row in rows])
    if len(indexes) == len(columns):
        return table
    return (
        f"{table}\n{len(indexes)} of {len(columns)} columns shown. The dashboard below has all of them; "
        "add &format=csv or &format=json to its URL for a file."
    )


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Format rows as an aligned text table: numbers right-aligned with thousands separators,
    money columns (mrr, arr, revenue) as $1,875, and signed columns (trend, change, delta) as +4,100.
    """
    integral = [column_is_integral(rows, index) for index in range(len(columns))]
    numeric = [column_is_numeric(rows, index) for index in range(len(columns))]
    cells = [
        [format_cell(name, value, whole) for name, value, whole in zip(columns, row, integral)]
        for row in rows
    ]
    widths = [max([len(name)] + [len(row[index]) for row in cells]) for index, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric)
        ]
        return "  ".join(parts).rstrip()

    lines = [line(list(columns)), line(["-" * width for width in widths])]
    lines.extend(line(row) for row in cells)
    return "\n".join(lines)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def column_is_numeric(rows: Sequence[Sequence[Any]], index: int) -> bool:
    values = [row[index] for row in rows if row[index] is not None]
    return bool(values) and all(is_number(value) for value in values)


def column_is_integral(rows: Sequence[Sequence[Any]], index: int) -> bool:
    """Return whether every number in the column is whole, so the column prints without decimals."""
    return all(float(row[index]).is_integer() for row in rows if is_number(row[index]))


def format_cell(column: str, value: Any, integral: bool) -> str:
    if value is None:
        return ""
    if not is_number(value):
        return str(value)

    text = f"{abs(value):,.0f}" if integral else f"{abs(value):,.1f}"
    sign = "-" if value < 0 and text.strip("0.,") else ""
    if column in SIGNED_COLUMNS and value > 0:
        sign = "+"
    if column in MONEY_COLUMNS:
        return f"{sign}${text}"
    return sign + text
