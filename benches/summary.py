#!/usr/bin/env python3
"""Prints the last `cargo bench --bench dag` run as one line per group and kind of task: the
time of `dag!` and of its baseline (criterion's estimate: the slope, else the mean), their
ratio and the time per node.

Reads criterion's estimates from $CARGO_TARGET_DIR/criterion (default
target/criterion), or from the directory given.

    python3 benches/summary.py [TARGET/criterion]
"""
import json
import os
import sys

GROUPS = [
    ("seed", 6, "hand"),
    ("sp100", 100, "hand"),
    ("layered100", 100, "kahn"),
    ("layered300", 300, "kahn"),
    ("layered1000", 1000, "kahn"),
]


def estimate_ns(root, group, name):
    path = os.path.join(root, group, name, "new", "estimates.json")
    with open(path) as f:
        estimates = json.load(f)
    # What criterion prints: the slope of the linear regression if it sampled that way.
    return (estimates.get("slope") or estimates["mean"])["point_estimate"]


def fmt_time(ns):
    return f"{ns / 1000:.2f} us" if ns >= 1000 else f"{ns:.1f} ns"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "target"))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "criterion")
    print(f"{'group':<12} {'tasks':<6} {'dag!':>10} {'baseline':>15} {'ratio':>6} "
          f"{'dag! ns/node':>13} {'base ns/node':>13}")
    for group, nodes, baseline in GROUPS:
        for work in ("zero", "yield"):
            try:
                dag = estimate_ns(root, group, f"{work}_dag")
                base = estimate_ns(root, group, f"{work}_{baseline}")
            except FileNotFoundError:
                continue
            print(f"{group:<12} {work:<6} {fmt_time(dag):>10} {fmt_time(base):>10} {baseline:<4} "
                  f"{dag / base:>6.2f} {dag / nodes:>13.1f} {base / nodes:>13.1f}")


if __name__ == "__main__":
    main()
