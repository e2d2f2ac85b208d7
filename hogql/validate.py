"""Step 3: accept only what pulseboard can run safely, as allowlists of syntax, tables and functions.

The checks read the parsed tree and raise on the first problem, positioned at the offending text.
Function names are rewritten to their canonical spelling here (`COUNT` becomes `count`).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.tokens import TokenType

from .errors import HogQLError, NotAllowedError, PropertyAccessError, UnknownFunctionError, UnsupportedError
from .functions import lookup_function, rejection_reason
from .parse import DIALECT, USER_PLACEHOLDER_KEY, ParsedQuery
from .positions import error_at, error_at_name, node_span
from .source import SourceText, quoted
from .qualify import check_property_qualifiers, check_qualified_columns
from .tables import check_names, check_tables
from .tree import TreeNodes

# Every node type a query may contain. Anything else (sqlglot also parses DDL, JSON arrows,
# COLUMNS('regex'), APPLY, table samples, ...) is rejected, so new sqlglot syntax fails closed.
ALLOWED_NODE_TYPES: frozenset[type[exp.Expr]] = frozenset({
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
    exp.TableAlias, exp.From, exp.Join, exp.Table, exp.Where, exp.Group, exp.Having,
    exp.Qualify, exp.Order, exp.Ordered, exp.WithFill, exp.Limit, exp.Offset, exp.LimitOptions,
    exp.Window, exp.WindowSpec, exp.Rollup, exp.Cube, exp.Distinct, exp.Lambda, exp.Alias,
    exp.Column, exp.Identifier, exp.Star, exp.Dot, exp.Bracket, exp.Literal, exp.Boolean,
    exp.Null, exp.Paren, exp.Tuple, exp.Array, exp.Interval, exp.Var, exp.DataType,
    exp.DataTypeParam, exp.Placeholder, exp.Cast, exp.CastToStrType, exp.Extract, exp.Struct,
    exp.Trim, exp.Case, exp.If, exp.Coalesce, exp.Anonymous, exp.AnonymousAggFunc,
    exp.CombinedAggFunc, exp.ParameterizedAgg, exp.CombinedParameterizedAgg, exp.Exists,
    exp.Any, exp.All, exp.In, exp.Between, exp.Like, exp.ILike, exp.Is, exp.Not, exp.And,
    exp.Or, exp.Xor, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Add, exp.Sub,
    exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.IntDiv, exp.DPipe, exp.PropertyEQ, exp.Filter,
    exp.CurrentDate, exp.RegexpLike,
})

# Calls that keep the name the user wrote, checked against the function allowlists. The other
# function-like nodes in ALLOWED_NODE_TYPES come from syntax: CAST, CASE, IF, `??`, `[...]`.
NAMED_FUNCTION_TYPES = (
    exp.Anonymous, exp.AnonymousAggFunc, exp.CombinedAggFunc, exp.ParameterizedAgg,
    exp.CombinedParameterizedAgg,
)

# Arguments each query node may carry; a clause outside these lists is rejected.
SELECT_ARGUMENTS = {
    "with_", "expressions", "distinct", "from_", "joins", "where", "group", "having", "qualify",
    "windows", "order", "limit", "offset",
}
SET_OPERATION_ARGUMENTS = {"with_", "this", "expression", "distinct", "order", "limit", "offset"}
SUBQUERY_ARGUMENTS = {"this", "alias", "order", "limit", "offset"}
JOIN_ARGUMENTS = {"this", "on", "using", "side", "kind", "expressions"}
JOIN_KINDS = {"", "INNER", "OUTER", "CROSS", "ANY", "ALL", "ASOF", "SEMI", "ANTI", "ARRAY"}

# Friendly names for rejected syntax; others are named by their sqlglot node type.
SYNTAX_NAMES = {
    "settings": "SETTINGS",
    "format": "FORMAT",
    "into": "SELECT ... INTO",
    "prewhere": "PREWHERE",
    "PreWhere": "PREWHERE",
    "sample": "SAMPLE",
    "JSONExtract": "The '->' operator",
    "NestedJSONSelect": "The '.^' operator",
    "JSONCast": "Typed JSON access ('.:Type' or '[]')",
    "Apply": "APPLY",
    "Columns": "COLUMNS(...)",
    "Final": "FINAL",
    "TableSample": "SAMPLE",
    "Fetch": "FETCH (use LIMIT)",
    "Collate": "COLLATE",
    "NullSafeEQ": "The '<=>' operator",
    "HexString": "Hexadecimal literals",
    "BitString": "Binary literals",
}
NOT_ALLOWED_CLAUSES = {
    "settings": "SETTINGS is not allowed; pulseboard sets query limits itself.",
    "format": "FORMAT is not allowed; pulseboard chooses the output format.",
    "into": "SELECT ... INTO is not allowed; results are returned to the caller.",
}
_CLAUSE_TOKENS = {"settings": TokenType.SETTINGS, "format": TokenType.FORMAT, "into": TokenType.INTO}



def validate(parsed: ParsedQuery) -> None:
    """Raise a HogQLError subclass for anything outside the allowlists."""
    tree, source = parsed.tree, parsed.source
    # No check adds, removes or moves a node, so one walk serves them all.
    nodes = TreeNodes(tree)

    _check_node_types(parsed, nodes)
    _check_query_arguments(parsed, nodes)
    check_tables(tree, source, nodes)
    _check_functions(nodes, source)
    _check_nested_aggregates(nodes, source)
    check_names(tree, source, nodes)
    check_qualified_columns(tree, source, nodes)
    check_property_qualifiers(tree, source, nodes)
    _check_property_paths(nodes, source)
    _check_stars(parsed, nodes)
    _check_types(nodes, source)


def _check_node_types(parsed: ParsedQuery, nodes: TreeNodes) -> None:
    for node in nodes.breadth_first:
        if isinstance(node, exp.Placeholder) and not node.meta.get(USER_PLACEHOLDER_KEY):
            raise error_at(
                parsed.source,
                UnsupportedError,
                "Placeholders are written {name}; '?' and ':name' are not supported.",
                node,
            )

        if type(node) in ALLOWED_NODE_TYPES:
            continue

        if isinstance(node, exp.Into):
            _raise_clause(parsed, "into", node)

        name = SYNTAX_NAMES.get(type(node).__name__) or _describe(node, parsed.source)
        raise error_at(parsed.source, UnsupportedError, f"{name} is not supported.", node)


def _describe(node: exp.Expr, source: SourceText) -> str:
    """Name unknown syntax by the text the user wrote, never by sqlglot's class name."""
    span = node_span(node)
    if span is None:
        text = node.sql(dialect=DIALECT)
    else:
        start, end = source.original_span(*span)
        text = source.original[start:end]
    if len(text) > 40:
        text = text[:37] + "..."
    return f"The syntax {quoted(text)}"


