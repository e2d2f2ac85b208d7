"""Keywords and operators that need an operand after them, and how to tell them from names.

sqlglot also reads many keywords as names (`SELECT limit FROM t`, `properties.order`), so each
rule checks the tokens around a keyword before treating it as one. The syntax checks before
parsing and the explanations of sqlglot's errors share these rules and their messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from .brackets import enclosing_bracket
from .dialect import HogQLParser
from .errors import HogQLError, HogQLSyntaxError
from .source import SourceText


@dataclass(frozen=True)
class Operand:
    """The operand a keyword or operator needs after it, worded for the message
    'Incomplete {part}: expected {expected} after {keyword}.'"""

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
BETWEEN_AND = Operand("BETWEEN", "an upper bound")
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
FUNCTION_KEYWORDS = frozenset({TokenType.AND, TokenType.OR})
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
OPERAND_EXPECTED = frozenset({*NEEDS_OPERAND, TokenType.COMMA, TokenType.L_PAREN, TokenType.L_BRACKET})
# Operators that `NOT` may precede: `x NOT IN (...)`, `x NOT LIKE 'a%'`.
NEGATABLE = frozenset({TokenType.IN, TokenType.LIKE, TokenType.ILIKE, TokenType.BETWEEN})
# List positions where a keyword that sqlglot also reads as a name is a name even when it is
# INTERVAL: `SELECT interval FROM t`. After an operator, INTERVAL starts an interval.
_LIST_POSITIONS = frozenset({TokenType.SELECT, TokenType.COMMA, TokenType.L_PAREN, TokenType.L_BRACKET})


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
        return BETWEEN_AND
    if token.token_type == TokenType.NOT and previous is not None and previous.token_type == TokenType.IS:
        return _IS_NOT
    if token.token_type == TokenType.EXCEPT and previous is not None and previous.token_type == TokenType.STAR:
        return None
    if token.token_type == TokenType.ALIAS and _inside_cast(tokens, index):
        return _CAST_AS
    return operand


def is_name(tokens: list[Token], index: int) -> bool:
    """Return True if a keyword token is used as a name, as `limit` in `SELECT limit FROM t`."""
    token = tokens[index]
    previous = tokens[index - 1] if index else None
    if previous is not None and previous.token_type in (TokenType.DOT, TokenType.ALIAS):
        return token.token_type != TokenType.DOT

    if token.token_type not in HogQLParser.ID_VAR_TOKENS:
        return False
    if previous is None:
        return True
    if previous.token_type == TokenType.NOT and token.token_type in NEGATABLE:
        return False
    if token.token_type == TokenType.INTERVAL:
        # NOTE: a column named `interval` after an operator, as in `x - interval)`, is reported
        # as an INTERVAL without its number. The events table has no such column.
        return previous.token_type in _LIST_POSITIONS
    return previous.token_type in OPERAND_EXPECTED


def incomplete_error(tokens: list[Token], index: int, operand: Operand, source: SourceText) -> HogQLError:
    """Build 'Incomplete WHERE clause: expected a condition after WHERE.' at `tokens[index]`."""
    first = last = tokens[index]
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    # SELECT DISTINCT and UNION ALL are reported as one keyword.
    if following is not None and is_modifier(first, following):
        last = following

    keyword = keyword_text(first) if last is first else f"{keyword_text(first)} {keyword_text(last)}"
    example = f", as in {operand.example}" if operand.example else ""
    message = f"Incomplete {operand.part}: expected {operand.expected} after {keyword}{example}."
    return source.error_at_tokens(HogQLSyntaxError, message, first, last)


def keyword_text(token: Token) -> str:
    """Show a keyword as SQL writes it (`GROUP BY`) and an operator in quotes (`'='`)."""
    words = token.text.split()
    if all(word.isalpha() or word == "_" for word in words) and words:
        return " ".join(words).upper()
    return f"'{token.text}'"


def ends_operand(tokens: list[Token], index: int, *, punctuation_only: bool = False) -> bool:
    """Return True if `tokens[index]` cannot start an operand: the end of the query, a closing
    bracket, a comma, a semicolon, or a clause keyword."""
    if index >= len(tokens):
        return True

    token = tokens[index]
    if token.token_type in _CLOSING_PUNCTUATION:
        return True
    if punctuation_only or token.token_type not in CLAUSE_KEYWORDS:
        return False

    following = tokens[index + 1] if index + 1 < len(tokens) else None
    return not is_call(token, following)


def is_call(token: Token, following: Token | None) -> bool:
    """Return True if AND or OR is written as a function call, as in `and(a, b)`."""
    return token.token_type in FUNCTION_KEYWORDS and following is not None and following.token_type == TokenType.L_PAREN


def _inside_cast(tokens: list[Token], index: int) -> bool:
    opener = enclosing_bracket(tokens, index)
    return opener is not None and opener > 0 and tokens[opener - 1].text.upper() == "CAST"


def is_modifier(token: Token, following: Token) -> bool:
    """SELECT DISTINCT, SELECT ALL, UNION ALL and UNION DISTINCT act as one keyword."""
    if token.token_type not in (TokenType.SELECT, TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT):
        return False
    return following.token_type in (TokenType.DISTINCT, TokenType.ALL)
