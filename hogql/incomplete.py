"""Find clauses and expressions that end too early, such as a trailing WHERE, AND or comma.

sqlglot 30.31 accepts some of these silently (`GROUP BY` with nothing after it, `JOIN b` without
ON as a cross join, `a,, b` without the empty item, `INTERVAL 7` without a unit) and reports
the others with its internal argument names. So the compiler checks the tokens before parsing
and the joins and intervals after it, and names the keyword that is missing its operand.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from .brackets import enclosing_bracket
from .dialect import KEYWORD_TOKEN_KEY, LAST_TOKEN_KEY, HogQLParser
from .errors import HogQLError, HogQLSyntaxError
from .source import SourceText, quoted


@dataclass(frozen=True)
class Operand:
    """What a keyword or operator needs after it, for the message 'Incomplete {part}: expected
    {expected} after {keyword}.'"""

    part: str
    expected: str
    # An example appended as ", as in {example}".
    example: str = ""
    # True when only punctuation or the end of the query shows the operand is missing, because
    # any keyword may follow: `AS from`, `IS DISTINCT FROM`, `UNION ALL SELECT`.
    punctuation_only: bool = False


_CONDITION = "a condition"
_EXPRESSION = "a column or expression"
_VALUE = "a value"

NEEDS_OPERAND: dict[TokenType, Operand] = {
    TokenType.SELECT: Operand("SELECT", _EXPRESSION),
    TokenType.WITH: Operand("WITH clause", "a name and a subquery", "WITH name AS (SELECT ...)"),
    TokenType.DISTINCT: Operand("DISTINCT", _EXPRESSION, punctuation_only=True),
    TokenType.FROM: Operand("FROM clause", "a table"),
    TokenType.JOIN: Operand("JOIN", "a table"),
    TokenType.ON: Operand("JOIN", "a join condition"),
    TokenType.USING: Operand("JOIN", "a column list", "USING (distinct_id)"),
    TokenType.WHERE: Operand("WHERE clause", _CONDITION),
    TokenType.PREWHERE: Operand("PREWHERE clause", _CONDITION),
    TokenType.HAVING: Operand("HAVING clause", _CONDITION),
    TokenType.QUALIFY: Operand("QUALIFY clause", _CONDITION),
    TokenType.GROUP_BY: Operand("GROUP BY clause", _EXPRESSION),
    TokenType.ORDER_BY: Operand("ORDER BY clause", _EXPRESSION),
    TokenType.PARTITION_BY: Operand("window", _EXPRESSION),
    TokenType.OVER: Operand("window", "a window name or definition", "OVER (ORDER BY timestamp)"),
    TokenType.LIMIT: Operand("LIMIT clause", "a number"),
    TokenType.OFFSET: Operand("OFFSET clause", "a number"),
    TokenType.AND: Operand("condition", _CONDITION),
    TokenType.OR: Operand("condition", _CONDITION),
    TokenType.NOT: Operand("condition", _CONDITION),
    TokenType.WHEN: Operand("CASE expression", _CONDITION),
    TokenType.THEN: Operand("CASE expression", _VALUE),
    TokenType.ELSE: Operand("CASE expression", _VALUE),
    TokenType.INTERVAL: Operand("INTERVAL", "a number and a unit", "INTERVAL 7 DAY"),
    TokenType.IN: Operand("IN", "a list in parentheses or a subquery"),
    TokenType.BETWEEN: Operand("BETWEEN", "a lower bound"),
    TokenType.IS: Operand("IS", "NULL or NOT NULL"),
    TokenType.LIKE: Operand("LIKE", "a pattern"),
    TokenType.ILIKE: Operand("ILIKE", "a pattern"),
    TokenType.ALIAS: Operand("alias", "a name", punctuation_only=True),
    TokenType.DOT: Operand("name", "a column or property name", punctuation_only=True),
    TokenType.UNION: Operand("UNION", "a SELECT", punctuation_only=True),
    TokenType.INTERSECT: Operand("INTERSECT", "a SELECT", punctuation_only=True),
    TokenType.EXCEPT: Operand("EXCEPT", "a SELECT", punctuation_only=True),
    TokenType.DCOLON: Operand("cast", "a type", "x::String"),
    **{
        operator: Operand("expression", _VALUE)
        for operator in (
            TokenType.EQ, TokenType.NEQ, TokenType.LT, TokenType.LTE, TokenType.GT, TokenType.GTE,
            TokenType.NULLSAFE_EQ, TokenType.PLUS, TokenType.DASH, TokenType.SLASH, TokenType.MOD,
            TokenType.DIV, TokenType.DPIPE, TokenType.DQMARK, TokenType.ARROW, TokenType.CARET,
            TokenType.AMP, TokenType.PIPE,
        )
    },
}
# Special cases of the table above, chosen by the token before.
_BETWEEN_AND = Operand("BETWEEN", "an upper bound")
_IS_NOT = Operand("IS NOT", "NULL")
_LIMIT_BY = Operand("LIMIT BY", "a column or expression")
_CAST_AS = Operand("CAST", "a type", "CAST(x AS String)")

