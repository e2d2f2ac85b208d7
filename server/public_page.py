"""The HTML page of a published result: cell formatting, the health recipe's layout, and rendering.

`render_page` renders a publication's result. It takes the publication, its computed result and
the view options, and optionally a list of `TableSection`s that the page shows below the main
table as drill-down sections. `render_drilldown_page` renders the drill-down of a health
publication: one block per account with its score and status, then its titled tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from pulseboard.recipes import Recipe, RecipeError, get_recipe
from pulseboard.server.store import Publication, utcnow

if TYPE_CHECKING:
    from pulseboard.server.public_drilldown import DrilldownAccount, PublicationDrilldown
    from pulseboard.tools.query import Column, QueryOutput

logger = logging.getLogger(__name__)

Theme = Literal["auto", "light", "dark"]
THEMES: tuple[Theme, ...] = ("auto", "light", "dark")

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "publication.html"

# Output columns of the account_health_score recipe that get their own cell markup; the recipe's
# other columns get the generic cells.
HEALTH_RECIPE_ID = "account_health_score"
HEALTH_COLUMN_KINDS = {
    "status": "status",
    "health_score": "score",
    "trend": "trend",
    "mrr": "money",
    "score_change_7d": "trend",
    "score_change_30d": "trend",
    "trend_change_pct": "percent",
}
# A column with this name holding an array of numbers (daily scores, oldest first) is drawn as a
# sparkline in any publication.
SPARKLINE_COLUMN = "score_history"
# The health page shows its columns in groups. First come those a customer success lead reads
# first, then how the account is moving, then why it scored so: the second risk and which signals
# had data. The raw counts of the window and the score components follow. Columns that no group
# names come last. JSON and CSV keep the recipe's own column order.
HEALTH_COLUMN_GROUPS = (
    ("account", "health_score", "status", "trend", SPARKLINE_COLUMN, "top_risk_signal", "mrr", "plan"),
    ("score_change_7d", "score_change_30d", "trend_change_pct", "last_seen_days_ago"),
    ("second_risk_signal", "coverage"),
    ("events_30d", "active_users_30d", "errors_30d", "tickets_30d", "nps"),
    ("usage_score", "trend_score", "friction_score", "revenue_score"),
)
# The card area of each column on narrow screens. Columns not listed here are "detail" columns:
# hidden in the cards until the reader asks for all columns, and set in muted text in the wide table.
HEALTH_COLUMN_AREAS = {
    "account": "account",
    "health_score": "score",
    "status": "status",
    "top_risk_signal": "risk",
    "trend": "fact",
    SPARKLINE_COLUMN: "fact",
    "mrr": "fact",
    "plan": "fact",
    "score_change_7d": "fact",
    "last_seen_days_ago": "fact",
}
# The recipe's weight parameters and the component each weighs, in the order the page names them.
HEALTH_WEIGHTS = (
    ("w_usage", "usage"),
    ("w_trend", "usage trend"),
    ("w_friction", "friction (errors and support tickets)"),
    ("w_revenue", "revenue"),
)
# The recipe's band parameters: each is the lowest score of its status.
HEALTH_BANDS = (("band_warn", "warn"), ("band_ok", "ok"), ("band_healthy", "healthy"), ("band_champion", "champion"))
# Status labels get a colour class from this table; any other status gets the neutral class.
STATUS_CLASSES = {
    "critical": "critical",
    "warn": "warn",
    "warning": "warn",
    "ok": "ok",
    "healthy": "healthy",
    "champion": "champion",
}
# Sorting a status column ascending puts the accounts at most risk first; unknown statuses go last.
STATUS_ORDER = ("critical", "warn", "ok", "healthy", "champion", "other")
NUMERIC_KINDS = frozenset({"number", "score", "trend", "money", "percent"})
# Kinds whose cells carry a number in data-sort, so the sort script compares them as numbers.
NUMBER_SORTED_KINDS = NUMERIC_KINDS | {"status", "datetime", "sparkline"}

# The sparkline's drawing box. The line keeps one unit of margin at the top and bottom.
SPARKLINE_WIDTH = 100
SPARKLINE_HEIGHT = 24


@dataclasses.dataclass(frozen=True)
class PageOptions:
    """Display options of a page: `theme` picks the colours, and `embed` the compact form for iframes."""

    theme: Theme = "auto"
    embed: bool = False


@dataclasses.dataclass(frozen=True)
class TableSection:
    """A titled table that the page shows below the main table, such as one account's drill-down."""

    title: str
    columns: list[Column]
    rows: list[list[Any]]


