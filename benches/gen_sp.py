#!/usr/bin/env python3
"""Writes a Rust source file with one series-parallel graph of N nodes in three forms: a `dag!`,
the same schedule written by hand with nested `futures::join!`, and that again with every node
run in a join wrapped as `async move { node(..).await }`, which `join!` needs for a node whose
future borrows a temporary of its expression (`dag!` accepts such nodes as they are).

The graph is a random series-parallel composition tree with N leaves (the nodes). Series and
parallel levels alternate; a parallel level has 2 to 5 parts, so no `join!` has more than 5
branches. In a series composition the sources of each part use the values of all sinks of the
part before it. The root is a series composition whose last part is a single node, the
graph's output. Nodes are numbered in the order the hand-written code starts them, which is a
topological order. Used by `benches/dag.rs`.

    python3 benches/gen_sp.py NODES SEED > out.rs
"""
import random
import sys

MAX_PAR = 5

ALLOW_MANUAL_ASYNC = [
    "#[allow(",
    "    clippy::manual_async_fn,",
    "    reason = \"returns the graph's own future, so that `size_of_val` measures just that\"",
    ")]",
]


class Tree:
    def __init__(self, kind, children=(), node=None):
        self.kind = kind  # "leaf", "seq" or "par"
        self.children = list(children)
        self.node = node


def split(rng, total, parts):
    """`total` as a sum of `parts` positive integers, at random."""
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0] + cuts, cuts + [total])]


def build(rng, leaves, kind):
    if leaves == 1:
        return Tree("leaf")
    if kind == "par":
        parts = rng.randint(2, min(MAX_PAR, leaves))
    else:
        parts = rng.randint(2, min(4, leaves))
    other = "seq" if kind == "par" else "par"
    return Tree(kind, [build(rng, n, other) for n in split(rng, leaves, parts)])


def number(tree, counter):
    """Numbers the leaves depth-first (series parts in order: a topological order)."""
    if tree.kind == "leaf":
        tree.node = counter[0]
        counter[0] += 1
    for child in tree.children:
        number(child, counter)


def sources(tree):
    if tree.kind == "leaf":
        return [tree.node]
    if tree.kind == "seq":
        return sources(tree.children[0])
    return [v for c in tree.children for v in sources(c)]


def sinks(tree):
    if tree.kind == "leaf":
        return [tree.node]
    if tree.kind == "seq":
        return sinks(tree.children[-1])
    return [v for c in tree.children for v in sinks(c)]


def edges(tree, inputs, deps):
    """Fills `deps[v]`, the nodes `v` uses, given the values `tree`'s sources use."""
    if tree.kind == "leaf":
        deps[tree.node] = sorted(inputs)
    elif tree.kind == "par":
        for child in tree.children:
            edges(child, inputs, deps)
    else:
        for child in tree.children:
            edges(child, inputs, deps)
            inputs = sinks(child)


def name(v):
    return f"n{v}"


def pattern(tree):
    """The shape of a part's output: its sinks, nested like the joins that produce them."""
    if tree.kind == "leaf":
        return name(tree.node)
    if tree.kind == "seq":
        return pattern(tree.children[-1])
    return "(" + ", ".join(pattern(c) for c in tree.children) + ")"


def call(tree, deps):
    args = ", ".join(name(u) for u in deps[tree.node])
    return f"node({tree.node}, &[{args}])"


def future(tree, deps, indent, wrap):
    """An expression of a future that runs `tree` and outputs `pattern(tree)`; with `wrap`, a
    single node too is an `async` block that owns its expression's temporaries."""
    if tree.kind == "leaf":
        if wrap:
            return "async move { " + call(tree, deps) + ".await }"
        return call(tree, deps)
    inner = " " * (indent + 4)
    body = awaited(tree, deps, indent + 4, wrap, block=False)
    return "async move {\n" + inner + body + "\n" + " " * indent + "}"


