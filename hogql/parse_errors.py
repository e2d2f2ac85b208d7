"""Turn sqlglot's parse errors into plain SQL advice with the offending text and its position.

sqlglot 30.31 describes some errors with its own internals ("Required keyword: 'this' missing
for <class 'sqlglot.expressions.query.Where'>", "Expected table name but got SENTINEL"). Each
known description has an explanation here. Any other description is shown only when it
contains none of those internals, and is replaced by a generic message otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import Token, TokenType

from .brackets import CLOSING, enclosing_bracket
from .errors import HogQLError, HogQLSyntaxError
from .operands import NEEDS_OPERAND, Operand, incomplete_error, is_name, keyword_text, operand_needed
from .source import SourceText, quoted

CLAUSE_ORDER = "SELECT, FROM, JOIN, WHERE, GROUP BY, HAVING, ORDER BY, LIMIT"
GENERIC_ADVICE = "Check for a missing comma, operator or parenthesis, or a misspelled keyword."
# Text that shows a description comes from sqlglot's internals and must not reach the caller.
INTERNAL_MARKERS = (
    "<class", "sqlglot", "required keyword", "'this'", "'expression'", "'expressions'",
    "<token", "tokentype", "sentinel",
)
# sqlglot puts token reprs into some messages: "Expected table name but got <Token token_type:
# TokenType.WHERE, text: WHERE, line: 1, ...>"; the message shows the token's text instead.
_TOKEN_REPR = re.compile(
    r"<Token token_type: [^,]*, text: (.*?), line: \d+, col: \d+, start: \d+, end: \d+, comments: \[.*?\]>"
)
# The operand each incomplete sqlglot node lacks, by the node's class name.
_MISSING_BY_NODE = {
    "Where": Operand("WHERE clause", "a condition"),
    "PreWhere": Operand("PREWHERE clause", "a condition"),
    "Having": Operand("HAVING clause", "a condition"),
    "Qualify": Operand("QUALIFY clause", "a condition"),
    "Group": Operand("GROUP BY clause", "a column or expression"),
    "Order": Operand("ORDER BY clause", "a column or expression"),
    "Limit": Operand("LIMIT clause", "a number"),
    "Offset": Operand("OFFSET clause", "a number"),
    "And": Operand("condition", "a condition"),
    "Or": Operand("condition", "a condition"),
    "Xor": Operand("condition", "a condition"),
    "Not": Operand("condition", "a condition"),
    "Between": Operand("BETWEEN", "a lower and an upper bound", "BETWEEN 1 AND 10"),
    "Union": Operand("UNION", "a SELECT"),
    "Intersect": Operand("INTERSECT", "a SELECT"),
    "Except": Operand("EXCEPT", "a SELECT"),
    "Paren": Operand("expression", "an expression inside the parentheses"),
    "Column": Operand("name", "a column or property name"),
    "Dot": Operand("name", "a column or property name"),
    "Lambda": Operand("lambda", "an expression after '->'"),
    "Case": Operand("CASE expression", "WHEN and a condition"),
    "CTE": Operand("WITH clause", "a name and a subquery", "WITH name AS (SELECT ...)"),
    "Window": Operand("window", "a window name and definition"),
    "Interval": Operand("INTERVAL", "a number and a unit", "INTERVAL 7 DAY"),
}
_JOIN_WORDS = frozenset({
    TokenType.LEFT, TokenType.RIGHT, TokenType.FULL, TokenType.INNER, TokenType.CROSS,
    TokenType.OUTER, TokenType.SEMI, TokenType.ANTI, TokenType.ASOF, TokenType.ANY,
})
_CLAUSE_TOKENS = frozenset({
    TokenType.FROM, TokenType.WHERE, TokenType.PREWHERE, TokenType.GROUP_BY, TokenType.HAVING,
    TokenType.ORDER_BY, TokenType.LIMIT, TokenType.OFFSET, TokenType.JOIN, TokenType.WINDOW,
    TokenType.QUALIFY,
})


@dataclass
class _Failure:
    """The place sqlglot stopped: `index` is the token it reported, or len(tokens) past the end."""

    tokens: list[Token]
    index: int
    source: SourceText

    @property
    def token(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    @property
    def previous(self) -> Token | None:
        return self.tokens[self.index - 1] if 0 < self.index <= len(self.tokens) else None

    def near(self) -> str:
        token = self.token or self.previous
        if token is None:
            return ""
        start, end = self.source.original_span(token.start, token.end + 1)
        return self.source.original[start:end]

    def error(self, message: str, token: Token | None = None) -> HogQLError:
        token = token or self.token or self.previous
        if token is None:
            return HogQLSyntaxError(message)
        return self.source.error_at_tokens(HogQLSyntaxError, message, token)


def parse_error(error: ParseError, token: Token | None, tokens: list[Token], source: SourceText) -> HogQLError:
    """Explain a ParseError at `token`, the token sqlglot reported (None: the end of the query)."""
    description = (error.errors[0].get("description") if error.errors else None) or str(error)
    failure = _Failure(tokens=tokens, index=_token_index(tokens, token), source=source)

    for pattern, explain in _EXPLANATIONS:
        match = pattern.match(description)
        if match is None:
            continue
        explained = explain(match, failure)
        if explained is not None:
            return explained

    return _fallback(description, failure)


def _token_index(tokens: list[Token], token: Token | None) -> int:
    if token is None:
        return len(tokens)
    for index, candidate in enumerate(tokens):
        if candidate.start == token.start and candidate.end == token.end:
            return index
    return len(tokens)


def _missing_argument(match: re.Match[str], failure: _Failure) -> HogQLError | None:
    """`Required keyword: 'this' missing for <class '...Where'>`: a clause or operator with nothing after it."""
    node_name = match.group("node")
    for index in (failure.index, failure.index - 1):
        if 0 <= index < len(failure.tokens):
            operand = operand_needed(failure.tokens, index)
            if operand is not None:
                return incomplete_error(failure.tokens, index, operand, failure.source)

    operand = _MISSING_BY_NODE.get(node_name)
    node_class = getattr(exp, node_name, None)
    if operand is None and isinstance(node_class, type) and issubclass(node_class, exp.Binary):
        operand = Operand("expression", "a value on both sides of the operator")
    if operand is None:
        # Other nodes, such as if() or a parameterized aggregate, fail where the text stops
        # fitting them, which reads best as an unexpected token.
        return _unexpected_token(match, failure) or failure.error(
            f"Incomplete expression near {quoted(failure.near())}: a required part is missing."
        )
    example = f", as in {operand.example}" if operand.example else ""
    return failure.error(f"Incomplete {operand.part}: expected {operand.expected} near {quoted(failure.near())}{example}.")


def _expected_closing(match: re.Match[str], failure: _Failure) -> HogQLError | None:
    """`Expecting )` with balanced brackets: something inside them does not continue the list."""
    closing = match.group("closing")
    position = enclosing_bracket(failure.tokens, failure.index)
    opener = failure.tokens[position] if position is not None else None
    if opener is None or CLOSING[opener.token_type] != closing:
        return failure.error(f"Syntax error near {quoted(failure.near())}: expected '{closing}'.")

    where = failure.source.token_position(opener)
    message = f"Syntax error near {quoted(failure.near())}: expected ',' or '{closing}' inside the '{opener.text}' at {where}."
    return failure.error(message)


def _expected_table(match: re.Match[str], failure: _Failure) -> HogQLError | None:
    previous = failure.previous
    if failure.token is None and previous is not None:
        keyword = keyword_text(previous)
        part = "JOIN" if previous.token_type == TokenType.JOIN else f"{keyword} clause"
        return failure.error(f"Incomplete {part}: expected a table after {keyword}.", previous)
    return failure.error(f"Expected a table name, found {quoted(failure.near())}.")


def _case_without_end(match: re.Match[str], failure: _Failure) -> HogQLError | None:
    """sqlglot reports the last token of the CASE; the END belongs after it."""
    failure.index += 1
    case = _unclosed_case(failure.tokens, failure.index)
    opened = f" to close the CASE at {failure.source.token_position(case)}" if case is not None else ""
    if failure.token is None:
        return failure.error(f"Incomplete CASE expression: expected END at the end of the query{opened}.")
    return failure.error(f"Incomplete CASE expression: expected END before {quoted(failure.near())}{opened}.")


def _unclosed_case(tokens: list[Token], index: int) -> Token | None:
    stack: list[Token] = []
    for position, token in enumerate(tokens[:index]):
        if token.token_type == TokenType.CASE:
            stack.append(token)
        elif token.token_type == TokenType.END and stack and not is_name(tokens, position):
            stack.pop()
    return stack[-1] if stack else None


def _unexpected_token(match: re.Match[str], failure: _Failure) -> HogQLError | None:
    """`Invalid expression / Unexpected token`: the text before the token was complete."""
    token, previous = failure.token, failure.previous
    if token is None:
        return None

    if previous is not None and previous.token_type == TokenType.VAR and previous.text.upper() in ("GROUP", "ORDER"):
        word = previous.text.upper()
        return failure.error(f"Expected BY after {word}: write {word} BY.", previous)

    # `ORDER BY LIMIT 10`: sqlglot read LIMIT as a column, so ORDER BY is what lacks an operand.
    if failure.index >= 2 and is_name(failure.tokens, failure.index - 1):
        index = failure.index - 2
        operand = NEEDS_OPERAND.get(failure.tokens[index].token_type)
        if operand is not None and previous is not None and previous.token_type in _CLAUSE_TOKENS:
            return incomplete_error(failure.tokens, index, operand, failure.source)

    if token.token_type in _JOIN_WORDS:
        word = keyword_text(token)
        return failure.error(
            f"Incomplete JOIN: expected JOIN after {word}, as in {word} JOIN events AS b ON a.distinct_id = b.distinct_id."
        )

    if token.token_type in _CLAUSE_TOKENS:
        keyword = keyword_text(token)
        return failure.error(
            f"Unexpected {keyword}: each clause can appear once, in the order {CLAUSE_ORDER}."
        )

    if previous is None:
        return failure.error(f"Unexpected {quoted(failure.near())} at the start of the query.")
    before = failure.source.original[slice(*failure.source.original_span(previous.start, previous.end + 1))]
    return failure.error(f"Unexpected {quoted(failure.near())} after {quoted(before)}. {GENERIC_ADVICE}")


def _clause_order(match: re.Match[str], failure: _Failure) -> HogQLError | None:
    keyword = match.group("clause")
    return failure.error(f"Unexpected {keyword}: each clause can appear once, in the order {CLAUSE_ORDER}.")


def _set_operation(match: re.Match[str], failure: _Failure) -> HogQLError | None:
    operation = match.group("operation").upper()
    previous = failure.previous
    keyword = previous if previous is not None and previous.text.upper() == operation else None
    return failure.error(
        f"{operation} needs ALL or DISTINCT: write {operation} ALL to keep duplicate rows, "
        f"or {operation} DISTINCT to remove them.",
        keyword,
    )


def _fixed(message: str) -> Callable[[re.Match[str], _Failure], HogQLError | None]:
    return lambda match, failure: failure.error(message)


_EXPLANATIONS: list[tuple[re.Pattern[str], Callable[[re.Match[str], _Failure], HogQLError | None]]] = [
    (re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*?(?P<node>\w+)'>"), _missing_argument),
    (re.compile(r"Expect(?:ing|ed) (?P<closing>[)\]])"), _expected_closing),
    (re.compile(r"Expected table name"), _expected_table),
    (re.compile(r"Expecting \("), lambda match, failure: failure.error(f"Syntax error near {quoted(failure.near())}: expected '('.")),
    (re.compile(r"Expected END after CASE"), _case_without_end),
    (re.compile(r"Invalid expression / Unexpected token"), _unexpected_token),
    (re.compile(r"Found multiple '(?P<clause>[\w ]+)' clauses"), _clause_order),
    (re.compile(r"Expected DISTINCT or ALL for (?P<operation>\w+)"), _set_operation),
    (re.compile(r"Expected AS after CAST"), _fixed("Incomplete CAST: write CAST(value AS Type), such as CAST(x AS String).")),
    (
        re.compile(r"Expected (?:TYPE after CAST|type)"),
        _fixed("Expected a type name, such as String, Int64, Float64 or DateTime."),
    ),
    (re.compile(r"\w+ does not support CTE"), _fixed("WITH needs a subquery in parentheses: write WITH name AS (SELECT ...).")),
    (re.compile(r"Expected CTE to have alias"), _fixed("Each WITH item needs a name: write WITH name AS (SELECT ...).")),
    (re.compile(r"Failed to parse any statement following CTE"), _fixed("Expected a SELECT after the WITH clause.")),
    (
        re.compile(r"Invalid numeric interval literal"),
        _fixed("Invalid INTERVAL value: write a number and a unit, such as INTERVAL 7 DAY."),
    ),
]


def _fallback(description: str, failure: _Failure) -> HogQLError:
    description = _TOKEN_REPR.sub(lambda match: repr(match.group(1)), description).strip().rstrip(".")
    lowered = description.lower()
    if not description or any(marker in lowered for marker in INTERNAL_MARKERS):
        description = f"the query cannot be parsed here. {GENERIC_ADVICE}"
    else:
        description = f"{description}."

    near = failure.near()
    if not near:
        return failure.error(f"Syntax error: {description}")
    return failure.error(f"Syntax error near {quoted(near)}: {description}")