def _check_query_arguments(parsed: ParsedQuery, nodes: TreeNodes) -> None:
    for node in nodes.breadth_first:
        if isinstance(node, exp.Select):
            allowed = SELECT_ARGUMENTS
        elif isinstance(node, exp.SetOperation):
            allowed = SET_OPERATION_ARGUMENTS
        elif isinstance(node, exp.Subquery):
            allowed = SUBQUERY_ARGUMENTS
        elif isinstance(node, exp.Join):
            _check_join(node, parsed)
            continue
        else:
            continue

        for argument, value in node.args.items():
            if argument in allowed or value in (None, False, [], ""):
                continue
            if argument in NOT_ALLOWED_CLAUSES:
                _raise_clause(parsed, argument, value if isinstance(value, exp.Expr) else node)
            name = SYNTAX_NAMES.get(argument, argument.upper())
            raise error_at(parsed.source, UnsupportedError, f"{name} is not supported.", node)

        if isinstance(node, exp.Subquery) and not isinstance(node.this, (exp.Select, exp.SetOperation)):
            raise error_at(
                parsed.source,
                UnsupportedError,
                "Parenthesised joins are not supported; write the joins without parentheses.",
                node,
            )


def _raise_clause(parsed: ParsedQuery, clause: str, node: exp.Expr) -> None:
    """Raise for SETTINGS, FORMAT or INTO, positioned at the keyword when it can be found."""
    message = NOT_ALLOWED_CLAUSES[clause]
    token_type = _CLAUSE_TOKENS[clause]
    for token in parsed.tokens:
        if token.token_type == token_type:
            raise parsed.source.error_at_rewritten(NotAllowedError, message, token.start, token.end + 1)
    raise error_at(parsed.source, NotAllowedError, message, node)


def _check_join(join: exp.Join, parsed: ParsedQuery) -> None:
    word = join.args.get("global_") or join.args.get("method")
    if word:
        word = str(word).upper()
        message = f"{word} JOIN is not supported."
        raise _error_at_keyword(parsed, UnsupportedError, message, (word,), join)

    kind = (join.kind or "").upper()
    if kind not in JOIN_KINDS:
        raise _error_at_keyword(parsed, UnsupportedError, f"{kind} JOIN is not supported.", (kind,), join)

    for argument, value in join.args.items():
        if argument not in JOIN_ARGUMENTS and value not in (None, False, [], ""):
            message = f"{argument.upper()} in a join is not supported."
            raise error_at(parsed.source, UnsupportedError, message, join)


