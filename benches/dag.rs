//! `dag!` against the code one would write without it, on the same executor in the same run.
//!
//! - `seed`: the six-node seed graph, against nested `futures::join!` written by hand.
//! - `sp100`: a series-parallel graph of 100 nodes (`generated/sp100.rs`), against nested
//!   `futures::join!` written by hand (the same schedule).
//! - `layered{100,300,1000}`: layered graphs that are not series-parallel
//!   (`generated/dag*.rs`), against a scheduler that runs the same edges at run time with
//!   Kahn's algorithm over a `FuturesUnordered`.
//!
//! Every group runs with `zero` tasks, which return their computed value at once (`async fn`s
//! in the seed graph, a small future in the generated ones), and with `yield` tasks, which
//! first return `Pending` once, after waking themselves.
//! Each iteration builds the graph's future and polls it to completion with a no-op waker in a
//! loop: no executor overhead on either side, and every task here is ready again as soon as it
//! yields. A setup step first runs each form once on `futures::executor::block_on`, checking
//! that both compute the same values, and prints the size of each future to stderr.
//!
//! Run with `cargo bench --bench dag`; `python3 benches/summary.py` then prints each group's
//! ratio and the time per node.

#![allow(
    clippy::large_futures,
    reason = "graphs of up to 1000 nodes, polled in place"
)]

use core::future::Future;
use core::pin::Pin;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use dagjoin::dag;
use futures::stream::{FuturesUnordered, StreamExt};

#[rustfmt::skip]
#[path = "generated/sp100.rs"]
mod sp100;

#[rustfmt::skip]
#[allow(dead_code, reason = "the durations are for the tests, not the benchmarks")]
#[path = "generated/dag100.rs"]
mod dag100;

#[rustfmt::skip]
#[allow(dead_code, reason = "the durations are for the tests, not the benchmarks")]
#[path = "generated/dag300.rs"]
mod dag300;

#[rustfmt::skip]
#[allow(dead_code, reason = "the durations are for the tests, not the benchmarks")]
#[path = "generated/dag1000.rs"]
mod dag1000;

#[path = "support/tasks.rs"]
mod tasks;
use tasks::{run, tasks, Work};

#[path = "support/yield_once.rs"]
mod yield_once;
use yield_once::YieldOnce;

/// What a task does before it returns: nothing, or yield once.
async fn work<const YIELD: bool>() {
    if YIELD {
        YieldOnce(false).await;
    }
}

// The seed graph's tasks.

async fn fast_a<const Y: bool>() -> u64 {
    work::<Y>().await;
    black_box(1)
}

async fn slow_b<const Y: bool>(a: u64) -> u64 {
    work::<Y>().await;
    a + 10
}

async fn slow_a<const Y: bool>() -> u64 {
    work::<Y>().await;
    black_box(2)
}

async fn fast_b<const Y: bool>() -> u64 {
    work::<Y>().await;
    black_box(3)
}

async fn fast_c<const Y: bool>(sa: u64, fb: u64) -> u64 {
    work::<Y>().await;
    sa * fb
}

async fn end_task<const Y: bool>(b: u64, c: u64) -> u64 {
    work::<Y>().await;
    b + c
}

fn seed_with_dag<const Y: bool>() -> impl Future<Output = u64> {
    dag! {
        a   = fast_a::<Y>();
        b   = slow_b::<Y>(a);
        sa  = slow_a::<Y>();
        fb  = fast_b::<Y>();
        c   = fast_c::<Y>(sa, fb);
        end = end_task::<Y>(b, c);
        end
    }
}

#[allow(
    clippy::manual_async_fn,
    reason = "returns the graph's own future, so that `size_of_val` measures just that"
)]
fn seed_by_hand<const Y: bool>() -> impl Future<Output = u64> {
    async {
        let (b, c) = futures::join!(
            async {
                let a = fast_a::<Y>().await;
                slow_b::<Y>(a).await
            },
            async {
                let (sa, fb) = futures::join!(slow_a::<Y>(), fast_b::<Y>());
                fast_c::<Y>(sa, fb).await
            },
        );
        end_task::<Y>(b, c).await
    }
}

