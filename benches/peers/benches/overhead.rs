//! Per-task overhead of dagjoin's run-time engine against the Rust peer crates dagx 0.3,
//! dagrs 0.9 and async_dag 0.1, with zero-work tasks (each returns a small integer computed
//! from its inputs: 1 for a source, otherwise the wrapping sum of its inputs).
//!
//! Shapes (see `Shape`): a chain, a fan-out/fan-in (one source, n - 2 middle tasks, one sink),
//! a square lattice (each node depends on its left and upper neighbours; side = round(sqrt n))
//! and a random DAG (node i depends on min(i, 3) distinct earlier nodes, fixed seed).
//!
//! Every library runs on a current-thread tokio runtime. Each benchmark's throughput is the
//! number of tasks, so criterion's "time" divided by the task count is the cost per task;
//! `summary.py` prints that table from `target/criterion`.
//!
//! - `dagjoin/run`: `graph.run(())` on a graph built once (the engine reruns a built graph).
//! - `dagjoin/build+run`: `GraphBuilder` + `build()` + `run(())` every iteration.
//! - `dagx`, `dagrs`, `async_dag`: build + run every iteration, because none of them can run a
//!   built graph twice (dagx takes the task objects out of the graph on `run`, dagrs's channels
//!   are created by `add_edge` and consumed by a run, async_dag replaces each task by its
//!   value). dagx and async_dag take their inputs as fixed-arity tuples (at most 8 and 12), so
//!   the fan-in sink of n - 2 inputs cannot be expressed and that shape is skipped for them.
//!
//! Sizes: 1k and 10k tasks for all; 100k (`BENCH_100K=1`) for all but dagrs (about 5 s per
//! run of 100k tasks).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

/// A DAG in topological order: `deps[i]` lists the earlier nodes node `i` takes, in order.
struct Shape {
    name: &'static str,
    deps: Vec<Vec<u32>>,
}

impl Shape {
    fn len(&self) -> usize {
        self.deps.len()
    }

    fn max_in_degree(&self) -> usize {
        self.deps.iter().map(Vec::len).max().unwrap_or(0)
    }

    fn edges(&self) -> usize {
        self.deps.iter().map(Vec::len).sum()
    }

    /// The value of the last node, computed directly: every library must agree.
    fn expected_last(&self) -> u64 {
        let mut values: Vec<u64> = Vec::with_capacity(self.len());
        for deps in &self.deps {
            values.push(task_value(deps.iter().map(|&d| values[d as usize])));
        }
        *values.last().unwrap()
    }
}

/// What every task computes: 1 without inputs, otherwise the wrapping sum of its inputs.
fn task_value(inputs: impl Iterator<Item = u64>) -> u64 {
    let mut any = false;
    let mut sum = 0_u64;
    for x in inputs {
        any = true;
        sum = sum.wrapping_add(x);
    }
    if any {
        sum
    } else {
        1
    }
}

fn chain(n: usize) -> Shape {
    let deps = (0..n)
        .map(|i| if i == 0 { vec![] } else { vec![i as u32 - 1] })
        .collect();
    Shape { name: "chain", deps }
}

fn fan(n: usize) -> Shape {
    let mut deps = vec![vec![]];
    deps.extend((1..n - 1).map(|_| vec![0]));
    deps.push((1..n as u32 - 1).collect());
    Shape { name: "fan", deps }
}

fn lattice(n: usize) -> Shape {
    let side = (n as f64).sqrt().round() as usize;
    let mut deps = Vec::with_capacity(side * side);
    for i in 0..side {
        for j in 0..side {
            let mut d = Vec::new();
            if j > 0 {
                d.push((i * side + j - 1) as u32);
            }
            if i > 0 {
                d.push(((i - 1) * side + j) as u32);
            }
            deps.push(d);
        }
    }
    Shape { name: "lattice", deps }
}

