#!/usr/bin/env bash
# Work per node of the layered graphs of the benchmarks (`generated/dag{100,300,1000}.rs`), counted
# by cachegrind rather than timed: instructions, and misses of the first-level instruction and
# data caches, per node run, with zero-work tasks and with tasks that yield once.
#
# Wall time per node grows with the graph once its state and code outgrow the first-level caches
# (see README.md, "Performance"); the instructions show whether the work itself grows. Each graph
# runs often enough for about 300,000 node runs, polled with a no-op waker in a loop.
#
#     benches/instructions.sh
#
# Needs python3, cargo and valgrind. Builds a release binary in a temporary directory (removed
# on exit; KEEP_TMP=1 keeps it): the 1000-node graph takes a minute or two to optimize.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
command -v valgrind >/dev/null || {
    echo "benches/instructions.sh needs valgrind" >&2
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/dagjoin-instructions.XXXXXX")"
if [ -z "${KEEP_TMP:-}" ]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "working in $work" >&2
fi
export CARGO_TARGET_DIR="$work/target"

# shellcheck source=support/crate.sh
source "$here/support/crate.sh"
new_crate "$work" layered "$root"
cat >"$work/src/main.rs" <<EOF
//! \`layered N RUNS zero|yield\`: runs the N-node graph RUNS times.
#[path = "$here/support/tasks.rs"]
mod tasks;
use tasks::{run, tasks, Work};

#[path = "$here/generated/dag100.rs"]
mod dag100;
#[path = "$here/generated/dag300.rs"]
mod dag300;
#[path = "$here/generated/dag1000.rs"]
mod dag1000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let deps = match args[1].as_str() {
        "100" => dag100::DEPS,
        "300" => dag300::DEPS,
        "1000" => dag1000::DEPS,
        other => panic!("no graph of {other} nodes"),
    };
    if args[2] == "edges" {
        println!("{}", deps.iter().map(|d| d.len()).sum::<usize>());
        return;
    }
    let runs: usize = args[2].parse().expect("RUNS");
    let t = tasks(if args[3] == "yield" { Work::Yield } else { Work::Zero });
    let mut last = 0u64;
    for _ in 0..runs {
        let values = match deps.len() {
            100 => run(dag100::run(t)),
            300 => run(dag300::run(t)),
            _ => run(dag1000::run(t)),
        };
        last = last.wrapping_add(values[values.len() - 1]);
    }
    println!("{last}");
}
EOF

echo "building the graphs (release)" >&2
(cd "$work" && cargo build --quiet --release)

# Prints instructions, I1 misses and D1 misses per node run of graph $1 with tasks $2.
per_node() {
    local n="$1" tasks="$2" runs=$((300000 / $1))
    valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file=/dev/null \
        "$bin" "$n" "$runs" "$tasks" 2>&1 >/dev/null |
        python3 -c '
import re, sys
nodes = int(sys.argv[1]) * int(sys.argv[2])
text = sys.stdin.read()
counts = [
    int(re.search(label + r":\s+([\d,]+)", text).group(1).replace(",", "")) / nodes
    for label in (r"I\s+refs", r"I1\s+misses", r"D1\s+misses")
]
print("{:12.0f} {:10.1f} {:10.1f}".format(*counts))
' "$n" "$runs"
}

bin="$CARGO_TARGET_DIR/release/layered"
echo "per node run (cachegrind)          instructions  I1 misses  D1 misses"
for n in 100 300 1000; do
    edges="$("$bin" "$n" edges)"
    for tasks in zero yield; do
        printf 'layered%-5s %5s edges  %-6s %s\n' "$n" "$edges" "$tasks" "$(per_node "$n" "$tasks")"
    done
done