/// Every node's value, computed in plain Rust, for checking.
fn expected(deps: &[&[usize]]) -> Vec<u64> {
    let mut values: Vec<u64> = Vec::with_capacity(deps.len());
    for (v, d) in deps.iter().enumerate() {
        let inputs: Vec<u64> = d.iter().map(|&u| values[u]).collect();
        values.push(run(tasks(Work::Zero)(v, &inputs)));
    }
    values
}

/// Runs the graph `deps` at run time: Kahn's algorithm, with the running nodes' boxed futures in
/// a `FuturesUnordered`; every finished node makes its dependents ready when it was their last
/// input. Returns every node's value.
async fn kahn<'f, F, Fut>(deps: &[&[usize]], node: F) -> Vec<u64>
where
    F: Fn(usize, &[u64]) -> Fut,
    Fut: Future<Output = u64> + 'f,
{
    type Running<'f> = FuturesUnordered<Pin<Box<dyn Future<Output = (usize, u64)> + 'f>>>;

    let n = deps.len();
    // The dependents of `u` are `dependents[first[u]..first[u + 1]]`.
    let mut first = vec![0; n + 1];
    for d in deps {
        for &u in *d {
            first[u + 1] += 1;
        }
    }
    for u in 0..n {
        first[u + 1] += first[u];
    }
    let mut fill = first.clone();
    let mut dependents = vec![0; first[n]];
    for (v, d) in deps.iter().enumerate() {
        for &u in *d {
            dependents[fill[u]] = v;
            fill[u] += 1;
        }
    }
    let mut missing: Vec<usize> = deps.iter().map(|d| d.len()).collect();
    let mut values = vec![0; n];
    let mut inputs = Vec::new();
    let mut running: Running<'f> = FuturesUnordered::new();
    let start = |running: &mut Running<'f>, v: usize, inputs: &[u64]| {
        let future = node(v, inputs);
        running.push(Box::pin(async move { (v, future.await) }));
    };
    for v in (0..n).filter(|&v| deps[v].is_empty()) {
        start(&mut running, v, &[]);
    }
    while let Some((u, value)) = running.next().await {
        values[u] = value;
        for &v in &dependents[first[u]..first[u + 1]] {
            missing[v] -= 1;
            if missing[v] == 0 {
                inputs.clear();
                inputs.extend(deps[v].iter().map(|&w| values[w]));
                start(&mut running, v, &inputs);
            }
        }
    }
    values
}

/// Checks that both forms compute the same values (on a real executor) and prints the size of
/// each future.
fn check_and_print_sizes(_: &mut Criterion) {
    use futures::executor::block_on;

    let sp = expected(sp100::DEPS);
    let sp_end = sp[sp100::NODES - 1];
    assert_eq!(block_on(seed_with_dag::<false>()), 17);
    assert_eq!(block_on(seed_by_hand::<false>()), 17);
    assert_eq!(block_on(seed_with_dag::<true>()), 17);
    assert_eq!(block_on(seed_by_hand::<true>()), 17);
    for work in [Work::Zero, Work::Yield] {
        assert_eq!(block_on(sp100::with_dag(tasks(work))), sp_end);
        assert_eq!(block_on(sp100::by_hand(tasks(work))), sp_end);
        assert_eq!(block_on(sp100::by_hand_borrowing(tasks(work))), sp_end);
    }
    eprintln!("sp100: {} nodes, {} edges", sp100::NODES, sp100::EDGES);
    let layered = [
        (dag100::DEPS, block_on(dag100::run(tasks(Work::Yield)))),
        (dag300::DEPS, block_on(dag300::run(tasks(Work::Yield)))),
        (dag1000::DEPS, block_on(dag1000::run(tasks(Work::Yield)))),
    ];
    for (deps, dag_out) in layered {
        let want = expected(deps);
        assert_eq!(dag_out, want);
        assert_eq!(block_on(kahn(deps, tasks(Work::Yield))), want);
        let edges: usize = deps.iter().map(|d| d.len()).sum();
        eprintln!("layered{}: {edges} edges", deps.len());
    }

    let t = tasks(Work::Zero);
    eprintln!("size_of_val of the future (bytes)   dag!  by hand");
    let sizes = [
        (
            "seed, zero",
            size_of_val(&seed_with_dag::<false>()),
            size_of_val(&seed_by_hand::<false>()),
        ),
        (
            "seed, yield",
            size_of_val(&seed_with_dag::<true>()),
            size_of_val(&seed_by_hand::<true>()),
        ),
        (
            "sp100",
            size_of_val(&sp100::with_dag(t)),
            size_of_val(&sp100::by_hand(t)),
        ),
    ];
    for (name, with_dag, by_hand) in sizes {
        eprintln!("  {name:<32} {with_dag:>6}  {by_hand:>7}");
    }
    // What `join!` needs for a node whose future borrows a temporary, which `dag!` accepts.
    eprintln!(
        "  {:<32} {:>6}  {:>7}",
        "sp100 (by hand, async blocks)",
        size_of_val(&sp100::with_dag(t)),
        size_of_val(&sp100::by_hand_borrowing(t)),
    );
    // `kahn`'s future holds only its locals: the graph lives on the heap.
    for (name, with_dag, kahn) in [
        (
            "layered100 (vs kahn)",
            size_of_val(&dag100::run(t)),
            size_of_val(&kahn(dag100::DEPS, t)),
        ),
        (
            "layered300 (vs kahn)",
            size_of_val(&dag300::run(t)),
            size_of_val(&kahn(dag300::DEPS, t)),
        ),
        (
            "layered1000 (vs kahn)",
            size_of_val(&dag1000::run(t)),
            size_of_val(&kahn(dag1000::DEPS, t)),
        ),
    ] {
        eprintln!("  {name:<32} {with_dag:>6}  {kahn:>7}");
    }
}

