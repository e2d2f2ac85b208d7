"""Locate AST nodes in the query text, for error messages."""

from __future__ import annotations

from sqlglot import exp

from .errors import HogQLError
from .source import SourceText


def node_span(node: exp.Expr) -> tuple[int, int] | None:
    """Return the half-open span of `node` in the rewritten text, or None when sqlglot kept none.

    sqlglot records positions on identifiers and function names only, so a node without its own
    position takes the span of the first and last positioned nodes beneath it.
    """
    starts: list[int] = []
    ends: list[int] = []
    for child in node.walk():
        meta = child._meta
        if meta and "start" in meta and meta.get("end") is not None:
            starts.append(meta["start"])
            ends.append(meta["end"] + 1)

    if not starts:
        return None
    return min(starts), max(ends)


def name_span(node: exp.Expr) -> tuple[int, int] | None:
    """Return the span of the node's own name token (a function's name), else its whole span."""
    meta = node._meta
    if meta and "start" in meta and meta.get("end") is not None:
        return meta["start"], meta["end"] + 1
    return node_span(node)


def error_at(
    source: SourceText, error_class: type[HogQLError], message: str, node: exp.Expr | None
) -> HogQLError:
    """Build an error positioned at `node`, walking up to an ancestor with a known position."""
    span = None
    while node is not None and span is None:
        span = node_span(node)
        node = node.parent

    if span is None:
        return error_class(message)
    return source.error_at_rewritten(error_class, message, span[0], span[1])


def error_at_name(
    source: SourceText, error_class: type[HogQLError], message: str, node: exp.Expr
) -> HogQLError:
    """Build an error positioned at a function's name."""
    span = name_span(node)
    if span is None:
        return error_at(source, error_class, message, node)
    return source.error_at_rewritten(error_class, message, span[0], span[1])
