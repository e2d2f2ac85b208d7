"""The shared tree walk and the cached lookups return what sqlglot's own walks and builders return.

The queries come from the other tables of compile cases, so every shape they cover (CTEs, unions,
joins, lambdas, property paths, hostile input) is walked both ways.
"""

from __future__ import annotations

import pytest
from sqlglot import exp
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from pulseboard.hogql import HogQLError
from pulseboard.hogql.brackets import CLOSING, OPENING, enclosing_bracket
from pulseboard.hogql.functions import lookup_function
from pulseboard.hogql.nodes import cast, data_type
from pulseboard.hogql.parse import DIALECT, parse
from pulseboard.hogql.paths import iter_property_paths
from pulseboard.hogql.prelex import prelex
from pulseboard.hogql.printer import _copy_for_printing, print_hogql
from pulseboard.hogql.tree import TreeNodes

from .test_compile import CASES, PLACEHOLDERS
from .test_errors import BAD_QUERIES
from .test_hostile import HOSTILE_QUERIES
from .test_syntax_errors import SYNTAX_ERRORS, VALID_QUERIES

EXTRA_QUERIES = [
    "SELECT arrayMap(x -> x + 1, [1, 2]) AS a, properties.items[1].sku FROM events",
    "SELECT e.properties.$browser, f.event FROM events e JOIN events f ON e.uuid = f.uuid WHERE e.event IN "
    "(SELECT event FROM events WHERE properties['plan'] = 'pro')",
    "WITH a AS (SELECT event FROM events) SELECT * FROM a UNION ALL SELECT event FROM a LIMIT 5",
    "SELECT count() OVER (PARTITION BY event ORDER BY timestamp) FROM events WHERE (SELECT 1) = 1",
]
QUERIES = sorted({
    *(case[0] for case in CASES),
    *(case[0] for case in BAD_QUERIES),
    *(case[0] for case in HOSTILE_QUERIES),
    *(case[0] for case in SYNTAX_ERRORS),
    *VALID_QUERIES,
    *EXTRA_QUERIES,
})


def parsed_trees() -> list[exp.Expr]:
    trees = []
    for text in QUERIES:
        try:
            trees.append(parse(prelex(text, PLACEHOLDERS), PLACEHOLDERS).tree)
        except HogQLError:
            continue
    return trees


TREES = parsed_trees()


def forward_enclosing_bracket(tokens: list[Token], index: int) -> int | None:
    """Find the innermost open bracket with a stack from the first token: the reference for the
    backward scan of `enclosing_bracket`."""
    stack: list[int] = []
    for position, token in enumerate(tokens[:index]):
        if token.token_type in CLOSING:
            stack.append(position)
        elif token.token_type in OPENING and stack:
            stack.pop()
    return stack[-1] if stack else None


def test_tables_give_many_trees():
    assert len(TREES) >= 150


@pytest.mark.parametrize("tree", TREES, ids=range(len(TREES)))
def test_tree_nodes_match_sqlglot_walks(tree):
    nodes = TreeNodes(tree)

    assert nodes.depth_first == list(tree.walk(bfs=False))
    assert nodes.breadth_first == list(tree.walk())
    assert nodes.find_all(exp.Column, exp.Anonymous) == list(tree.find_all(exp.Column, exp.Anonymous))
    assert nodes.find_all_depth_first(exp.Table) == list(tree.find_all(exp.Table, bfs=False))
    assert [path.node for path in nodes.property_paths()] == [path.node for path in iter_property_paths(tree)]


@pytest.mark.parametrize("tree", TREES, ids=range(len(TREES)))
def test_printing_copy_matches_expr_copy(tree):
    copy = _copy_for_printing(tree)
    expected = tree.copy()
    originals = {id(node) for node in tree.walk()}

    assert copy == expected
    assert repr(copy) == repr(expected)
    assert copy.parent is None
    for node, expected_node in zip(copy.walk(), expected.walk(), strict=True):
        assert id(node) not in originals
        assert type(node) is type(expected_node)
        assert node.arg_key == expected_node.arg_key
        assert node.index == expected_node.index
        assert (node.parent is None) == (expected_node.parent is None)
        assert node.meta.keys() == expected_node.meta.keys()
        assert node.comments == expected_node.comments


@pytest.mark.parametrize("tree", TREES, ids=range(len(TREES)))
def test_echo_leaves_tree_unchanged(tree):
    before = repr(tree)
    echo = print_hogql(tree)

    assert repr(tree) == before
    assert echo == print_hogql(tree.copy())


@pytest.mark.parametrize("text", QUERIES)
def test_enclosing_bracket_matches_forward_scan(text):
    try:
        tokens = DIALECT.tokenize(prelex(text, PLACEHOLDERS).source.rewritten)
    except (HogQLError, TokenError):
        return

    depth = 0
    for token in tokens:
        if token.token_type in CLOSING:  # an opening bracket: CLOSING maps it to its closing one
            depth += 1
        elif token.token_type in OPENING:
            depth -= 1
        if depth < 0:
            return  # unbalanced: parse rejects the query before any bracket lookup
    if depth != 0:
        return

    for index in range(len(tokens) + 1):
        assert enclosing_bracket(tokens, index) == forward_enclosing_bracket(tokens, index), index


def test_enclosing_bracket_inside_cast():
    tokens = DIALECT.tokenize("SELECT CAST((1 + 2) AS String)")
    alias = next(index for index, token in enumerate(tokens) if token.token_type == TokenType.ALIAS)

    assert enclosing_bracket(tokens, alias) == 2
    assert tokens[2].text == "("


def test_data_type_copies_are_independent():
    first = data_type("Nullable(String)")
    first.set("nullable", False)
    second = data_type("Nullable(String)")

    assert first is not second
    assert second.sql(dialect="clickhouse") == "Nullable(String)"
    assert second == exp.DataType.build("Nullable(String)", dialect="clickhouse")


def test_cast_builds_fresh_type_node():
    first = cast(exp.column("a"), "Nullable(Float64)")
    second = cast(exp.column("b"), "Nullable(Float64)")

    assert first.to is not second.to
    assert first.to.parent is first
    assert second.to.parent is second
    assert second.sql(dialect="clickhouse") == "CAST(b AS Nullable(Float64))"


@pytest.mark.parametrize(
    ("name", "canonical", "is_aggregate"),
    [("COUNT", "count", True), ("countIf", "countIf", True), ("sumArrayIf", "sumArrayIf", True),
     ("toStartOfDay", "toStartOfDay", False), ("TOSTRING", "toString", False)],
)
def test_lookup_function_repeats_same_answer(name, canonical, is_aggregate):
    first = lookup_function(name)
    second = lookup_function(name)

    assert first == second
    assert first.canonical == canonical
    assert first.is_aggregate is is_aggregate


@pytest.mark.parametrize("name", ["sleep", "url", "dictGetString", "sumIfIfIfIf", "nosuchfunction"])
def test_lookup_function_rejects_repeatedly(name):
    assert lookup_function(name) is None
    assert lookup_function(name) is None