fn random(n: usize) -> Shape {
    // splitmix64, fixed seed.
    let mut state = 0x5eed_da90_u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let deps = (0..n)
        .map(|i| {
            let mut d: Vec<u32> = Vec::with_capacity(3);
            while d.len() < i.min(3) {
                let p = (next() % i as u64) as u32;
                if !d.contains(&p) {
                    d.push(p);
                }
            }
            d
        })
        .collect();
    Shape {
        name: "random",
        deps,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// dagjoin (dag-engine, typed builder)
// ---------------------------------------------------------------------------------------------

mod dagjoin {
    use super::Shape;
    use dag_engine::{Graph, GraphBuilder, Handle};

    pub fn build(shape: &Shape) -> (Graph<()>, Handle<u64>) {
        let mut g = GraphBuilder::<()>::new();
        let mut h: Vec<Handle<u64>> = Vec::with_capacity(shape.len());
        for deps in &shape.deps {
            let at = |k: usize| h[deps[k] as usize];
            let handle = match deps.len() {
                0 => g.add(|| async { 1_u64 }, ()),
                1 => g.add(|a: u64| async move { a }, at(0)),
                2 => g.add(
                    |a: u64, b: u64| async move { a.wrapping_add(b) },
                    (at(0), at(1)),
                ),
                3 => g.add(
                    |a: u64, b: u64, c: u64| async move { a.wrapping_add(b).wrapping_add(c) },
                    (at(0), at(1), at(2)),
                ),
                _ => g.add(
                    |v: Vec<u64>| async move { v.iter().fold(0_u64, |s, x| s.wrapping_add(*x)) },
                    deps.iter().map(|&d| h[d as usize]).collect::<Vec<_>>(),
                ),
            };
            h.push(handle);
        }
        (g.build().unwrap(), *h.last().unwrap())
    }

    pub async fn run(graph: &Graph<()>, last: &Handle<u64>) -> u64 {
        let report = graph.run(()).await;
        *report.get(last).unwrap()
    }

    pub async fn build_run(shape: &Shape) -> u64 {
        let (graph, last) = build(shape);
        run(&graph, &last).await
    }
}

// ---------------------------------------------------------------------------------------------
// dagx 0.3
// ---------------------------------------------------------------------------------------------

mod dagx_peer {
    use super::Shape;
    use dagx::{task, DagRunner, Task, TaskHandle};

    pub struct Src;
    #[task]
    impl Src {
        async fn run() -> u64 {
            1
        }
    }

    pub struct One;
    #[task]
    impl One {
        async fn run(a: &u64) -> u64 {
            *a
        }
    }

    pub struct Two;
    #[task]
    impl Two {
        async fn run(a: &u64, b: &u64) -> u64 {
            a.wrapping_add(*b)
        }
    }

    pub struct Three;
    #[task]
    impl Three {
        async fn run(a: &u64, b: &u64, c: &u64) -> u64 {
            a.wrapping_add(*b).wrapping_add(*c)
        }
    }

    /// `None` when the shape needs more inputs per task than dagx's tuples take.
    pub fn supports(shape: &Shape) -> bool {
        shape.max_in_degree() <= 3
    }

    pub async fn build_run(shape: &Shape) -> u64 {
        let dag = DagRunner::new();
        let mut h: Vec<TaskHandle<u64>> = Vec::with_capacity(shape.len());
        for deps in &shape.deps {
            let at = |k: usize| &h[deps[k] as usize];
            let handle = match deps.len() {
                0 => dag.add_task(Src).depends_on(()),
                1 => dag.add_task(One).depends_on(at(0)),
                2 => dag.add_task(Two).depends_on((at(0), at(1))),
                3 => dag.add_task(Three).depends_on((at(0), at(1), at(2))),
                _ => unreachable!("checked by `supports`"),
            };
            h.push(handle);
        }
        dag.run(|fut| {
            tokio::spawn(fut);
        })
        .await
        .unwrap();
        dag.get(*h.last().unwrap()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// dagrs 0.9
// ---------------------------------------------------------------------------------------------

mod dagrs_peer {
    use super::{task_value, Shape};
    use dagrs::{
        Action, Content, DefaultNode, EnvVar, Graph, InChannels, Node, NodeId, NodeTable,
        OutChannels, Output,
    };
    use std::sync::Arc;

    struct Sum;

    #[dagrs::async_trait::async_trait]
    impl Action for Sum {
        async fn run(
            &self,
            in_channels: &mut InChannels,
            out_channels: &mut OutChannels,
            _env: Arc<EnvVar>,
        ) -> Output {
            let inputs = in_channels
                .map(|content| *content.unwrap().into_inner::<u64>().unwrap())
                .await;
            let value = task_value(inputs.into_iter());
            out_channels.broadcast(Content::new(value)).await;
            Output::Out(Some(Content::new(value)))
        }
    }

    pub async fn build_run(shape: &Shape) -> u64 {
        let mut table = NodeTable::new();
        let mut graph = Graph::new();
        let mut ids: Vec<NodeId> = Vec::with_capacity(shape.len());
        for i in 0..shape.len() {
            let node = DefaultNode::with_action(format!("t{i}"), Sum, &mut table);
            ids.push(node.id());
            graph.add_node(node).unwrap();
        }
        let mut successors: Vec<Vec<NodeId>> = vec![Vec::new(); shape.len()];
        for (i, deps) in shape.deps.iter().enumerate() {
            for &d in deps {
                successors[d as usize].push(ids[i]);
            }
        }
        for (i, succ) in successors.into_iter().enumerate() {
            if !succ.is_empty() {
                graph.add_edge(ids[i], succ).unwrap();
            }
        }
        graph.set_env(EnvVar::new(table));
        graph.async_start().await.unwrap();
        let last = *ids.last().unwrap();
        *graph.get_results::<u64>()[&last].clone().unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// async_dag 0.1
// ---------------------------------------------------------------------------------------------

mod async_dag_peer {
    use super::Shape;
    use async_dag::{Graph, NodeIndex};

    pub fn supports(shape: &Shape) -> bool {
        shape.max_in_degree() <= 3
    }

    pub async fn build_run(shape: &Shape) -> u64 {
        let mut graph = Graph::new();
        let mut ids: Vec<NodeIndex> = Vec::with_capacity(shape.len());
        for deps in &shape.deps {
            let id = match deps.len() {
                0 => graph.add_task(|| async { 1_u64 }),
                1 => graph.add_task(|a: u64| async move { a }),
                2 => graph.add_task(|a: u64, b: u64| async move { a.wrapping_add(b) }),
                3 => graph.add_task(|a: u64, b: u64, c: u64| async move {
                    a.wrapping_add(b).wrapping_add(c)
                }),
                _ => unreachable!("checked by `supports`"),
            };
            for (k, &d) in deps.iter().enumerate() {
                graph
                    .update_dependency(ids[d as usize], id, k as u8)
                    .unwrap();
            }
            ids.push(id);
        }
        graph.run().await;
        graph.get_value::<u64>(*ids.last().unwrap()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// The benchmarks
// ---------------------------------------------------------------------------------------------

fn sizes() -> Vec<usize> {
    let mut sizes = vec![1_000, 10_000];
    if std::env::var_os("BENCH_100K").is_some() {
        sizes.push(100_000);
    }
    sizes
}

fn only(lib: &str) -> bool {
    std::env::var("BENCH_LIBS").map_or(true, |libs| libs.split(',').any(|l| l == lib))
}

fn overhead(c: &mut Criterion) {
    let rt = runtime();
    for make in [chain, fan, lattice, random] {
        for &n in &sizes() {
            let shape = Arc::new(make(n));
            let tasks = shape.len();
            let expected = shape.expected_last();
            eprintln!(
                "{} {n}: {tasks} tasks, {} edges, max in-degree {}",
                shape.name,
                shape.edges(),
                shape.max_in_degree()
            );
            let mut group = c.benchmark_group(format!("{}/{n}", shape.name));
            group.throughput(Throughput::Elements(tasks as u64));
            group.sample_size(10);
            group.warm_up_time(Duration::from_millis(500));
            group.measurement_time(Duration::from_secs(if n >= 100_000 { 8 } else { 3 }));

            // dagjoin: run a prebuilt graph, and build + run.
            if only("dagjoin") {
                let (graph, last) = dagjoin::build(&shape);
                assert_eq!(rt.block_on(dagjoin::run(&graph, &last)), expected);
                group.bench_function(BenchmarkId::new("dagjoin-run", n), |b| {
                    b.iter(|| black_box(rt.block_on(dagjoin::run(&graph, &last))));
                });
                drop(graph);
                group.bench_function(BenchmarkId::new("dagjoin-build+run", n), |b| {
                    b.iter(|| black_box(rt.block_on(dagjoin::build_run(&shape))));
                });
            }

            let big = n >= 100_000;
            if only("dagx") && dagx_peer::supports(&shape) {
                assert_eq!(rt.block_on(dagx_peer::build_run(&shape)), expected);
                group.bench_function(BenchmarkId::new("dagx-build+run", n), |b| {
                    b.iter(|| black_box(rt.block_on(dagx_peer::build_run(&shape))));
                });
            }
            if only("dagrs") && !big {
                assert_eq!(rt.block_on(dagrs_peer::build_run(&shape)), expected);
                group.bench_function(BenchmarkId::new("dagrs-build+run", n), |b| {
                    b.iter(|| black_box(rt.block_on(dagrs_peer::build_run(&shape))));
                });
            }
            if only("async_dag") && async_dag_peer::supports(&shape) {
                assert_eq!(rt.block_on(async_dag_peer::build_run(&shape)), expected);
                group.bench_function(BenchmarkId::new("async_dag-build+run", n), |b| {
                    b.iter(|| black_box(rt.block_on(async_dag_peer::build_run(&shape))));
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, overhead);
criterion_main!(benches);