def render_page(
    request: Request,
    publication: Publication,
    output: QueryOutput,
    *,
    computed_at: dt.datetime,
    stale_after: dt.datetime,
    stale: bool = False,
    options: PageOptions = PageOptions(),
    drilldown: Sequence[TableSection] = (),
    drilldown_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render the page of a result. The response's Content-Security-Policy allows only its inline assets.

    `drilldown_url`, when given, is the link that the page shows to the drill-down's own page.
    """
    context = page_context(publication, output, computed_at=computed_at, stale_after=stale_after)
    context.update(
        view="result",
        drilldown=[section_view(section) for section in drilldown],
        drilldown_url=drilldown_url,
    )
    return template_response(request, context, stale, options, headers)


def render_drilldown_page(
    request: Request,
    publication: Publication,
    drilldown: PublicationDrilldown,
    *,
    computed_at: dt.datetime,
    stale_after: dt.datetime,
    stale: bool = False,
    options: PageOptions = PageOptions(),
    table_url: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render the drill-down page of a health publication; `table_url` links back to its table."""
    accounts = [account_view(number, account) for number, account in enumerate(drilldown.accounts, start=1)]
    names = join_words([account.account for account in drilldown.accounts])
    summary = f"The {count_text(len(accounts), 'lowest-scoring account')}" + (f": {names}." if names else ".")
    context = {
        "view": "drilldown",
        "publication": publication,
        "summary": summary,
        "accounts": accounts,
        "as_of": iso_utc(drilldown.as_of),
        "as_of_text": display_time(drilldown.as_of),
        "table_url": table_url,
        "row_count_text": count_text(len(accounts), "account"),
        "computed_at": iso_utc(computed_at),
        "computed_at_text": display_time(computed_at),
        "stale_after": iso_utc(stale_after),
        "stale_after_text": display_time(stale_after),
    }
    return template_response(request, context, stale, options, headers)


def template_response(
    request: Request,
    context: dict[str, Any],
    stale: bool,
    options: PageOptions,
    headers: Mapping[str, str] | None,
) -> Response:
    nonce = secrets.token_urlsafe(16)
    context.update(nonce=nonce, stale=stale, theme=options.theme, embed=options.embed)
    response_headers = {**(headers or {}), "Content-Security-Policy": page_csp(nonce)}
    return page_templates().TemplateResponse(request, TEMPLATE_NAME, context, headers=response_headers)


def render_error_page(
    request: Request, status: int, title: str, message: str, error_id: str | None, headers: Mapping[str, str]
) -> Response:
    nonce = secrets.token_urlsafe(16)
    context = {"error": {"title": title, "message": message, "error_id": error_id}, "nonce": nonce, "theme": "auto"}
    response_headers = {**headers, "Content-Security-Policy": page_csp(nonce)}
    return page_templates().TemplateResponse(
        request, TEMPLATE_NAME, context, status_code=status, headers=response_headers
    )


def page_csp(nonce: str) -> str:
    """Allow only the page's own inline style and script, which carry this response's nonce.

    There is no frame-ancestors directive, so other sites may embed a page in a frame. The pages
    are read-only, so framing them enables no clickjacking.
    """
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'"
    )


@functools.cache
def page_templates() -> Jinja2Templates:
    # Jinja2Templates turns on autoescaping for .html templates.
    return Jinja2Templates(directory=TEMPLATES_DIR)


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# The page's view of a result


