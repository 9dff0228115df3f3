//! The run-time engine's cost of being watched: a run of 10,000 zero-work tasks with nothing
//! observing it, against the same run with a no-op event callback, with a live status handle,
//! and (with `--features progress`) with a progress bar drawing to an in-memory terminal, in
//! the same criterion run (`cargo bench --bench engine --features progress`). Shapes: a
//! chain and a random DAG of about 3 edges per task, the extremes of `benches/peers`.
//!
//! `grown/*`: a run that adds 10,000 tasks as it goes (a map, a growth step, a rule) against
//! the static graph of the same shape (`cargo bench --bench engine -- grown`).
//!
//! Built with `--features tracing` and no subscriber, the `none` rows measure what compiling
//! in the spans costs: two builds back to back, the second against the first's baseline:
//!
//! ```text
//! cargo bench --bench engine -- none --save-baseline plain
//! cargo bench --bench engine --features tracing -- none --baseline plain
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dagjoin::runtime::{Graph, GraphBuilder, Growth, Handle, Rule, RunOptions, When};

const TASKS: usize = 10_000;

/// Task `i`'s inputs: `i - 1` (chain) or up to 3 distinct earlier tasks (random, fixed seed).
fn shape(random: bool) -> Vec<Vec<usize>> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..TASKS)
        .map(|i| {
            if !random {
                return if i == 0 { vec![] } else { vec![i - 1] };
            }
            let mut deps: Vec<usize> = Vec::new();
            while deps.len() < i.min(3) {
                let d = usize::try_from(next() % i as u64).unwrap();
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
            deps
        })
        .collect()
}

fn build(deps: &[Vec<usize>]) -> (Graph<()>, Handle<u64>) {
    let mut builder = GraphBuilder::<()>::new();
    let mut handles: Vec<Handle<u64>> = Vec::with_capacity(deps.len());
    for inputs in deps {
        let at = |i: usize| handles[inputs[i]];
        let handle = match inputs.len() {
            0 => builder.add(|| async { 1_u64 }, ()),
            1 => builder.add(|x: u64| async move { x }, at(0)),
            2 => builder.add(
                |x: u64, y: u64| async move { x.wrapping_add(y) },
                (at(0), at(1)),
            ),
            3 => builder.add(
                |x: u64, y: u64, z: u64| async move { x.wrapping_add(y).wrapping_add(z) },
                (at(0), at(1), at(2)),
            ),
            _ => unreachable!("at most 3 inputs"),
        };
        handles.push(handle);
    }
    (builder.build().unwrap(), *handles.last().unwrap())
}

fn observers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (name, random) in [("chain", false), ("random", true)] {
        let (graph, last) = build(&shape(random));
        let mut group = c.benchmark_group(format!("observed/{name}"));
        group.bench_function(BenchmarkId::new("none", TASKS), |b| {
            b.iter(|| {
                let report = rt.block_on(graph.run(()));
                black_box(*report.get(&last).unwrap())
            });
        });
        group.bench_function(BenchmarkId::new("no-op callback", TASKS), |b| {
            b.iter(|| {
                let options = RunOptions::new().on_event(|event| {
                    black_box(event);
                });
                let report = rt.block_on(graph.run_with((), options));
                black_box(*report.get(&last).unwrap())
            });
        });
        #[cfg(feature = "progress")]
        group.bench_function(BenchmarkId::new("progress bar", TASKS), |b| {
            use indicatif::{InMemoryTerm, ProgressDrawTarget};
            let term = InMemoryTerm::new(4, 160);
            let progress = dagjoin::runtime::Progress::with_draw_target(
                ProgressDrawTarget::term_like_with_hz(Box::new(term), 20),
            );
            b.iter(|| {
                let report = rt.block_on(graph.run_with((), RunOptions::new().progress(&progress)));
                black_box(*report.get(&last).unwrap())
            });
        });
        group.bench_function(BenchmarkId::new("live status", TASKS), |b| {
            b.iter(|| {
                let mut run = graph.run(());
                let status = run.status();
                let report = rt.block_on(run);
                black_box(status);
                black_box(*report.get(&last).unwrap())
            });
        });
        group.finish();
    }
}

