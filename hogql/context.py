"""Inputs and outputs of `compile_query`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

PropertyType = Literal["String", "Numeric", "Boolean", "DateTime"]

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class QueryFilters:
    """The date range that `{filters}` expands to: `date_from` inclusive, `date_to` exclusive.

    Each is an ISO 8601 date or time (read in the project's timezone unless it carries an
    offset) or a relative date such as `-7d`; None leaves that side open.
    """

    date_from: str | None = None
    date_to: str | None = None


@dataclass(frozen=True)
class CompileContext:
    """The caller's project, as the compiler needs it.

    `property_types` maps a property path (`"account_id"`, `"$browser"`, nested `"a.b"`) to its
    recorded type; a path that is missing reads as String. `placeholders` maps a name to
    `(value, ClickHouse type)`, for example `("acme", "String")` or `(30, "Int64")`, and fills
    both `{name}` and `{variables.name}`. `filters` fills `{filters}`; without it `{filters}`
    reads as `true`.

    `stored_types` maps a property path to every ClickHouse type the events table stores at it
    (`{"account_id": frozenset({"String"})}`), or a superset of them. A path stored with exactly
    one plain type is read from its typed subcolumn, such as `properties.account_id.:String`,
    which reads faster than a conversion of the dynamic value and gives the same result.
    """

    project_id: str
    property_types: Mapping[str, PropertyType] = field(default_factory=lambda: _EMPTY)
    placeholders: Mapping[str, tuple[object, str]] = field(default_factory=lambda: _EMPTY)
    timezone: str = "UTC"
    default_limit: int = 100
    max_limit: int = 10_000
    filters: QueryFilters | None = None
    stored_types: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class CompiledQuery:
    """ClickHouse SQL with its bound parameters.

    `sql` refers to every value as a server-side parameter `{name:Type}`, and `parameters`
    contains the values, ready for `client.query(sql, parameters=parameters)` in clickhouse-connect.
    When `row_cap` is not None, the query's top-level LIMIT is `row_cap + 1`: the executor returns
    at most `row_cap` rows and reports the result as truncated when it received more.
    `hogql` is the normalised query text with the applied LIMIT, for echoing back to the caller.
    `table_aliases` maps the alias that `sql` gives each events table (`pb_t0`, ...) to the table's
    name in the HogQL: its alias, such as `e`, or `events`. `restore_table_aliases` uses it to
    rewrite ClickHouse error messages.
    """

    sql: str
    parameters: dict[str, object]
    row_cap: int | None
    hogql: str
    table_aliases: dict[str, str] = field(default_factory=dict)
