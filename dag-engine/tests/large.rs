//! Large graphs: a chain of 10,000 tasks and a 100 x 100 lattice run without overflowing the
//! stack, each task exactly once, and so do a failure at the head of the chain (10,000 skips)
//! and a rerun.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use dagjoin::runtime::{GraphBuilder, Handle, NamedGraphBuilder, Status};

const CHAIN: usize = 10_000;
const SIDE: usize = 100;

/// Prints how long `what` took, for a rough per-task cost (run with `--nocapture`).
fn timed<T>(what: &str, tasks: usize, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    #[allow(
        clippy::cast_precision_loss,
        reason = "a rough figure for the test log"
    )]
    let per_task = elapsed.as_nanos() as f64 / tasks as f64;
    eprintln!("{what}: {elapsed:?} for {tasks} tasks, {per_task:.0} ns per task");
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn a_chain_of_ten_thousand_typed_tasks() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (graph, last) = timed("chain: build", CHAIN, || {
        let mut g = GraphBuilder::<u64>::new();
        let mut prev = g.param();
        for _ in 0..CHAIN {
            let calls = calls.clone();
            prev = g.add(
                move |x: u64| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    async move { x + 1 }
                },
                prev,
            );
        }
        (g.build().unwrap(), prev)
    });
    let runtime = runtime();
    let report = timed("chain: run", CHAIN, || runtime.block_on(graph.run(0)));
    assert_eq!(report.get(&last).unwrap(), &(CHAIN as u64));
    assert_eq!(calls.load(Ordering::Relaxed), CHAIN);
    assert_eq!(report.count(Status::Completed), CHAIN);
    assert_eq!(report.critical_path().len(), CHAIN);

    let report = timed("chain: second run", CHAIN, || {
        runtime.block_on(graph.run(5))
    });
    assert_eq!(report.get(&last).unwrap(), &(CHAIN as u64 + 5));
    assert_eq!(calls.load(Ordering::Relaxed), 2 * CHAIN);
}

#[test]
fn a_failure_at_the_head_of_a_long_chain_skips_it_all_and_a_rerun_finishes_it() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut builder = NamedGraphBuilder::with_param();
    builder.task("t0", |inputs| async move {
        anyhow::ensure!(inputs.param::<bool>()?, "not yet");
        Ok(0_u64)
    });
    for i in 1..CHAIN {
        let calls = calls.clone();
        builder
            .task(format!("t{i}"), move |inputs| {
                calls.fetch_add(1, Ordering::Relaxed);
                async move { Ok(inputs.at::<u64>(0)? + 1) }
            })
            .depends(format!("t{i}"), [format!("t{}", i - 1)]);
    }
    let graph = builder.build().unwrap();
    let runtime = runtime();
    let first = runtime.block_on(graph.run(false));
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert_eq!(first.count(Status::Skipped), CHAIN - 1);
    let last = format!("t{}", CHAIN - 1);
    assert_eq!(first.task(&last).unwrap().skipped_because(), Some("t0"));

    let second = timed("named chain: rerun", CHAIN, || {
        runtime.block_on(graph.again(&first).run(true).unwrap())
    });
    assert_eq!(second.value::<u64>(&last).unwrap(), &(CHAIN as u64 - 1));
    assert_eq!(calls.load(Ordering::Relaxed), CHAIN - 1);
}

#[test]
fn a_hundred_by_hundred_lattice() {
    // Node (i, j) depends on its left (i, j - 1) and upper (i - 1, j) neighbours and counts
    // the monotone paths to it, modulo 2^32.
    let calls: Arc<Vec<AtomicU32>> =
        Arc::new((0..SIDE * SIDE).map(|_| AtomicU32::new(0)).collect());
    let (graph, corner) = timed("lattice: build", SIDE * SIDE, || {
        let mut g = GraphBuilder::<()>::new();
        let mut rows: Vec<Vec<Handle<u32>>> = Vec::with_capacity(SIDE);
        for i in 0..SIDE {
            let mut row = Vec::with_capacity(SIDE);
            for j in 0..SIDE {
                let calls = calls.clone();
                let count = move || {
                    calls[i * SIDE + j].fetch_add(1, Ordering::Relaxed);
                };
                let handle = match (i, j) {
                    (0, 0) => g.add(
                        move || {
                            count();
                            async { 1_u32 }
                        },
                        (),
                    ),
                    (0, _) | (_, 0) => {
                        let from = if i == 0 { row[j - 1] } else { rows[i - 1][j] };
                        g.add(
                            move |x: u32| {
                                count();
                                async move { x }
                            },
                            from,
                        )
                    }
                    _ => g.add(
                        move |left: u32, up: u32| {
                            count();
                            async move { left.wrapping_add(up) }
                        },
                        (row[j - 1], rows[i - 1][j]),
                    ),
                };
                row.push(handle);
            }
            rows.push(row);
        }
        (g.build().unwrap(), rows[SIDE - 1][SIDE - 1])
    });
    let report = timed("lattice: run", SIDE * SIDE, || {
        runtime().block_on(graph.run(()))
    });
    report.check().unwrap();
    assert!(
        calls.iter().all(|c| c.load(Ordering::Relaxed) == 1),
        "each task ran once"
    );

    // The same recurrence, by hand.
    let mut paths = vec![vec![1_u32; SIDE]; SIDE];
    for i in 1..SIDE {
        for j in 1..SIDE {
            paths[i][j] = paths[i][j - 1].wrapping_add(paths[i - 1][j]);
        }
    }
    assert_eq!(report.get(&corner).unwrap(), &paths[SIDE - 1][SIDE - 1]);
    assert_eq!(report.critical_path().len(), 2 * SIDE - 1);
}

#[test]
fn a_hundred_by_hundred_named_lattice() {
    let calls = Arc::new(AtomicUsize::new(0));
    let name = |i: usize, j: usize| format!("n{i}_{j}");
    let mut builder = NamedGraphBuilder::new();
    for i in 0..SIDE {
        for j in 0..SIDE {
            let calls = calls.clone();
            builder.task(name(i, j), move |inputs| {
                calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    let mut sum = u32::from(inputs.is_empty());
                    for k in 0..inputs.len() {
                        sum = sum.wrapping_add(inputs.at::<u32>(k)?);
                    }
                    Ok(sum)
                }
            });
            let mut deps = Vec::new();
            if j > 0 {
                deps.push(name(i, j - 1));
            }
            if i > 0 {
                deps.push(name(i - 1, j));
            }
            builder.depends(name(i, j), deps);
        }
    }
    let graph = timed("named lattice: build", SIDE * SIDE, || {
        builder.build().unwrap()
    });
    let report = timed("named lattice: run", SIDE * SIDE, || {
        runtime().block_on(graph.run(()))
    });
    report.check().unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), SIDE * SIDE);
    assert_eq!(report.value::<u32>(&name(1, 1)).unwrap(), &2);
    assert_eq!(report.value::<u32>(&name(3, 3)).unwrap(), &20);
}