@dataclasses.dataclass(frozen=True)
class ColumnView:
    """One column as the page shows it; `kind` is the kind of its cells (see Cell).

    `title` is the header's tooltip: the recipe's description of the column, else its ClickHouse
    type. `area` places the cells in an account's card on narrow screens (see
    HEALTH_COLUMN_AREAS), empty for a plain table. `group_start` marks the first column of a
    group after the first, which gets a dividing line.
    """

    name: str
    type: str
    kind: str
    title: str
    area: str = ""
    group_start: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def sort_type(self) -> str:
        return "number" if self.kind in NUMBER_SORTED_KINDS else "text"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One table cell as the page shows it.

    `kind` selects the markup: text, number, null, status, score, trend, money, datetime or
    sparkline. `sort` is the number the sort script compares, empty for text and null cells.
    `detail` is the colour class of a status, the bar width (0-100) of a score, the direction of a
    trend, the ISO 8601 value of a datetime, or the polyline points of a sparkline.
    """

    text: str
    kind: str
    sort: str = ""
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class SectionView:
    """A drill-down section as the page shows it."""

    title: str
    columns: list[ColumnView]
    rows: list[list[Cell]]
    row_count_text: str


@dataclasses.dataclass(frozen=True)
class AccountView:
    """One account's block of the drill-down page; `anchor` is its fragment id, from its position."""

    anchor: str
    account: str
    score: Cell
    status: Cell
    top_risk_signal: str
    last_seen: Cell
    sections: list[SectionView]


def page_context(
    publication: Publication, output: QueryOutput, *, computed_at: dt.datetime, stale_after: dt.datetime
) -> dict[str, Any]:
    recipe = publication_recipe(publication)
    health = publication.recipe_id == HEALTH_RECIPE_ID
    order = display_order([column.name for column in output.columns]) if health else range(len(output.columns))
    columns = column_views(publication, output.columns, recipe, order)
    rows = [[make_cell(row[index], column.kind) for index, column in zip(order, columns)] for row in output.rows]
    return {
        "publication": publication,
        "summary": page_summary(publication, output),
        "formula": health_formula(publication, recipe) if health else "",
        "layout": "cards" if health else "table",
        "detail_count": sum(1 for column in columns if column.area == "detail"),
        "columns": columns,
        "rows": rows,
        "row_count": output.row_count,
        "row_count_text": count_text(output.row_count, "row"),
        "truncated": output.truncated,
        "computed_at": iso_utc(computed_at),
        "computed_at_text": display_time(computed_at),
        "stale_after": iso_utc(stale_after),
        "stale_after_text": display_time(stale_after),
    }


def section_view(section: TableSection) -> SectionView:
    kinds = [generic_kind(column.name, column.type) for column in section.columns]
    columns = [
        ColumnView(name=column.name, type=column.type, kind=kind, title=column.type)
        for column, kind in zip(section.columns, kinds)
    ]
    rows = [[make_cell(value, kind) for value, kind in zip(row, kinds)] for row in section.rows]
    return SectionView(
        title=section.title, columns=columns, rows=rows, row_count_text=count_text(len(section.rows), "row")
    )


def account_view(number: int, account: DrilldownAccount) -> AccountView:
    return AccountView(
        anchor=f"account-{number}",
        account=account.account,
        score=make_cell(account.health_score, "score"),
        status=make_cell(account.status, "status"),
        top_risk_signal=account.top_risk_signal or "",
        last_seen=make_cell(account.last_seen, "datetime"),
        sections=[section_view(TableSection(s.title, s.columns, s.rows)) for s in account.sections],
    )


