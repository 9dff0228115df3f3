#!/usr/bin/env bash
# Compile time of one generated `dag!` of N nodes (`gen_dag.py N 1`, a layered graph that is
# not series-parallel), in a throwaway crate that depends on this checkout of dagjoin by path.
#
# For each N the crate is built once (to build the dependencies), then its lib.rs is touched and
# `cargo build` and `cargo build --release` are timed: the time to compile that crate alone.
# Incremental compilation is off, so a touch recompiles everything (with it, an unchanged debug
# build reuses almost all of its previous work).
#
# Two versions of lib.rs are timed. `generic` is the generator's output alone: `run` is generic,
# so it is only type-checked (and, in release, MIR-optimized), never compiled to machine code.
# `instance` adds a function that polls `run` with concrete tasks, as a user's crate does, so
# the graph's code is generated and optimized too.
#
#     benches/compile_time.sh            # N = 100 300 1000
#     benches/compile_time.sh 50 2000    # other sizes
#
# Needs python3 and cargo only. Works in a temporary directory, removed on exit (set
# KEEP_TMP=1 to keep it); one target directory there is shared by all sizes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
sizes=("$@")
if [ ${#sizes[@]} -eq 0 ]; then
    sizes=(100 300 1000)
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/dagjoin-compile-time.XXXXXX")"
if [ -z "${KEEP_TMP:-}" ]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "working in $work" >&2
fi
export CARGO_TARGET_DIR="$work/target"
export CARGO_INCREMENTAL=0

now() { python3 -c 'import time; print(time.time())'; }

# Touches src/lib.rs, runs `cargo build "$@"` in the current directory and prints the seconds
# it took.
timed_build() {
    touch src/lib.rs
    local start end
    start="$(now)"
    cargo build --quiet "$@"
    end="$(now)"
    python3 -c "print(f'{$end - $start:.1f}')"
}

# The concrete instance appended to lib.rs for the `instance` timings.
instance='
/// Polls the graph once with concrete tasks, so that its code is generated.
pub fn poll_instance() -> bool {
    use ::core::future::Future;
    let future = ::core::pin::pin!(run(|i, inputs: &[u64]| {
        let value = inputs
            .iter()
            .fold(i as u64, |acc, x| acc.wrapping_mul(31).wrapping_add(*x));
        async move { value }
    }));
    let mut cx = ::core::task::Context::from_waker(::core::task::Waker::noop());
    future.poll(&mut cx).is_ready()
}'

# shellcheck source=support/crate.sh
source "$here/support/crate.sh"

results=()
for n in "${sizes[@]}"; do
    crate="$work/dag$n"
    new_crate "$crate" "dag$n" "$root"
    line="$n"
    for variant in generic instance; do
        python3 "$here/gen_dag.py" "$n" 1 >"$crate/src/lib.rs"
        if [ "$variant" = instance ]; then
            printf '%s\n' "$instance" >>"$crate/src/lib.rs"
        fi
        cd "$crate"
        echo "N=$n, $variant: warming up" >&2
        cargo build --quiet
        cargo build --quiet --release
        echo "N=$n, $variant: timing" >&2
        line="$line $(timed_build) $(timed_build --release)"
        cd - >/dev/null
    done
    results+=("$line")
done

echo "seconds to compile the generated crate alone (gen_dag.py N 1):"
printf '%6s  %14s  %14s  %14s  %14s\n' "" "generic" "generic" "instance" "instance"
printf '%6s  %14s  %14s  %14s  %14s\n' "N" "debug" "release" "debug" "release"
for line in "${results[@]}"; do
    # shellcheck disable=SC2086 # split the fields
    printf '%6s  %14s  %14s  %14s  %14s\n' $line
done