# Keywords that can never start an operand, except AND and OR written as calls: `and(a, b)`.
# Keywords that sqlglot also reads as names (LIMIT, OFFSET, LEFT, END, ...) are left out.
CLAUSE_KEYWORDS = frozenset({
    TokenType.SELECT, TokenType.FROM, TokenType.WHERE, TokenType.PREWHERE, TokenType.GROUP_BY,
    TokenType.HAVING, TokenType.QUALIFY, TokenType.ORDER_BY, TokenType.PARTITION_BY,
    TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT, TokenType.JOIN, TokenType.INNER,
    TokenType.CROSS, TokenType.GLOBAL, TokenType.ON, TokenType.USING, TokenType.WHEN,
    TokenType.THEN, TokenType.ELSE, TokenType.AND, TokenType.OR,
})
_FUNCTION_KEYWORDS = frozenset({TokenType.AND, TokenType.OR})
# Operators that need a value on both sides; `-`, `+` and `*` may also stand alone.
BINARY_OPERATORS = frozenset({
    TokenType.EQ, TokenType.NEQ, TokenType.LT, TokenType.LTE, TokenType.GT, TokenType.GTE,
    TokenType.NULLSAFE_EQ, TokenType.SLASH, TokenType.MOD, TokenType.DIV, TokenType.DPIPE,
    TokenType.DQMARK, TokenType.CARET, TokenType.AMP, TokenType.PIPE, TokenType.DCOLON,
    TokenType.AND, TokenType.OR, TokenType.IN, TokenType.LIKE, TokenType.ILIKE, TokenType.IS,
    TokenType.BETWEEN,
})
_CLOSING_PUNCTUATION = frozenset({TokenType.SEMICOLON, TokenType.COMMA, TokenType.R_PAREN, TokenType.R_BRACKET})
# After these a keyword that sqlglot also reads as a name is a name: `SELECT limit`, `a, offset`.
_OPERAND_EXPECTED = frozenset({*NEEDS_OPERAND, TokenType.COMMA, TokenType.L_PAREN, TokenType.L_BRACKET})
# Operators that `NOT` may precede: `x NOT IN (...)`, `x NOT LIKE 'a%'`.
_NEGATABLE = frozenset({TokenType.IN, TokenType.LIKE, TokenType.ILIKE, TokenType.BETWEEN})
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
# List positions where a keyword that sqlglot also reads as a name is a name even when it is
# INTERVAL: `SELECT interval FROM t`. After an operator, INTERVAL starts an interval.
_LIST_POSITIONS = frozenset({TokenType.SELECT, TokenType.COMMA, TokenType.L_PAREN, TokenType.L_BRACKET})


def check_incomplete_tokens(tokens: list[Token], source: SourceText) -> None:
    """Raise HogQLSyntaxError at the first keyword, operator or comma without what must follow it.

    The brackets must already be balanced.
    """
    clauses: list[TokenType | None] = [None]
    open_betweens = 0

    for index, token in enumerate(tokens):
        kind = token.token_type
        if kind in (TokenType.L_PAREN, TokenType.L_BRACKET):
            clauses.append(None)
        elif kind in (TokenType.R_PAREN, TokenType.R_BRACKET) and len(clauses) > 1:
            clauses.pop()
        elif kind in _LIST_CLAUSES and not is_name(tokens, index):
            clauses[-1] = kind

        if kind == TokenType.COMMA:
            _check_comma(tokens, index, clauses[-1], source)
            continue

        _check_left_operand(tokens, index, source)
        _check_missing_by(tokens, index, source)

        operand = operand_needed(tokens, index, between_open=open_betweens > 0)
        if operand is None:
            continue

        if kind == TokenType.BETWEEN:
            open_betweens += 1
        elif operand is _BETWEEN_AND:
            open_betweens -= 1

        _check_operand(tokens, index, operand, source)


def operand_needed(tokens: list[Token], index: int, *, between_open: bool = False) -> Operand | None:
    """Return what `tokens[index]` needs after it, or None when it needs nothing or is a name."""
    token = tokens[index]
    previous = tokens[index - 1] if index else None

    if token.token_type == TokenType.VAR and token.text.upper() == "BY" and previous is not None:
        # `LIMIT 5 BY` or `LIMIT {n} BY`: after a number, BY can only belong to LIMIT.
        return _LIMIT_BY if previous.token_type in (TokenType.NUMBER, TokenType.R_BRACE) else None

    operand = NEEDS_OPERAND.get(token.token_type)
    if operand is None or is_name(tokens, index):
        return None

    if token.token_type == TokenType.AND and between_open:
        return _BETWEEN_AND
    if token.token_type == TokenType.NOT and previous is not None and previous.token_type == TokenType.IS:
        return _IS_NOT
    if token.token_type == TokenType.EXCEPT and previous is not None and previous.token_type == TokenType.STAR:
        return None
    if token.token_type == TokenType.ALIAS and _inside_cast(tokens, index):
        return _CAST_AS
    return operand


