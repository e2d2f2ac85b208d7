"""Match parentheses and square brackets in the token stream before parsing.

sqlglot reports an unclosed '(' where it gives up, often several tokens later ("Expecting )"
near 'FROM'), so the compiler checks the balance itself and points at the bracket at fault.
"""

from __future__ import annotations

from sqlglot.tokens import Token, TokenType

from .errors import HogQLSyntaxError
from .source import SourceText

CLOSING = {TokenType.L_PAREN: ")", TokenType.L_BRACKET: "]"}
OPENING = {TokenType.R_PAREN: "(", TokenType.R_BRACKET: "["}
_KIND = {"(": "parenthesis", ")": "parenthesis", "[": "bracket", "]": "bracket"}


def check_brackets(tokens: list[Token], source: SourceText) -> None:
    """Raise HogQLSyntaxError at the first bracket without a partner of the same kind."""
    stack: list[Token] = []
    for token in tokens:
        if token.token_type in CLOSING:
            stack.append(token)
            continue

        if token.token_type not in OPENING:
            continue

        if not stack:
            opening = OPENING[token.token_type]
            message = f"Unbalanced {_KIND[opening]}: '{token.text}' has no matching '{opening}'; remove it."
            raise source.error_at_tokens(HogQLSyntaxError, message, token)

        opener = stack.pop()
        expected = CLOSING[opener.token_type]
        if token.text != expected:
            message = (
                f"Mismatched brackets: '{token.text}' closes the '{opener.text}' at "
                f"{source.token_position(opener)}; expected '{expected}'."
            )
            raise source.error_at_tokens(HogQLSyntaxError, message, token)

    if stack:
        opener = stack[-1]
        closing = CLOSING[opener.token_type]
        message = f"Unbalanced {_KIND[closing]}: '{opener.text}' is never closed; add the missing '{closing}'."
        raise source.error_at_tokens(HogQLSyntaxError, message, opener)


def enclosing_bracket(tokens: list[Token], index: int) -> int | None:
    """Return the index of the innermost bracket that is still open just before `tokens[index]`.

    Every closing bracket before `index` must close an opening one, as `check_brackets` ensures.
    The scan goes backwards from `index`, so it usually stops after a few tokens.
    """
    depth = 0
    for position in range(min(index, len(tokens)) - 1, -1, -1):
        token_type = tokens[position].token_type
        if token_type in OPENING:  # a closing bracket: OPENING maps it to its opening one
            depth += 1
        elif token_type in CLOSING:
            if depth == 0:
                return position
            depth -= 1
    return None
