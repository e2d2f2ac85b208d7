"""Recognise `properties.x` accesses: dotted names, `['key']` subscripts and array indexes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlglot import exp

PROPERTIES_COLUMN = "properties"
_CHAIN_TYPES = (exp.Column, exp.Dot, exp.Bracket)


@dataclass
class PropertyPath:
    """A read of one value from the JSON `properties` column.

    `keys` contains object keys (str) and 1-based array indexes (int), in order. `qualifier` is
    the table alias in `e.properties.x`, or None.
    """

    node: exp.Expr
    qualifier: str | None
    keys: list[str | int]
    # Subscripts whose key is not a constant, such as properties[concat('a', 'b')].
    dynamic_keys: list[exp.Expr]

    @property
    def type_key(self) -> str:
        """The key used to look up the property's recorded type: object keys joined by '.'."""
        return ".".join(key for key in self.keys if isinstance(key, str))


def iter_property_paths(tree: exp.Expr) -> Iterator[PropertyPath]:
    """Yield every property read in the tree, outermost chain node only, in tree order."""
    yield from property_paths_in(list(tree.walk(bfs=False)))


def property_paths_in(nodes: Iterable[exp.Expr]) -> Iterator[PropertyPath]:
    """Yield the property read that each node spells, skipping nodes that only start a chain."""
    for node in nodes:
        if not isinstance(node, _CHAIN_TYPES) or _continues_chain(node):
            continue

        path = property_path(node)
        if path is not None:
            yield path


def property_path(node: exp.Expr) -> PropertyPath | None:
    """Return the property read that `node` spells, or None when it is not rooted at `properties`."""
    parts = _chain_parts(node)
    if not parts:
        return None

    qualifier: str | None = None
    if _is_name(parts[0], PROPERTIES_COLUMN):
        rest = parts[1:]
    elif len(parts) >= 2 and isinstance(parts[0], str) and _is_name(parts[1], PROPERTIES_COLUMN):
        qualifier = parts[0]
        rest = parts[2:]
    else:
        return None

    if not rest:
        return None

    keys = [part for part in rest if isinstance(part, (str, int))]
    dynamic = [part for part in rest if isinstance(part, exp.Expr)]
    return PropertyPath(node=node, qualifier=qualifier, keys=keys, dynamic_keys=dynamic)


def chain_identifiers(node: exp.Expr) -> list[exp.Identifier]:
    """Return the identifiers that spell a Column/Dot/Bracket chain, outermost part last."""
    if isinstance(node, exp.Column):
        return [part for part in node.parts if isinstance(part, exp.Identifier)]

    if isinstance(node, (exp.Dot, exp.Bracket)):
        identifiers = chain_identifiers(node.this)
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Identifier):
            identifiers.append(node.expression)
        return identifiers

    return []


def _continues_chain(node: exp.Expr) -> bool:
    """Return whether the parent extends this node's chain, as `.b` extends `properties.a`."""
    parent = node.parent
    return isinstance(parent, (exp.Dot, exp.Bracket)) and parent.this is node


def _is_name(part: object, name: str) -> bool:
    return isinstance(part, str) and part == name


def _chain_parts(node: exp.Expr) -> list[str | int | exp.Expr] | None:
    """Flatten a chain into names (str), constant indexes (int) and other subscripts (nodes)."""
    if isinstance(node, exp.Column):
        parts: list[str | int | exp.Expr] = []
        for part in node.parts:
            keys = _column_part_keys(part)
            if keys is None:
                return None
            parts.extend(keys)
        return parts

    if isinstance(node, exp.Dot):
        base = _chain_parts(node.this)
        key = _dot_key(node.expression)
        if base is None or key is None:
            return None
        return [*base, key]

    if isinstance(node, exp.Bracket):
        base = _chain_parts(node.this)
        if base is None or len(node.expressions) != 1:
            return None
        return [*base, _subscript_key(node.expressions[0])]

    return None


def _column_part_keys(part: exp.Expr) -> list[str | int] | None:
    """Read one part of a dotted name. HogQL's `properties.items.1` is the same as items[1];
    sqlglot 30.31 parses the `1` as a number, and `items.1.sku` as one identifier '1.sku'."""
    if isinstance(part, exp.Literal) and part.is_int:
        return [int(part.this)]

    if not isinstance(part, exp.Identifier):
        return None

    if part.quoted or "." not in part.name:
        return [part.name]
    return [int(piece) if piece.isdigit() else piece for piece in part.name.split(".")]


def _dot_key(expression: exp.Expr) -> str | int | None:
    if isinstance(expression, exp.Identifier):
        return expression.name
    if isinstance(expression, exp.Literal) and not expression.is_string and expression.is_int:
        return int(expression.this)  # HogQL's `properties.items.1`, the same as items[1]
    return None


def _subscript_key(expression: exp.Expr) -> str | int | exp.Expr:
    """Return a subscript's constant key, or the expression itself when it is not constant.

    sqlglot stores ClickHouse's 1-based indexes 0-based (`[1]` as 0, `[0]` as -1, `[-1]` as -2)
    and adds the 1 back when printing. So the user's index is the stored one plus 1.
    """
    if isinstance(expression, exp.Literal):
        if expression.is_string:
            return expression.this
        if expression.is_int:
            return int(expression.this) + 1

    is_negative_index = (
        isinstance(expression, exp.Neg)
        and isinstance(expression.this, exp.Literal)
        and expression.this.is_int
    )
    if is_negative_index:
        return -int(expression.this.this) + 1
    return expression
