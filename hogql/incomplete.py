"""Find clauses and expressions that end too early, such as a trailing WHERE, AND or comma.

sqlglot 30.31 accepts some of these silently (`GROUP BY` with nothing after it, `JOIN b` without
ON as a cross join, `a,, b` without the empty item, `INTERVAL 7` without a unit) and reports
the others with its internal argument names. So the compiler checks the tokens before parsing
and the joins and intervals after it, and names the keyword that is missing its operand.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from .dialect import KEYWORD_TOKEN_KEY, LAST_TOKEN_KEY
from .errors import HogQLError, HogQLSyntaxError
from .operands import (
    BETWEEN_AND,
    BINARY_OPERATORS,
    CLAUSE_KEYWORDS,
    NEEDS_OPERAND,
    NEGATABLE,
    OPERAND_EXPECTED,
    Operand,
    ends_operand,
    incomplete_error,
    is_call,
    is_modifier,
    is_name,
    keyword_text,
    operand_needed,
)
from .source import SourceText, quoted
from .tree import TreeNodes

# Tokens after which a comma starts a list with an empty first item.
_LIST_STARTS = frozenset({
    TokenType.SELECT, TokenType.DISTINCT, TokenType.GROUP_BY, TokenType.ORDER_BY,
    TokenType.PARTITION_BY, TokenType.USING, TokenType.L_PAREN, TokenType.L_BRACKET,
})
_LIST_NAMES = {
    TokenType.SELECT: "SELECT list",
    TokenType.GROUP_BY: "GROUP BY list",
    TokenType.ORDER_BY: "ORDER BY list",
    TokenType.PARTITION_BY: "PARTITION BY list",
    TokenType.USING: "USING list",
}
# Clause keywords that open the list a comma belongs to, tracked per bracket depth.
_LIST_CLAUSES = frozenset({
    TokenType.SELECT, TokenType.FROM, TokenType.WHERE, TokenType.PREWHERE, TokenType.GROUP_BY,
    TokenType.HAVING, TokenType.ORDER_BY, TokenType.PARTITION_BY, TokenType.LIMIT,
    TokenType.JOIN, TokenType.ON, TokenType.USING, TokenType.WINDOW, TokenType.QUALIFY,
})
_JOIN_KINDS_WITHOUT_CONDITION = {"CROSS", "ARRAY", "PASTE"}
# Token types the loop of check_incomplete_tokens tests for every token. Reading an Enum member
# is an attribute lookup, so the loop reads these module constants instead.
_OPENING_BRACKETS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET})
_CLOSING_BRACKETS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET})
_LEFT_OPERAND_TOKENS = frozenset({TokenType.STRING, *BINARY_OPERATORS})
_COMMA = TokenType.COMMA
_VAR = TokenType.VAR

# Units ClickHouse reads after INTERVAL, from its parseIntervalKind; checked on chDB 4.4, which
# also rejects other short forms such as MIN, SEC and Y.
INTERVAL_UNITS = frozenset({
    *(
        form
        for unit in ("NANOSECOND", "MICROSECOND", "MILLISECOND", "SECOND", "MINUTE", "HOUR",
                     "DAY", "WEEK", "MONTH", "QUARTER", "YEAR")
        for form in (unit, unit + "S", "SQL_TSI_" + unit)
    ),
    "NS", "MS", "SS", "S", "MI", "N", "HH", "H", "DD", "D", "WK", "WW", "MM", "M", "QQ", "Q", "YYYY", "YY",
})
UNIT_ADVICE = "write INTERVAL 7 DAY, with one of the units SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR"


def check_incomplete_tokens(tokens: list[Token], source: SourceText) -> None:
    """Raise HogQLSyntaxError at the first keyword, operator or comma without what must follow it.

    The brackets must already be balanced.
    """
    clauses: list[TokenType | None] = [None]
    open_betweens = 0

    for index, token in enumerate(tokens):
        kind = token.token_type
        if kind in _OPENING_BRACKETS:
            clauses.append(None)
        elif kind in _CLOSING_BRACKETS and len(clauses) > 1:
            clauses.pop()
        elif kind in _LIST_CLAUSES and not is_name(tokens, index):
            clauses[-1] = kind

        if kind is _COMMA:
            _check_comma(tokens, index, clauses[-1], source)
            continue

        # Most tokens are names and values that none of the checks below applies to, so the
        # calls are skipped for them.
        if kind in _LEFT_OPERAND_TOKENS:
            _check_left_operand(tokens, index, source)
        if kind is _VAR:
            _check_missing_by(tokens, index, source)
        elif kind not in NEEDS_OPERAND:
            continue

        operand = operand_needed(tokens, index, between_open=open_betweens > 0)
        if operand is None:
            continue

        if kind == TokenType.BETWEEN:
            open_betweens += 1
        elif operand is BETWEEN_AND:
            open_betweens -= 1

        _check_operand(tokens, index, operand, source)


def check_incomplete_tree(tree: exp.Expr, source: SourceText, nodes: TreeNodes | None = None) -> None:
    """Raise HogQLSyntaxError for a join without a condition or an interval without a valid unit.

    `nodes`, when given, must list the nodes of `tree` as it is now.
    """
    for node in (nodes or TreeNodes(tree)).breadth_first:
        if isinstance(node, exp.Join):
            _check_join_condition(node, source)
        elif isinstance(node, exp.Interval):
            _check_interval_unit(node, source)


def _check_operand(tokens: list[Token], index: int, operand: Operand, source: SourceText) -> None:
    token = tokens[index]
    following = index + 1
    if following < len(tokens) and is_modifier(token, tokens[following]):
        following += 1

    if token.token_type == TokenType.DOT and following < len(tokens):
        # `e.from` is a column named "from"; `properties. FROM events` lost its name.
        gap = tokens[following].start > token.end + 1
        if gap and tokens[following].token_type in CLAUSE_KEYWORDS:
            raise incomplete_error(tokens, index, operand, source)

    if ends_operand(tokens, following, punctuation_only=operand.punctuation_only):
        raise incomplete_error(tokens, index, operand, source)

    # sqlglot reads `ORDER BY DESC` as ordering by a column named "desc", and `THEN END` as a
    # value named "end" followed by a CASE without END.
    next_type = tokens[following].token_type if following < len(tokens) else None
    if token.token_type == TokenType.ORDER_BY and next_type in (TokenType.DESC, TokenType.ASC):
        raise incomplete_error(tokens, index, operand, source)
    if token.token_type in (TokenType.WHEN, TokenType.THEN, TokenType.ELSE) and next_type == TokenType.END:
        raise incomplete_error(tokens, index, operand, source)


def _check_left_operand(tokens: list[Token], index: int, source: SourceText) -> None:
    """Raise for an operator without a value before it (`WHERE = 'a'`) and for two literals in
    a row (`IN ('a' 'b')`), which sqlglot would join into one string."""
    token = tokens[index]
    previous = tokens[index - 1] if index else None

    if token.token_type == TokenType.STRING and previous is not None and previous.token_type == TokenType.STRING:
        message = f"Unexpected {quoted(token.text)} right after another string. Add the missing comma or operator."
        raise _syntax_error(source, message, token)

    if token.token_type not in BINARY_OPERATORS or is_name(tokens, index):
        return
    if is_call(token, tokens[index + 1] if index + 1 < len(tokens) else None):
        return
    if previous is not None and previous.token_type == TokenType.NOT and token.token_type in NEGATABLE:
        return
    if previous is not None and previous.token_type not in OPERAND_EXPECTED:
        return
    if previous is not None and previous.token_type == TokenType.ALIAS:
        return

    part = "condition" if token.token_type in (TokenType.AND, TokenType.OR) else "expression"
    expected = "a condition" if part == "condition" else "a value"
    message = f"Incomplete {part}: expected {expected} before {keyword_text(token)}."
    raise _syntax_error(source, message, token)


def _check_missing_by(tokens: list[Token], index: int, source: SourceText) -> None:
    """Raise for GROUP or ORDER without BY, which sqlglot reads as a table or column alias."""
    token = tokens[index]
    if token.token_type != TokenType.VAR or token.text.upper() not in ("GROUP", "ORDER"):
        return

    previous = tokens[index - 1] if index else None
    if previous is None or previous.token_type in OPERAND_EXPECTED:
        return

    word = token.text.upper()
    raise _syntax_error(source, f"Expected BY after {word}: write {word} BY.", token)


def _check_comma(tokens: list[Token], index: int, clause: TokenType | None, source: SourceText) -> None:
    comma = tokens[index]
    previous = tokens[index - 1] if index else None
    following = tokens[index + 1] if index + 1 < len(tokens) else None

    if following is not None and following.token_type == TokenType.COMMA:
        message = "Unexpected ',': two commas in a row. Remove one, or add the missing item between them."
        raise _syntax_error(source, message, following)

    if previous is None or (previous.token_type in _LIST_STARTS and not is_name(tokens, index - 1)):
        after = f" after {keyword_text(previous)}" if previous is not None else ""
        message = f"Unexpected ','{after}: add the missing item before the comma, or remove it."
        raise _syntax_error(source, message, comma)

    if not ends_operand(tokens, index + 1):
        return

    # ClickHouse and PostHog accept one trailing comma at the end of the SELECT list.
    before_from = following is None or following.token_type in (TokenType.FROM, TokenType.SEMICOLON)
    if clause == TokenType.SELECT and before_from:
        return

    if clause in _LIST_NAMES:
        place = f"at the end of the {_LIST_NAMES[clause]}"
    elif following is None:
        place = "at the end of the query"
    else:
        place = f"before {keyword_text(following)}"
    raise _syntax_error(source, f"Trailing comma {place}: remove it, or add the missing item after it.", comma)


def _check_join_condition(join: exp.Join, source: SourceText) -> None:
    if (join.kind or "").upper() in _JOIN_KINDS_WITHOUT_CONDITION:
        return
    if join.args.get("on") is not None or join.args.get("using"):
        return
    # A join written with a comma has kind CROSS, so this join was written with JOIN.
    keyword = join.meta.get(KEYWORD_TOKEN_KEY)
    message = (
        "JOIN without ON or USING: add a join condition such as ON a.distinct_id = b.distinct_id "
        "after the joined table, or write CROSS JOIN to pair every row."
    )
    raise _syntax_error(source, message, keyword)


def _check_interval_unit(interval: exp.Interval, source: SourceText) -> None:
    unit = interval.args.get("unit")
    if isinstance(unit, exp.Var) and unit.name.upper() in INTERVAL_UNITS:
        return

    first, last = interval.meta.get(KEYWORD_TOKEN_KEY), interval.meta.get(LAST_TOKEN_KEY)
    if unit is None:
        message = f"INTERVAL needs a unit: {UNIT_ADVICE}."
    else:
        message = f"Unknown INTERVAL unit {quoted(unit.sql())}: {UNIT_ADVICE}."
    raise _syntax_error(source, message, first, last)


def _syntax_error(source: SourceText, message: str, first: Token | None, last: Token | None = None) -> HogQLError:
    if first is None:
        return HogQLSyntaxError(message)
    return source.error_at_tokens(HogQLSyntaxError, message, first, last)
