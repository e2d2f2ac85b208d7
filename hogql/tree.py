"""One walk of a query tree, shared by the checks that read it.

sqlglot's `find_all` walks the whole tree again on each call, through generators. On the
account-health example query in bench/bench_queries.py (285 nodes) one such walk took about
0.11 ms, and validation alone made more than a dozen of them. `TreeNodes` walks the tree once
and filters the list it keeps, which took about 0.01 ms per lookup.

The lists describe the tree as it was when they were first read. After a step adds, removes or
moves nodes, it may still use the nodes that the change left in place, and builds a new
`TreeNodes` to find any others.
"""

from __future__ import annotations

from typing import TypeVar

from sqlglot import exp

from .paths import PropertyPath, property_paths_in

E = TypeVar("E", bound=exp.Expr)


class TreeNodes:
    """Every node of a tree, in the orders of sqlglot's `walk()` and `walk(bfs=False)`."""

    def __init__(self, tree: exp.Expr) -> None:
        self._tree = tree
        self._breadth_first: list[exp.Expr] | None = None
        self._depth_first: list[exp.Expr] | None = None
        self._property_paths: list[PropertyPath] | None = None

    @property
    def breadth_first(self) -> list[exp.Expr]:
        """The nodes in the order of `tree.walk()`, collected on first use."""
        if self._breadth_first is None:
            self._breadth_first = _walk_breadth_first(self._tree)
        return self._breadth_first

    @property
    def depth_first(self) -> list[exp.Expr]:
        """The nodes in the order of `tree.walk(bfs=False)`, collected on first use."""
        if self._depth_first is None:
            self._depth_first = _walk_depth_first(self._tree)
        return self._depth_first

    def find_all(self, *types: type[E]) -> list[E]:
        """Return the nodes of these types in `tree.find_all(*types)` order (breadth first)."""
        return [node for node in self.breadth_first if isinstance(node, types)]

    def find_all_depth_first(self, *types: type[E]) -> list[E]:
        """Return the nodes of these types in `tree.find_all(*types, bfs=False)` order."""
        return [node for node in self.depth_first if isinstance(node, types)]

    def property_paths(self) -> list[PropertyPath]:
        """Return every property read in the tree, outermost chain node only, in tree order."""
        if self._property_paths is None:
            self._property_paths = list(property_paths_in(self.depth_first))
        return self._property_paths


# Both walks read `args` themselves, as `Expr.iter_expressions` does, because a walk through that
# generator took about 1.5 times as long.


def _walk_breadth_first(tree: exp.Expr) -> list[exp.Expr]:
    nodes = [tree]
    position = 0
    while position < len(nodes):
        node = nodes[position]
        position += 1
        for value in node.args.values():
            if isinstance(value, list):
                nodes.extend(item for item in value if isinstance(item, exp.Expr))
            elif isinstance(value, exp.Expr):
                nodes.append(value)
    return nodes


def _walk_depth_first(tree: exp.Expr) -> list[exp.Expr]:
    nodes: list[exp.Expr] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)

        children: list[exp.Expr] = []
        for value in node.args.values():
            if isinstance(value, list):
                children.extend(item for item in value if isinstance(item, exp.Expr))
            elif isinstance(value, exp.Expr):
                children.append(value)
        children.reverse()
        stack.extend(children)
    return nodes
