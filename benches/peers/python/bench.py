"""Per-task overhead of the Python libraries async-dag 0.3.1 and taskmap 0.0.6 on the shapes of
`benches/overhead.rs` (same generators, same random seed): zero-work async tasks, each returning
1 without inputs or the wrapping (mod 2**64) sum of its inputs. Prints ns per task.

    python bench.py async-dag [sizes...]   # Python 3.12+
    python bench.py taskmap [sizes...]     # Python 3.9 (taskmap's run_async breaks on 3.10+)
"""

import asyncio
import math
import os
import sys
import time

MASK = (1 << 64) - 1


def chain(n):
    return [[] if i == 0 else [i - 1] for i in range(n)]


def fan(n):
    return [[]] + [[0] for _ in range(1, n - 1)] + [list(range(1, n - 1))]


def lattice(n):
    side = round(math.sqrt(n))
    deps = []
    for i in range(side):
        for j in range(side):
            d = []
            if j > 0:
                d.append(i * side + j - 1)
            if i > 0:
                d.append((i - 1) * side + j)
            deps.append(d)
    return deps


def random_dag(n):
    # splitmix64 with the seed of overhead.rs, so the graph is the same one.
    state = (0x5EEDDA90 * 0x9E3779B97F4A7C15) & MASK

    def nxt():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    deps = []
    for i in range(n):
        d = []
        while len(d) < min(i, 3):
            p = nxt() % i
            if p not in d:
                d.append(p)
        deps.append(d)
    return deps


SHAPES = [("chain", chain), ("fan", fan), ("lattice", lattice), ("random", random_dag)]


def expected_last(deps):
    values = []
    for d in deps:
        values.append(sum(values[k] for k in d) & MASK if d else 1)
    return values[-1]


async def source():
    return 1


async def add(*xs):
    return sum(xs) & MASK


def best_of(f, repeats, budget):
    """The fastest of up to `repeats` calls of `f`, stopping once `budget` seconds are spent."""
    best = None
    spent = 0.0
    value = None
    for _ in range(repeats):
        start = time.perf_counter_ns()
        value = f()
        elapsed = time.perf_counter_ns() - start
        best = elapsed if best is None else min(best, elapsed)
        spent += elapsed / 1e9
        if spent > budget:
            break
    return best, value


# ---------------------------------------------------------------------------------------------
# async-dag 0.3.1: typed builder, `sort()` freezes, `invoke(param)` reruns a built graph.
# ---------------------------------------------------------------------------------------------


def bench_async_dag(sizes):
    from async_dag import TaskManager

    def build(deps):
        tm = TaskManager()
        nodes = []
        for d in deps:
            if d:
                nodes.append(tm.add_node(add, *(nodes[k] for k in d)))
            else:
                nodes.append(tm.add_node(source))
        tm.sort()
        return tm, nodes[-1]

    def run(tm, last):
        result = asyncio.run(tm.invoke(None))
        return last.extract_result(result)

    for name, make in SHAPES:
        for n in sizes:
            deps = make(n)
            tasks = len(deps)
            expected = expected_last(deps)
            tm, last = build(deps)
            t_run, v = best_of(lambda: run(tm, last), 5, 20)
            assert v == expected, (name, n, v, expected)
            t_all, v = best_of(lambda: run(*build(deps)), 5, 20)
            assert v == expected, (name, n, v, expected)
            print(f"async-dag {name:8} {n:>6}: run {t_run / tasks:8.0f} ns/task   "
                  f"build+run {t_all / tasks:8.0f} ns/task", flush=True)


# ---------------------------------------------------------------------------------------------
# taskmap 0.0.6: named graph from dicts; `run_async` mutates the graph (build + run each time).
# ---------------------------------------------------------------------------------------------


def bench_taskmap(sizes):
    import logging

    import taskmap

    logging.disable(logging.CRITICAL)  # taskmap logs every task at INFO
    budget = float(os.environ.get("TASKMAP_BUDGET", "120"))

    def build_run(deps):
        names = [f"t{i}" for i in range(len(deps))]
        funcs = {names[i]: (add if d else source) for i, d in enumerate(deps)}
        dependencies = {names[i]: [names[k] for k in d] for i, d in enumerate(deps)}
        # All tasks are async, so all are io_bound: taskmap's cpu queue sleeps `sleep` seconds
        # after each task. A set, not a list, so that `task in io_bound` is not a scan.
        graph = taskmap.create_graph(funcs, dependencies, io_bound=set(names))
        # sleep=0: the default 0.2 s polling interval would dominate everything.
        graph = taskmap.run_async(graph, sleep=0)
        return graph.results[names[-1]]

    for name, make in SHAPES:
        last_small = None
        for n in sizes:
            deps = make(n)
            tasks = len(deps)
            if last_small is not None:
                # taskmap scans the whole graph per scheduling step: quadratic growth.
                estimate = last_small[1] * (tasks / last_small[0]) ** 2 / 1e9
                if estimate > budget:
                    print(f"taskmap   {name:8} {n:>6}: skipped, estimated {estimate:.0f} s per run "
                          f"(> TASKMAP_BUDGET={budget:.0f} s; quadratic from the smaller size)",
                          flush=True)
                    continue
            t_all, v = best_of(lambda: build_run(deps), 3, budget / 4)
            assert v == expected_last(deps), (name, n, v)
            last_small = (tasks, t_all)
            print(f"taskmap   {name:8} {n:>6}: build+run {t_all / tasks:8.0f} ns/task", flush=True)


if __name__ == "__main__":
    which = sys.argv[1]
    sizes = [int(s) for s in sys.argv[2:]] or [1000, 10000]
    print(f"# {which} on Python {sys.version.split()[0]}", flush=True)
    {"async-dag": bench_async_dag, "taskmap": bench_taskmap}[which](sizes)