def count_text(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def page_summary(publication: Publication, output: QueryOutput) -> str:
    """Write the one line that a link preview (Open Graph, Twitter card) shows under the title.

    For the health recipe it counts the critical accounts. Otherwise it is the description, or
    the row count when there is none.
    """
    names = [column.name for column in output.columns]
    if publication.recipe_id == HEALTH_RECIPE_ID and "status" in names:
        index = names.index("status")
        critical = sum(1 for row in output.rows if str(row[index]).lower() == "critical")
        verb = "is" if critical == 1 else "are"
        return f"{critical} of {count_text(output.row_count, 'account')} {verb} critical."
    if publication.description:
        return publication.description
    return count_text(output.row_count, "row") + "."


def publication_recipe(publication: Publication) -> Recipe | None:
    """Return the publication's recipe, or None for HogQL and for a recipe that no longer exists.

    Computing a publication whose recipe is gone already fails and logs the error, so a missing
    recipe is not logged again here.
    """
    if not publication.recipe_id:
        return None

    try:
        return get_recipe(publication.recipe_id)
    except RecipeError:
        return None


def display_order(names: list[str]) -> list[int]:
    """Return the indexes of the health recipe's columns in HEALTH_COLUMN_GROUPS order."""
    ranks = {name: rank for rank, name in enumerate(name for group in HEALTH_COLUMN_GROUPS for name in group)}
    unranked = len(ranks)
    return sorted(range(len(names)), key=lambda index: (ranks.get(names[index], unranked), index))


def column_views(
    publication: Publication, columns: list[Column], recipe: Recipe | None, order: Sequence[int]
) -> list[ColumnView]:
    """Describe the columns in display order. Columns of the health recipe also get areas and groups."""
    descriptions = {column.name: column.description for column in recipe.header.columns} if recipe else {}
    health = publication.recipe_id == HEALTH_RECIPE_ID
    groups = {name: number for number, group in enumerate(HEALTH_COLUMN_GROUPS) for name in group}
    views = []
    previous_group = 0
    for index in order:
        column = columns[index]
        group = groups.get(column.name, len(HEALTH_COLUMN_GROUPS))
        views.append(
            ColumnView(
                name=column.name,
                type=column.type,
                kind=column_kind(publication, column.name, column.type),
                title=descriptions.get(column.name, column.type),
                area=HEALTH_COLUMN_AREAS.get(column.name, "detail") if health else "",
                group_start=health and group != previous_group,
            )
        )
        previous_group = group
    return views


def health_formula(publication: Publication, recipe: Recipe | None) -> str:
    """Describe the weights and bands that a health publication scores with.

    Values come from the publication's parameters, else the recipe's defaults. The weights are
    shown as shares of their sum, as the recipe scales them to sum to 100. Returns an empty string
    when the parameters no longer validate against the recipe.
    """
    if recipe is None:
        return ""

    try:
        values = recipe.validate(publication.params, now=utcnow())
        weights = [(label, float(values[name])) for name, label in HEALTH_WEIGHTS]
        bands = [(label, float(values[name])) for name, label in HEALTH_BANDS]
    except (RecipeError, KeyError) as error:
        logger.warning(
            "describing the weights of publication %s (recipe %s) failed, so its page omits them: %s",
            publication.publication_id,
            publication.recipe_id,
            error,
        )
        return ""

    total = sum(weight for _, weight in weights)
    if total <= 0:
        return ""

    counted = [f"{label} {format_percent(100 * weight / total)}" for label, weight in weights if weight > 0]
    ignored = [label for label, weight in weights if weight <= 0]
    sentences = [f"The health score (0 to 100) weighs {join_words(counted)}."]
    if ignored:
        verb = "is" if len(ignored) == 1 else "are"
        sentences.append(f"{join_words(ignored).capitalize()} {verb} not counted (weight 0).")
    sentences.append("A cancelled account scores 0.")
    lowest_band = bands[0][1]
    band_starts = ", ".join(f"{label} from {format_number(start)}" for label, start in bands)
    sentences.append(f"Status: critical below {format_number(lowest_band)}, {band_starts}.")
    return " ".join(sentences)


def join_words(words: list[str]) -> str:
    """Join words as English does: 'a', 'a and b', 'a, b and c'."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def format_percent(value: float) -> str:
    return f"{format_number(round(value, 1))}%"


def display_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def inner_type(type_name: str) -> str:
    """Strip Nullable and LowCardinality wrappers off a ClickHouse type."""
    inner = type_name
    while inner.startswith(("Nullable(", "LowCardinality(")) and inner.endswith(")"):
        inner = inner[inner.index("(") + 1 : -1]
    return inner


def is_numeric_type(type_name: str) -> bool:
    """Tell whether a ClickHouse type, inside any Nullable or LowCardinality, is a number."""
    return inner_type(type_name).startswith(("Int", "UInt", "Float", "Decimal"))


def column_kind(publication: Publication, name: str, type_name: str) -> str:
    if publication.recipe_id == HEALTH_RECIPE_ID and name in HEALTH_COLUMN_KINDS:
        return HEALTH_COLUMN_KINDS[name]
    return generic_kind(name, type_name)


def generic_kind(name: str, type_name: str) -> str:
    """Return the cell kind of a column of any query, from its name and ClickHouse type."""
    if name == SPARKLINE_COLUMN:
        return "sparkline"
    if inner_type(type_name).startswith("DateTime"):
        return "datetime"
    return "number" if is_numeric_type(type_name) else "text"


def make_cell(value: Any, kind: str) -> Cell:
    """Format one value for the page according to its column's kind."""
    # An empty score history means that no snapshot exists yet, so it shows as a missing value.
    if value is None or (kind == "sparkline" and value == []):
        return Cell(text="—", kind="null")
    if kind == "status":
        text = str(value)
        status_class = STATUS_CLASSES.get(text.lower(), "other")
        return Cell(text=text, kind="status", sort=str(STATUS_ORDER.index(status_class)), detail=status_class)

    if kind == "datetime" and isinstance(value, str):
        return datetime_cell(value)
    if kind == "sparkline" and is_number_list(value):
        return sparkline_cell(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return Cell(text=plain_text(value), kind="text")

    sort = repr(value)
    if kind == "score":
        width = min(100.0, max(0.0, float(value)))
        return Cell(text=format_number(value), kind="score", sort=sort, detail=f"{width:g}")
    if kind == "trend":
        return trend_cell(value)
    if kind == "percent":
        return percent_cell(value)
    if kind == "money":
        sign = "−" if value < 0 else ""
        return Cell(text=f"{sign}${format_money(abs(value))}", kind="money", sort=sort)
    return Cell(text=format_number(value), kind="number", sort=sort)


def datetime_cell(value: str) -> Cell:
    """Show an ISO 8601 time as `2025-03-01 12:00 UTC`, with seconds only when they are not zero."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return Cell(text=value, kind="text")

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    zone = "UTC" if not offset else moment.isoformat()[-6:]
    return Cell(text=f"{shown} {zone}", kind="datetime", sort=repr(moment.timestamp()), detail=moment.isoformat())


def is_number_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value)
    )


def sparkline_cell(values: list[int | float]) -> Cell:
    """Draw scores (oldest first) as polyline points in a SPARKLINE_WIDTH x SPARKLINE_HEIGHT box.

    Scores from 0 to 100 are drawn on that fixed scale, so that the lines of different accounts
    compare. Any other values are scaled from their minimum to their maximum. The text is the values for
    screen readers, and the sort key is the latest value.
    """
    low, high = (0.0, 100.0) if all(0 <= value <= 100 for value in values) else (min(values), max(values))
    span = (high - low) or 1.0
    step = SPARKLINE_WIDTH / (len(values) - 1) if len(values) > 1 else 0.0
    points = []
    for index, value in enumerate(values):
        x = SPARKLINE_WIDTH if len(values) == 1 else index * step
        y = (SPARKLINE_HEIGHT - 1) - (value - low) / span * (SPARKLINE_HEIGHT - 2)
        points.append(f"{x:.4g},{y:.4g}")
    text = "Score history, oldest first: " + ", ".join(format_number(value) for value in values)
    return Cell(text=text, kind="sparkline", sort=repr(values[-1]), detail=" ".join(points))


def trend_cell(value: int | float) -> Cell:
    sort = repr(value)
    if value > 0:
        return Cell(text=f"+{format_number(value)}", kind="trend", sort=sort, detail="up")
    if value < 0:
        return Cell(text=f"−{format_number(abs(value))}", kind="trend", sort=sort, detail="down")
    return Cell(text="0", kind="trend", sort=sort, detail="flat")


def percent_cell(value: int | float) -> Cell:
    """Show a percentage with its sign, as `+12.5%`, `−40%` or `0%`."""
    sign = ""
    if value > 0:
        sign = "+"
    elif value < 0:
        sign = "−"
    return Cell(text=f"{sign}{format_number(abs(value))}%", kind="number", sort=repr(value))


def plain_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def format_number(value: int | float) -> str:
    """Group thousands; round a fraction to two decimals, or to four significant digits below 1."""
    if isinstance(value, int):
        return f"{value:,}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def format_money(amount: int | float) -> str:
    if isinstance(amount, float) and not amount.is_integer():
        return f"{amount:,.2f}"
    return f"{int(amount):,}"