/// Benchmarks `mode/dag` against `mode/{baseline}` in `group`.
fn pair<D, DFut, B, BFut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    mode: &str,
    with_dag: D,
    baseline: &str,
    without: B,
) where
    D: Fn() -> DFut,
    DFut: Future,
    B: Fn() -> BFut,
    BFut: Future,
{
    group.bench_function(format!("{mode}/dag"), |b| b.iter(|| run(with_dag())));
    group.bench_function(format!("{mode}/{baseline}"), |b| {
        b.iter(|| run(without()));
    });
}

fn seed(c: &mut Criterion) {
    let mut group = c.benchmark_group("seed");
    group.throughput(Throughput::Elements(6));
    pair(
        &mut group,
        "zero",
        seed_with_dag::<false>,
        "hand",
        seed_by_hand::<false>,
    );
    pair(
        &mut group,
        "yield",
        seed_with_dag::<true>,
        "hand",
        seed_by_hand::<true>,
    );
    group.finish();
}

fn series_parallel(c: &mut Criterion) {
    let mut group = c.benchmark_group("sp100");
    group.throughput(Throughput::Elements(sp100::NODES as u64));
    let (zero, yielding) = (tasks(Work::Zero), tasks(Work::Yield));
    pair(
        &mut group,
        "zero",
        || sp100::with_dag(zero),
        "hand",
        || sp100::by_hand(zero),
    );
    pair(
        &mut group,
        "yield",
        || sp100::with_dag(yielding),
        "hand",
        || sp100::by_hand(yielding),
    );
    group.finish();
}

/// The layered graph of `$nodes` nodes in module `$graph`, against [`kahn`].
macro_rules! layered {
    ($name:ident, $graph:ident, $group:literal) => {
        fn $name(c: &mut Criterion) {
            let mut group = c.benchmark_group($group);
            group.throughput(Throughput::Elements($graph::NODES as u64));
            let (zero, yielding) = (tasks(Work::Zero), tasks(Work::Yield));
            pair(
                &mut group,
                "zero",
                || $graph::run(zero),
                "kahn",
                || kahn($graph::DEPS, zero),
            );
            pair(
                &mut group,
                "yield",
                || $graph::run(yielding),
                "kahn",
                || kahn($graph::DEPS, yielding),
            );
            group.finish();
        }
    };
}

layered!(layered100, dag100, "layered100");
layered!(layered300, dag300, "layered300");
layered!(layered1000, dag1000, "layered1000");

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60)
}

criterion_group! {
    name = benches;
    config = config();
    targets = check_and_print_sizes, seed, series_parallel, layered100, layered300, layered1000
}
criterion_main!(benches);