def awaited(tree, deps, indent, wrap, block=True):
    """An expression (inside `async`) that runs `tree` and evaluates to `pattern(tree)`."""
    pad = " " * indent
    if tree.kind == "leaf":
        return call(tree, deps) + ".await"
    if tree.kind == "par":
        assert len(tree.children) <= 12
        args = ",\n".join(pad + "    " + future(c, deps, indent + 4, wrap) for c in tree.children)
        return "join!(\n" + args + ",\n" + pad + ")"
    inner = pad + "    " if block else pad
    lines = []
    for child in tree.children[:-1]:
        value = awaited(child, deps, len(inner), wrap)
        lines.append(f"let {pattern(child)} = {value};")
    lines.append(awaited(tree.children[-1], deps, len(inner), wrap))
    body = ("\n" + inner).join(lines)
    if block:
        return "{\n" + inner + body + "\n" + pad + "}"
    return body


def main():
    nodes, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    body = build(rng, nodes - 1, "seq")
    root = Tree("seq", body.children + [Tree("leaf")])
    number(root, [0])
    deps = [None] * nodes
    edges(root, [], deps)
    (end,) = sinks(root)
    assert end == nodes - 1 and all(d is not None for d in deps)
    assert all(u < v for v in range(nodes) for u in deps[v])
    n_edges = sum(len(d) for d in deps)

    out = []
    out.append(f"// Generated by `python3 benches/gen_sp.py {nodes} {seed}`; do not edit.")
    out.append(f"// A series-parallel graph of {nodes} nodes and {n_edges} edges, as a `dag!` and")
    out.append("// written by hand with nested `futures::join!` (the same schedule), twice: as is, and")
    out.append("// with each node in a `join!` in an `async` block.")
    out.append("#![allow(clippy::similar_names, reason = \"generated node names n0, n1, ..\")]")
    out.append("#![allow(clippy::too_many_lines, reason = \"one statement per node\")]")
    out.append("")
    out.append("use core::future::Future;")
    out.append("")
    out.append("use futures::join;")
    out.append("")
    out.append(f"pub const NODES: usize = {nodes};")
    out.append(f"pub const EDGES: usize = {n_edges};")
    out.append("pub const DEPS: &[&[usize]] = &[")
    for d in deps:
        out.append("    &[" + ", ".join(map(str, d)) + "],")
    out.append("];")
    out.append("")
    out.append("/// The graph as a `dag!`; `node(i, inputs)` is the task of node `i`. Outputs the last")
    out.append("/// node's value.")
    out.extend(ALLOW_MANUAL_ASYNC)
    out.append("pub fn with_dag<F, Fut>(node: F) -> impl Future<Output = u64>")
    out.append("where")
    out.append("    F: Fn(usize, &[u64]) -> Fut,")
    out.append("    Fut: Future<Output = u64>,")
    out.append("{")
    out.append("    dagjoin::dag! {")
    out.append("        move;")
    for v, d in enumerate(deps):
        args = ", ".join(name(u) for u in d)
        out.append(f"        {name(v)} = node({v}, &[{args}]);")
    out.append(f"        {name(end)}")
    out.append("    }")
    out.append("}")
    hand = [
        ("by_hand", "/// The same graph written by hand with nested `join!`.", False),
        (
            "by_hand_borrowing",
            "/// The same again, with each node in a `join!` in an `async` block, as `join!` needs it\n"
            "/// for a node whose future borrows a temporary of its expression.",
            True,
        ),
    ]
    for fn, doc, wrap in hand:
        out.append("")
        out.append(doc)
        out.extend(ALLOW_MANUAL_ASYNC)
        out.append(f"pub fn {fn}<F, Fut>(node: F) -> impl Future<Output = u64>")
        out.append("where")
        out.append("    F: Fn(usize, &[u64]) -> Fut,")
        out.append("    Fut: Future<Output = u64>,")
        out.append("{")
        out.append("    async move {")
        out.append("        let node = &node;")
        out.append("        " + awaited(root, deps, 8, wrap, block=False))
        out.append("    }")
        out.append("}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
