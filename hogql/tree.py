"""One walk of a query tree, shared by the checks that read it.

sqlglot's `find_all` walks the whole tree again on each call, through generators. On the
account-health example query in bench/bench_queries.py (285 nodes) one such walk took about
0.11 ms, and validation alone made more than a dozen of them. `TreeNodes` walks the tree once
and filters the list it keeps, which takes about a tenth of that per lookup.

The lists describe the tree as it was when they were built. A step that adds, removes or moves
nodes must not read them afterwards; it builds a new `TreeNodes` instead.
"""

from __future__ import annotations

from typing import TypeVar

from sqlglot import exp

from .paths import PropertyPath, property_paths_in

E = TypeVar("E", bound=exp.Expr)


class TreeNodes:
    """Every node of `tree`, in the orders of sqlglot's `walk(bfs=False)` and `walk()`."""

    def __init__(self, tree: exp.Expr) -> None:
        self.tree = tree
        self.depth_first, self._depths = _walk_depth_first(tree)
        self._breadth_first: list[exp.Expr] | None = None
        self._property_paths: list[PropertyPath] | None = None

    @property
    def breadth_first(self) -> list[exp.Expr]:
        """The nodes in the order of `tree.walk()`."""
        if self._breadth_first is None:
            # A stable sort of the pre-order by depth is the breadth-first order: both order
            # the nodes of one depth by their path of child positions from the root.
            order = sorted(range(len(self.depth_first)), key=self._depths.__getitem__)
            self._breadth_first = [self.depth_first[index] for index in order]
        return self._breadth_first

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


def _walk_depth_first(tree: exp.Expr) -> tuple[list[exp.Expr], list[int]]:
    """Return the nodes in pre-order, as `tree.walk(bfs=False)`, and the depth of each.

    The loop reads `args` itself, as `Expr.iter_expressions` does, because a walk through that
    generator took about 1.5 times as long.
    """
    nodes: list[exp.Expr] = []
    depths: list[int] = []
    stack: list[tuple[exp.Expr, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        nodes.append(node)
        depths.append(depth)

        child_depth = depth + 1
        children: list[tuple[exp.Expr, int]] = []
        for value in node.args.values():
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, exp.Expr):
                        children.append((item, child_depth))
            elif isinstance(value, exp.Expr):
                children.append((value, child_depth))
        children.reverse()
        stack.extend(children)
    return nodes, depths