def is_name(tokens: list[Token], index: int) -> bool:
    """Tell whether a keyword token is used as a name, as `limit` in `SELECT limit FROM t`."""
    token = tokens[index]
    previous = tokens[index - 1] if index else None
    if previous is not None and previous.token_type in (TokenType.DOT, TokenType.ALIAS):
        return token.token_type != TokenType.DOT

    if token.token_type not in HogQLParser.ID_VAR_TOKENS:
        return False
    if previous is None:
        return True
    if previous.token_type == TokenType.NOT and token.token_type in _NEGATABLE:
        return False
    if token.token_type == TokenType.INTERVAL:
        # NOTE: a column named `interval` after an operator (`x - interval)`) is reported as
        # an INTERVAL without its number; sqlglot reads both, but events has no such column.
        return previous.token_type in _LIST_POSITIONS
    return previous.token_type in _OPERAND_EXPECTED


def incomplete_error(tokens: list[Token], index: int, operand: Operand, source: SourceText) -> HogQLError:
    """Build 'Incomplete WHERE clause: expected a condition after WHERE.' at `tokens[index]`."""
    first = last = tokens[index]
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    # SELECT DISTINCT and UNION ALL are reported as one keyword.
    if following is not None and _is_modifier(first, following):
        last = following

    keyword = keyword_text(first) if last is first else f"{keyword_text(first)} {keyword_text(last)}"
    example = f", as in {operand.example}" if operand.example else ""
    message = f"Incomplete {operand.part}: expected {operand.expected} after {keyword}{example}."
    return _syntax_error(source, message, first, last)


def keyword_text(token: Token) -> str:
    """Show a keyword as SQL writes it (`GROUP BY`) and an operator in quotes (`'='`)."""
    words = token.text.split()
    if all(word.isalpha() or word == "_" for word in words) and words:
        return " ".join(words).upper()
    return f"'{token.text}'"


def ends_operand(tokens: list[Token], index: int, *, punctuation_only: bool = False) -> bool:
    """Tell whether `tokens[index]` cannot start an operand: the end of the query, a closing
    bracket, a comma, a semicolon, or a clause keyword."""
    if index >= len(tokens):
        return True

    token = tokens[index]
    if token.token_type in _CLOSING_PUNCTUATION:
        return True
    if punctuation_only or token.token_type not in CLAUSE_KEYWORDS:
        return False

    following = tokens[index + 1] if index + 1 < len(tokens) else None
    is_call = token.token_type in _FUNCTION_KEYWORDS and following is not None and following.token_type == TokenType.L_PAREN
    return not is_call


def check_incomplete_tree(tree: exp.Expr, source: SourceText) -> None:
    """Raise HogQLSyntaxError for a join without a condition or an interval without a valid unit."""
    for node in tree.walk():
        if isinstance(node, exp.Join):
            _check_join_condition(node, source)
        elif isinstance(node, exp.Interval):
            _check_interval_unit(node, source)


def _check_operand(tokens: list[Token], index: int, operand: Operand, source: SourceText) -> None:
    token = tokens[index]
    following = index + 1
    if following < len(tokens) and _is_modifier(token, tokens[following]):
        following += 1

    if token.token_type == TokenType.DOT and following < len(tokens):
        # `e.from` is a column named "from"; `properties. FROM events` lost its name.
        gap = tokens[following].start > token.end + 1
        if gap and tokens[following].token_type in CLAUSE_KEYWORDS:
            raise incomplete_error(tokens, index, operand, source)

    if ends_operand(tokens, following, punctuation_only=operand.punctuation_only):
        raise incomplete_error(tokens, index, operand, source)

    # sqlglot reads `ORDER BY DESC` as ordering by a column named "desc".
    sort_order = following < len(tokens) and tokens[following].token_type in (TokenType.DESC, TokenType.ASC)
    if token.token_type == TokenType.ORDER_BY and sort_order:
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
    if previous is not None and previous.token_type == TokenType.NOT and token.token_type in _NEGATABLE:
        return
    if previous is not None and previous.token_type not in _OPERAND_EXPECTED:
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
    if previous is None or previous.token_type in _OPERAND_EXPECTED:
        return

    word = token.text.upper()
    raise _syntax_error(source, f"Expected BY after {word}: write {word} BY.", token)


def _inside_cast(tokens: list[Token], index: int) -> bool:
    opener = enclosing_bracket(tokens, index)
    if opener is None:
        return False
    position = tokens.index(opener)
    return position > 0 and tokens[position - 1].text.upper() == "CAST"


def _is_modifier(token: Token, following: Token) -> bool:
    """SELECT DISTINCT, SELECT ALL, UNION ALL and UNION DISTINCT act as one keyword."""
    if token.token_type not in (TokenType.SELECT, TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT):
        return False
    return following.token_type in (TokenType.DISTINCT, TokenType.ALL)


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
        message = f"Unknown INTERVAL unit '{unit.sql()}': {UNIT_ADVICE}."
    raise _syntax_error(source, message, first, last)


def _syntax_error(source: SourceText, message: str, first: Token | None, last: Token | None = None) -> HogQLError:
    if first is None:
        return HogQLSyntaxError(message)
    return source.error_at_tokens(HogQLSyntaxError, message, first, last)
