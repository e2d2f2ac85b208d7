"""Step 7: print the query as ClickHouse SQL, with every value as a bound parameter.

String literals the user wrote become `{pb_s0:String}`, `{pb_s1:String}`, ... and placeholders
print as `{name:Type}` with the type the caller declared. Numbers stay inline: sqlglot's
tokenizer only emits a number token for digits, '.', an exponent and '_' separators, and
`_check_number` rechecks that text before printing, so an inline number cannot carry SQL.
Comments are dropped; other text from the query reaches ClickHouse only as identifiers,
keywords and numbers that sqlglot printed and quoted where needed.
"""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.errors import UnsupportedError as SqlglotUnsupportedError

from .context import CompileContext
from .dialect import PARAMETER_TYPE_KEY, HogQLGenerator
from .errors import UnsupportedError
from .nodes import INTERNAL_LITERAL_KEY, PARAMETER_VALUE_KEY, STRING_PARAMETER_PREFIX, parameter
from .parse import DIALECT, USER_PLACEHOLDER_KEY
from .tree import TreeNodes

_NUMBER = re.compile(r"(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?\Z")


class _HogQLEchoGenerator(HogQLGenerator):
    hogql_placeholders = True


def print_hogql(tree: exp.Expr) -> str:
    """Print the query as normalised HogQL, with placeholders as `{name}` and literals inline."""
    # The generator rewrites some nodes in place, such as a UNION with a LIMIT, and moves nodes
    # into new ones, such as if(...) into a CASE. Later steps still need the tree, so the echo
    # prints a copy.
    return _generate(_HogQLEchoGenerator, _copy_for_printing(tree), copy=False)


def _copy_for_printing(tree: exp.Expr) -> exp.Expr:
    """Copy `tree` as `Expr.copy()` does, but with each node's meta copied one level deep.

    `Expr.copy()` deep-copies every meta dict and sets each child through `Expr.set`, which
    made it take about twice as long (0.8 ms for the account-health example query). The copy
    is only printed and then dropped, so sharing the meta values (positions, tokens) is safe.
    """
    root = tree.__class__()
    stack: list[tuple[exp.Expr, exp.Expr]] = [(tree, root)]
    while stack:
        node, copy = stack.pop()
        if node.comments is not None:
            copy.comments = list(node.comments)
        if node._type is not None:
            copy._type = node._type.copy()
        if node._meta is not None:
            copy._meta = dict(node._meta)

        for key, value in node.args.items():
            if isinstance(value, exp.Expr):
                copy.args[key] = _child_copy(value, copy, key, None, stack)
            elif type(value) is list:
                copy.args[key] = [
                    _child_copy(item, copy, key, index, stack) if isinstance(item, exp.Expr) else item
                    for index, item in enumerate(value)
                ]
            else:
                copy.args[key] = value
    return root


def _child_copy(
    child: exp.Expr, parent: exp.Expr, key: str, index: int | None, stack: list[tuple[exp.Expr, exp.Expr]]
) -> exp.Expr:
    """Create the empty copy of `child` under `parent` and queue `child` to fill it."""
    copy = child.__class__()
    copy.parent = parent
    copy.arg_key = key
    copy.index = index
    stack.append((child, copy))
    return copy


def print_clickhouse(tree: exp.Expr, context: CompileContext) -> tuple[str, dict[str, object]]:
    """Bind literals and return the ClickHouse SQL with its parameters."""
    # One walk collects both node types; binding replaces string literals with placeholders.
    literals: list[exp.Literal] = []
    placeholders: list[exp.Placeholder] = []
    for node in TreeNodes(tree).depth_first:
        if isinstance(node, exp.Literal):
            literals.append(node)
        elif isinstance(node, exp.Placeholder):
            placeholders.append(node)

    placeholders.extend(_bind_string_literals(literals))
    for literal in literals:
        _check_number(literal)

    parameters = _collect_parameters(placeholders, context)
    return _generate(HogQLGenerator, tree, copy=False), parameters


def _generate(generator_class: type[HogQLGenerator], tree: exp.Expr, *, copy: bool) -> str:
    generator = generator_class(dialect=DIALECT, comments=False, unsupported_level=ErrorLevel.RAISE)
    try:
        return generator.generate(tree, copy=copy)
    except SqlglotUnsupportedError as error:
        raise UnsupportedError(f"The query uses syntax ClickHouse cannot express: {error}") from None


def _bind_string_literals(literals: list[exp.Literal]) -> list[exp.Placeholder]:
    """Replace each user string literal with a bound parameter; return the new parameters."""
    bound = []
    for literal in literals:
        if not literal.is_string or literal.meta.get(INTERNAL_LITERAL_KEY):
            continue
        if literal.find_ancestor(exp.DataType):
            continue  # a type's own argument, such as the timezone in DateTime64(6, 'UTC')

        placeholder = parameter(f"{STRING_PARAMETER_PREFIX}{len(bound)}", "String", literal.this)
        literal.replace(placeholder)
        bound.append(placeholder)
    return bound


def _check_number(literal: exp.Literal) -> None:
    if literal.is_string:
        return

    if not _NUMBER.match(literal.this):
        raise UnsupportedError(f"Invalid number literal {literal.this!r}.")


def _collect_parameters(placeholders: list[exp.Placeholder], context: CompileContext) -> dict[str, object]:
    parameters: dict[str, object] = {}
    for placeholder in placeholders:
        name = placeholder.name
        if placeholder.meta.get(USER_PLACEHOLDER_KEY):
            value = context.placeholders[name][0]
        else:
            value = placeholder.meta[PARAMETER_VALUE_KEY]

        if name in parameters and parameters[name] != value:
            raise RuntimeError(f"Parameter {name!r} is bound to two different values.")
        parameters[name] = value

        if PARAMETER_TYPE_KEY not in placeholder.meta:
            raise RuntimeError(f"Parameter {name!r} has no ClickHouse type.")
    return parameters
