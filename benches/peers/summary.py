"""Prints ns per task from criterion's results (target/criterion/<shape>_<n>/<lib>/<n>/new)."""
import json, pathlib, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = {}
for est in root.glob("*/*/*/new/estimates.json"):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    group, lib, n = bench["group_id"], bench["function_id"], bench["value_str"]
    tasks = bench["throughput"]["Elements"]
    ns = json.loads(est.read_text())["median"]["point_estimate"]
    rows.setdefault(group, {})[lib] = ns / tasks
libs = ["dagjoin-run", "dagjoin-build+run", "dagx-build+run", "dagrs-build+run", "async_dag-build+run"]
print("| shape/tasks | " + " | ".join(libs) + " |")
print("|---" * (len(libs) + 1) + "|")
order = {"chain": 0, "fan": 1, "lattice": 2, "random": 3}
for group in sorted(rows, key=lambda g: (order.get(g.split("/")[0], 9), int(g.split("/")[1]))):
    cells = [f"{rows[group][l]:,.0f}" if l in rows[group] else "–" for l in libs]
    print(f"| {group} | " + " | ".join(cells) + " |")
