"""Errors the compiler raises: each names the problem, quotes the offending text and gives its position."""

from __future__ import annotations


class HogQLError(Exception):
    """A query the caller can fix: the message is safe to show word for word.

    `line` and `column` are 1-based positions in the text the caller passed to `compile_query`.
    Both are None when the problem has no single place, as for an empty query.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        fragment: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.fragment = fragment
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.line is None or self.column is None:
            return self.message

        return f"{self.message} Line {self.line}, Col {self.column}."


class HogQLSyntaxError(HogQLError):
    """The text is not valid HogQL: it does not tokenize or parse."""


class NotAllowedError(HogQLError):
    """Valid SQL that pulseboard does not run: other statements, clauses, tables or functions."""


class UnknownFunctionError(NotAllowedError):
    """A function that is not on the allowlist."""


class UnknownTableError(NotAllowedError):
    """A table that is neither `events` nor one of the query's own CTEs."""


class UnknownColumnError(HogQLError):
    """A qualified name such as `e.evnt` where `e` is an events table without that column."""


class PlaceholderError(HogQLError):
    """A `{placeholder}` without a value, with an invalid name, or a brace that is not a placeholder."""


class PropertyAccessError(HogQLError):
    """A `properties.x` access that cannot be read, such as an array index of 0."""


class UnsupportedError(HogQLError):
    """ClickHouse syntax that HogQL in pulseboard does not support, such as `* EXCEPT (...)`."""