/// The static graph of [`growth`]: a list of 10,000 items, shared, so that each task's input is
/// as cheap to take as a map item's; a task per item; their sum.
fn static_graph() -> (Graph<()>, Handle<u64>) {
    let mut g = GraphBuilder::<()>::new();
    let list = g.add(
        || async { std::sync::Arc::new((0..TASKS as u64).collect::<Vec<u64>>()) },
        (),
    );
    let each: Vec<Handle<u64>> = (0..TASKS)
        .map(|i| {
            g.add(
                move |list: std::sync::Arc<Vec<u64>>| async move { list[i] * 2 },
                list,
            )
        })
        .collect();
    let sum = g.add(|v: Vec<u64>| async move { v.iter().sum::<u64>() }, each);
    (g.build().unwrap(), sum)
}

/// Adds what the static graph of [`growth`] has after its list: a task per item and a sum.
fn add_each(grow: &mut Growth<'_, ()>, list: Handle<std::sync::Arc<Vec<u64>>>) {
    let each: Vec<Handle<u64>> = (0..TASKS)
        .map(|i| {
            grow.add(
                move |list: std::sync::Arc<Vec<u64>>| async move { list[i] * 2 },
                list,
            )
        })
        .collect();
    grow.named("sum")
        .add(|v: Vec<u64>| async move { v.iter().sum::<u64>() }, each);
}

/// A run that grows to 10,000 tasks (a map over a collection of 10,000 items, then a sum)
/// against the static graph of the same shape (10,000 tasks built each taking the producer's
/// shared value and picking their item, then the same sum over their handles).
fn growth(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let items = || async { (0..TASKS as u64).collect::<Vec<u64>>() };
    let mut group = c.benchmark_group("grown");

    let (fixed, sum) = static_graph();
    group.bench_function(BenchmarkId::new("static", TASKS), |b| {
        b.iter(|| black_box(*rt.block_on(fixed.run(())).get(&sum).unwrap()));
    });
    // The same graph built for each run: what a growth step does, which builds its tasks as
    // the run goes on.
    group.bench_function(BenchmarkId::new("static-built", TASKS), |b| {
        b.iter(|| {
            let (graph, sum) = static_graph();
            black_box(*rt.block_on(graph.run(())).get(&sum).unwrap())
        });
    });

    let mut g = GraphBuilder::<()>::new();
    let list = g.add(items, ());
    let doubled = g.map(|x: u64| async move { x * 2 }, list);
    let sum = g.add(|v: Vec<u64>| async move { v.iter().sum::<u64>() }, doubled);
    let grown = g.build().unwrap();
    group.bench_function(BenchmarkId::new("map", TASKS), |b| {
        b.iter(|| black_box(*rt.block_on(grown.run(())).get(&sum).unwrap()));
    });

    // The static graph's tasks, added by a growth step once the list is there, and by a rule.
    let shared = move || async move { std::sync::Arc::new(items().await) };
    let mut g = GraphBuilder::<()>::new();
    let list = g.add(shared, ());
    g.named("step").grow(
        move |grow: &mut Growth<'_, ()>, _: std::sync::Arc<Vec<u64>>| add_each(grow, list),
        list,
    );
    let stepped = g.build().unwrap();
    group.bench_function(BenchmarkId::new("step", TASKS), |b| {
        b.iter(|| black_box(*rt.block_on(stepped.run(())).value::<u64>("sum").unwrap()));
    });

    let mut g = GraphBuilder::<()>::new();
    let list = g.add(shared, ());
    g.rule(
        Rule::new(When::completed(list), move |grow: &mut Growth<'_, ()>| {
            add_each(grow, list);
            Ok(())
        })
        .named("rule"),
    );
    let ruled = g.build().unwrap();
    group.bench_function(BenchmarkId::new("rule", TASKS), |b| {
        b.iter(|| black_box(*rt.block_on(ruled.run(())).value::<u64>("sum").unwrap()));
    });
    group.finish();
}

criterion_group!(benches, observers, growth);
criterion_main!(benches);