def _error_at_keyword(
    parsed: ParsedQuery,
    error_class: type[HogQLError],
    message: str,
    words: tuple[str, ...],
    fallback: exp.Expr,
    after: TokenType | None = None,
) -> HogQLError:
    """Build an error at the first keyword in `words` (right after an `after` token, if given),
    because sqlglot keeps no position for keywords."""
    for previous, token in zip([None, *parsed.tokens], parsed.tokens):
        if token.text.upper() not in words:
            continue
        if after is not None and (previous is None or previous.token_type != after):
            continue
        return parsed.source.error_at_rewritten(error_class, message, token.start, token.end + 1)
    return error_at(parsed.source, error_class, message, fallback)


def _check_functions(nodes: TreeNodes, source: SourceText) -> None:
    for node in nodes.find_all(*NAMED_FUNCTION_TYPES):
        name = node.name
        function = lookup_function(name)
        if function is None:
            reason = rejection_reason(name)
            message = f"Function '{name}' is not allowed." + (f" {reason}" if reason else "")
            raise error_at_name(source, UnknownFunctionError, message, node)

        if function.canonical != name:
            node.set("this", function.canonical)


def _check_nested_aggregates(nodes: TreeNodes, source: SourceText) -> None:
    """Reject `sum(count())`: ClickHouse fails it with ILLEGAL_AGGREGATION after reading the data.

    An aggregate used as a window function, as in `sum(count()) OVER ()`, may contain one.
    """
    for node in nodes.find_all(*NAMED_FUNCTION_TYPES):
        if not _is_aggregate_call(node):
            continue

        outer = _enclosing_aggregate(node)
        if outer is None:
            continue

        message = (
            f"Aggregate function '{node.name}' cannot be used inside aggregate function '{outer.name}'. "
            f"Aggregate in a subquery first, as in SELECT {outer.name}(n) FROM (SELECT {node.name}(...) AS n "
            "FROM events GROUP BY ...)."
        )
        raise error_at_name(source, NotAllowedError, message, node)


def _is_aggregate_call(node: exp.Expr) -> bool:
    function = lookup_function(node.name)
    return function is not None and function.is_aggregate


def _enclosing_aggregate(node: exp.Expr) -> exp.Expr | None:
    """Return the aggregate call whose arguments contain `node`, within the same SELECT."""
    ancestor = node.parent
    while ancestor is not None and not isinstance(ancestor, (exp.Select, exp.Subquery)):
        if isinstance(ancestor, exp.Window):
            return None
        if isinstance(ancestor, NAMED_FUNCTION_TYPES) and _is_aggregate_call(ancestor):
            if not isinstance(ancestor.parent, exp.Window):
                return ancestor
        ancestor = ancestor.parent
    return None


def _check_property_paths(nodes: TreeNodes, source: SourceText) -> None:
    for path in nodes.property_paths():
        if path.dynamic_keys:
            raise error_at(
                source,
                PropertyAccessError,
                "Property keys must be constants, such as properties['plan'] or properties.items[1].",
                path.dynamic_keys[0],
            )

        if 0 in path.keys:
            raise error_at(
                source,
                PropertyAccessError,
                "Array indexes start at 1, not 0: write properties.items[1] for the first item.",
                path.node,
            )

        if "" in path.keys:
            raise error_at(source, PropertyAccessError, "Property keys cannot be empty.", path.node)


def _check_stars(parsed: ParsedQuery, nodes: TreeNodes) -> None:
    for star in nodes.find_all(exp.Star):
        modifiers = [name for name in ("except_", "replace", "rename", "ilike") if star.args.get(name)]
        if modifiers:
            modifier = modifiers[0].rstrip("_").upper()
            message = f"* {modifier} is not supported; list the columns instead."
            raise _error_at_keyword(
                parsed, UnsupportedError, message, (modifier,), star.parent, after=TokenType.STAR
            )


def _check_types(nodes: TreeNodes, source: SourceText) -> None:
    """Reject `Decimal` without precision and scale: ClickHouse reads it as Decimal(10, 0), so
    `x::numeric`, written as in PostgreSQL, would silently drop every fraction."""
    for data_type in nodes.find_all(exp.DataType):
        if data_type.this == exp.DType.DECIMAL and not data_type.expressions:
            raise error_at(
                source,
                UnsupportedError,
                "Decimal needs a precision and scale, such as Decimal(18, 4); or cast to Float64.",
                data_type.parent,
            )
