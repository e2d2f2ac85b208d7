"""Step 2, continued: expand `{filters}` into the caller's date range, as PostHog's HogQL does.

`{filters}` becomes `timestamp >= <date_from> AND timestamp < <date_to>` on the events table of
the SELECT it appears in, leaving out each bound that is not set, and `true` when neither is.
A date is an ISO 8601 date or time, read in the project's timezone unless it carries an offset,
or a relative date such as `-7d`: 7 days before now. The dates enter the query as string
literals, so later steps bind them as parameters and parse them as times (timestamps.py).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlglot import exp

from .context import QueryFilters
from .errors import PlaceholderError
from .nodes import call
from .parse import ParsedQuery
from .scopes import source_name
from .tables import is_events_table

# The marker that pre-lexing writes for `{filters}`.
FILTERS_MARKER = "pb_filters"

_RELATIVE_DATE = re.compile(r"-(\d{1,4})([hdwmy])\Z")
_RELATIVE_UNITS = {"h": "HOUR", "d": "DAY", "w": "WEEK", "m": "MONTH", "y": "YEAR"}
_DATE_HELP = (
    "write an ISO 8601 date or time such as '2024-10-01' or '2024-10-01T12:00:00Z', or a relative "
    "date such as '-7d' (units h, d, w, m, y)."
)


def expand_filters(parsed: ParsedQuery, filters: QueryFilters | None) -> None:
    """Replace every `{filters}` marker with the date range condition of `filters`.

    Raise PlaceholderError for a date that is neither ISO 8601 nor relative, also when the query
    does not use `{filters}`, so a mistyped date is never ignored.
    """
    if filters is not None:
        _check_filter_dates(filters)
    if FILTERS_MARKER not in parsed.source.rewritten:
        return  # no `{filters}` in the query, so no walk of the tree is needed

    for marker in list(parsed.tree.find_all(exp.Placeholder)):
        if marker.name != FILTERS_MARKER:
            continue

        select = marker.find_ancestor(exp.Select)
        column = exp.column("timestamp", table=_events_qualifier(select))
        conditions = []
        if filters is not None and filters.date_from:
            conditions.append(exp.GTE(this=column.copy(), expression=_filter_date(filters.date_from)))
        if filters is not None and filters.date_to:
            conditions.append(exp.LT(this=column.copy(), expression=_filter_date(filters.date_to)))

        condition = exp.and_(*conditions, copy=False) if conditions else exp.true()
        marker.replace(exp.paren(condition, copy=False))


def _check_filter_dates(filters: QueryFilters) -> None:
    for name in ("date_from", "date_to"):
        value = getattr(filters, name)
        if value and _relative_interval(value) is None and not _is_iso_date(value):
            raise PlaceholderError(f"Invalid filters {name} {value!r}: {_DATE_HELP}")


def _events_qualifier(select: exp.Select | None) -> str | None:
    """Qualify `timestamp` with the FROM table when it is events, so joins stay unambiguous."""
    if select is None or select.args.get("from_") is None:
        return None

    source = select.args["from_"].this
    if not is_events_table(source) or not select.args.get("joins"):
        return None
    return source_name(source)


def _filter_date(value: str) -> exp.Expr:
    interval = _relative_interval(value)
    if interval is None:
        return exp.Literal.string(value.strip())
    return exp.Sub(this=call("now"), expression=interval)


def _relative_interval(value: str) -> exp.Interval | None:
    match = _RELATIVE_DATE.match(value.strip())
    if match is None:
        return None

    amount, unit = match.groups()
    return exp.Interval(this=exp.Literal.number(int(amount)), unit=exp.var(_RELATIVE_UNITS[unit]))


def _is_iso_date(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return True
