"""Step 2: parse the pre-lexed text with sqlglot into exactly one SELECT or set of SELECTs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from .brackets import check_brackets
from .dialect import PARAMETER_TYPE_KEY, HogQLDialect
from .errors import HogQLSyntaxError, NotAllowedError
from .incomplete import check_incomplete_tokens, check_incomplete_tree
from .parse_errors import parse_error
from .prelex import MARKER_PREFIX, PrelexResult
from .source import SourceText, quoted
from .tree import TreeNodes

DIALECT = HogQLDialect()

QUERY_TYPES = (exp.Select, exp.SetOperation)
_INTEGER = re.compile(r"\d+\Z")
EMPTY_QUERY = "The query is empty. Write a SELECT statement."
ONLY_COMMENTS = "The query contains only comments. Write a SELECT statement."
# Tokens a query may start with; keywords such as INSERT parse, and are rejected after parsing.
_QUERY_STARTS = frozenset({TokenType.SELECT, TokenType.WITH, TokenType.FROM, TokenType.L_PAREN})
_NOT_KEYWORDS = frozenset({TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER})
# Meta key on user placeholders, so later steps can tell them from the compiler's parameters.
USER_PLACEHOLDER_KEY = "pb_user_placeholder"


@dataclass
class ParsedQuery:
    tree: exp.Query
    tokens: list[Token]
    source: SourceText


def parse(prelexed: PrelexResult, placeholders: Mapping[str, tuple[object, str]]) -> ParsedQuery:
    """Parse the rewritten text; raise HogQLSyntaxError or NotAllowedError with a position."""
    source = prelexed.source
    tokens = _tokenize(source)
    if not tokens:
        raise HogQLSyntaxError(ONLY_COMMENTS if source.rewritten.strip() else EMPTY_QUERY)
    if all(token.token_type == TokenType.SEMICOLON for token in tokens):
        raise HogQLSyntaxError(EMPTY_QUERY)

    _check_single_statement(tokens, source)
    _check_into_outfile(tokens, source)
    _check_query_start(tokens, source)
    check_brackets(tokens, source)
    check_incomplete_tokens(tokens, source)

    parser = DIALECT.parser(error_level=ErrorLevel.IMMEDIATE)
    try:
        statements = [statement for statement in parser.parse(tokens, source.rewritten) if statement]
    except ParseError as error:
        raise parse_error(error, parser.error_token, tokens, source) from None

    if not statements:
        raise HogQLSyntaxError(EMPTY_QUERY)

    tree = _unwrap_parentheses(statements[0])
    if not isinstance(tree, QUERY_TYPES):
        kind = tokens[0].text.upper()
        raise source.error_at_rewritten(
            NotAllowedError,
            f"Only SELECT queries are allowed; found {kind}.",
            tokens[0].start,
            tokens[0].end + 1,
        )

    # The steps below replace only the placeholders and interval numbers they find, so one walk
    # serves all three.
    nodes = TreeNodes(tree)
    check_incomplete_tree(tree, source, nodes)
    _bind_placeholders(nodes, prelexed.placeholder_names, placeholders, tokens)
    _restore_interval_numbers(nodes)
    return ParsedQuery(tree=tree, tokens=tokens, source=source)


def _unwrap_parentheses(tree: exp.Expr) -> exp.Expr:
    """Turn `(SELECT ...)` into `SELECT ...`; `(SELECT ...) ORDER BY x LIMIT n` into
    `SELECT * FROM (SELECT ...) ORDER BY x LIMIT n`."""
    while isinstance(tree, exp.Subquery) and not tree.alias:
        modifiers = {name: tree.args[name] for name in ("order", "limit", "offset") if tree.args.get(name)}
        if not modifiers:
            tree = tree.this
            continue

        outer = exp.select(exp.Star()).from_(exp.Subquery(this=tree.this), copy=False)
        for name, modifier in modifiers.items():
            outer.set(name, modifier)
        return outer

    return tree


def _tokenize(source: SourceText) -> list[Token]:
    try:
        return DIALECT.tokenize(source.rewritten)
    except TokenError as error:
        start = error.start if error.start is not None else 0
        end = error.end if error.end is not None else start + 1
        original_start, original_end = source.original_span(start, end)
        near = source.original[original_start:original_end]
        message = f"Syntax error near {quoted(near)}: this text cannot be read as SQL."
        raise source.error_at_rewritten(HogQLSyntaxError, message, start, end) from None


def _check_single_statement(tokens: list[Token], source: SourceText) -> None:
    """Reject text after the first `;`; semicolons at the end of the query are accepted."""
    for index, token in enumerate(tokens):
        if token.token_type != TokenType.SEMICOLON:
            continue

        rest = [later for later in tokens[index + 1 :] if later.token_type != TokenType.SEMICOLON]
        if rest:
            raise source.error_at_rewritten(
                NotAllowedError,
                "Only one statement is allowed. Remove the text after ';'.",
                token.start,
                token.end + 1,
            )


def _check_into_outfile(tokens: list[Token], source: SourceText) -> None:
    # sqlglot 30.31 fails on INTO OUTFILE with "Invalid expression", so it is caught by token.
    for token, following in zip(tokens, tokens[1:]):
        if token.token_type == TokenType.INTO and following.text.upper() == "OUTFILE":
            raise source.error_at_rewritten(
                NotAllowedError,
                "INTO OUTFILE is not allowed; results are returned to the caller.",
                token.start,
                following.end + 1,
            )


def _check_query_start(tokens: list[Token], source: SourceText) -> None:
    """Reject a query that starts with a name or a value, such as a misspelled SELECT."""
    first = tokens[0]
    if first.token_type in _QUERY_STARTS:
        return
    if first.token_type not in _NOT_KEYWORDS and first.text[:1].isalpha():
        # Statements such as KILL fail sqlglot's parse with a message about their later clauses.
        raise source.error_at_rewritten(
            NotAllowedError, f"Only SELECT queries are allowed; found {first.text.upper()}.", first.start, first.end + 1
        )

    start, end = source.original_span(first.start, first.end + 1)
    found = source.original[start:end]
    message = f"The query must start with SELECT or WITH; found {quoted(found)}."
    if found.startswith("`") and first.text.split()[:1] and first.text.split()[0].upper() in ("SELECT", "WITH"):
        message += " Remove the backticks around the query."
    raise source.error(HogQLSyntaxError, message, start, end)


def _restore_interval_numbers(nodes: TreeNodes) -> None:
    """sqlglot stores `INTERVAL 3 DAY` as the string '3'; keep it the number the user wrote."""
    for interval in nodes.find_all(exp.Interval):
        value = interval.this
        if isinstance(value, exp.Literal) and value.is_string and _INTEGER.match(value.this):
            value.replace(exp.Literal.number(value.this))


def _bind_placeholders(
    nodes: TreeNodes,
    names: list[str],
    placeholders: Mapping[str, tuple[object, str]],
    tokens: list[Token],
) -> None:
    """Give each pre-lex marker its user's name, declared ClickHouse type and position."""
    # Each marker is the tokens `{`, `pb_marker_<i>`, `:`, `String`, `}`.
    marker_braces = {
        token.text: (tokens[index - 1], tokens[index + 3])
        for index, token in enumerate(tokens)
        if token.text.startswith(MARKER_PREFIX) and 0 < index < len(tokens) - 3
    }

    for node in nodes.find_all(exp.Placeholder):
        marker = node.name
        if not marker.startswith(MARKER_PREFIX):
            continue

        name = names[int(marker[len(MARKER_PREFIX) :])]
        replacement = exp.Placeholder(this=exp.var(name))
        replacement.meta[PARAMETER_TYPE_KEY] = placeholders[name][1]
        replacement.meta[USER_PLACEHOLDER_KEY] = True
        if marker in marker_braces:
            opening, closing = marker_braces[marker]
            replacement.update_positions(line=opening.line, col=opening.col, start=opening.start, end=closing.end)
        node.replace(replacement)
