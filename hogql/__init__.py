"""HogQL compiler: checks a query against allowlists, limits it to one project, and prints it as
ClickHouse SQL with bound parameters. Imports nothing else from pulseboard and does no I/O."""

from .compiler import compile_query
from .context import CompiledQuery, CompileContext, PropertyType, QueryFilters
from .errors import (
    HogQLError,
    HogQLSyntaxError,
    NotAllowedError,
    PlaceholderError,
    PropertyAccessError,
    UnknownColumnError,
    UnknownFunctionError,
    UnknownTableError,
    UnsupportedError,
)
from .qualify import restore_table_aliases

__all__ = [
    "CompileContext",
    "CompiledQuery",
    "HogQLError",
    "HogQLSyntaxError",
    "NotAllowedError",
    "PlaceholderError",
    "PropertyAccessError",
    "PropertyType",
    "QueryFilters",
    "UnknownColumnError",
    "UnknownFunctionError",
    "UnknownTableError",
    "UnsupportedError",
    "compile_query",
    "restore_table_aliases",
]
