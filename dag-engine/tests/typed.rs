//! The typed builder: the seed graph's schedule, runs with different parameters (also at
//! once), values by handle, inputs in order, duplicate and unit inputs, names, handles from
//! another builder.

mod common;

use std::time::Duration;

use common::{check_seed_report, Log};
use dagjoin::runtime::{
    BuildProblem, Graph, GraphBuilder, Handle, Status, TaskOptions, ValueError,
};

/// The seed graph's parameter: a log, and a factor the values depend on.
#[derive(Clone)]
struct Ctx {
    log: Log,
    scale: u32,
}

async fn fast_task_a(ctx: Ctx) -> u32 {
    ctx.log.work("fast_task_a", 100).await;
    ctx.scale
}

async fn slow_task_b(ctx: Ctx, a: u32) -> u32 {
    ctx.log.work("slow_task_b", 500).await;
    a + 10
}

async fn slow_task_a(ctx: Ctx) -> u32 {
    ctx.log.work("slow_task_a", 1000).await;
    2 * ctx.scale
}

async fn fast_task_b(ctx: Ctx) -> u32 {
    ctx.log.work("fast_task_b", 100).await;
    3
}

async fn fast_task_c(ctx: Ctx, sa: u32, fb: u32) -> u32 {
    ctx.log.work("fast_task_c", 100).await;
    sa * fb
}

async fn end_task(ctx: Ctx, b: u32, c: u32) -> u32 {
    ctx.log.work("end_task", 100).await;
    b + c
}

fn seed() -> (Graph<Ctx>, Handle<u32>) {
    let mut g = GraphBuilder::new();
    let ctx = g.param();
    let a = g.add(fast_task_a, ctx);
    let b = g.add(slow_task_b, (ctx, a));
    let sa = g.add(slow_task_a, ctx);
    let fb = g.add(fast_task_b, ctx);
    let c = g.add(fast_task_c, (ctx, sa, fb));
    let end = g.add(end_task, (ctx, b, c));
    (g.build().unwrap(), end)
}

/// `end` for a seed run with `scale`: (scale + 10) + 2 * scale * 3.
fn seed_end(scale: u32) -> u32 {
    scale + 10 + 6 * scale
}

#[tokio::test(start_paused = true)]
async fn seed_graph_starts_every_task_at_its_earliest() {
    let (graph, end) = seed();
    assert_eq!(
        graph.task_names().collect::<Vec<_>>(),
        [
            "fast_task_a",
            "slow_task_b",
            "slow_task_a",
            "fast_task_b",
            "fast_task_c",
            "end_task"
        ]
    );
    let log = Log::new();
    let report = graph
        .run(Ctx {
            log: log.clone(),
            scale: 1,
        })
        .await;
    check_seed_report(&report, &log);
    assert_eq!(report.get(&end).unwrap(), &17);
    assert_eq!(report.value::<u32>("slow_task_b").unwrap(), &11);
    assert_eq!(report.count(Status::Completed), 6);
}

#[tokio::test(start_paused = true)]
async fn runs_at_once_with_different_parameters() {
    let (graph, end) = seed();
    let (one, two) = (Log::new(), Log::new());
    let (first, second) = tokio::join!(
        graph.run(Ctx {
            log: one.clone(),
            scale: 1
        }),
        graph.run(Ctx {
            log: two.clone(),
            scale: 5
        }),
    );
    check_seed_report(&first, &one);
    check_seed_report(&second, &two);
    assert_eq!(first.get(&end).unwrap(), &seed_end(1));
    assert_eq!(second.get(&end).unwrap(), &seed_end(5));
    assert_ne!(first.run_key(), second.run_key());
    // Both ran in the same 1.2 s.
    assert_eq!(first.started(), second.started());
    assert_eq!(first.finished(), second.finished());
}

#[test]
fn runs_in_parallel_on_worker_threads() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mut g = GraphBuilder::<u64>::new();
    let x = g.param();
    let squared = g.add(|x: u64| async move { x * x }, x);
    let doubled = g.add_blocking(|x: u64| x * 2, x);
    let sum = g.add(|a: u64, b: u64| async move { a + b }, (squared, doubled));
    let graph = g.build().unwrap();
    runtime.block_on(async {
        let runs: Vec<_> = (0..16_u64)
            .map(|x| tokio::spawn(graph.clone().run(x)))
            .collect();
        for (x, run) in (0..16_u64).zip(runs) {
            let report = run.await.unwrap();
            assert_eq!(report.get(&sum).unwrap(), &(x * x + 2 * x));
        }
    });
}

#[tokio::test]
async fn inputs_come_in_order_with_duplicates_and_units() {
    let mut g = GraphBuilder::<u32>::new();
    let p = g.param();
    let s = g.add(|x: u32| async move { format!("s{x}") }, p);
    let unit = g.add(|| async {}, ());
    let t = g.add(|x: u32| async move { x * 10 }, p);
    let ordered = g.add(
        |a: String, u: (), x: u32, b: String, t: u32| async move { format!("{a}{u:?}{x}{b}{t}") },
        (s, unit, p, s, t),
    );
    let reversed = g.add(
        |t: u32, x: u32, u: (), a: String| async move { format!("{t}{x}{u:?}{a}") },
        (t, p, unit, s),
    );
    let single = g.add(|a: String| async move { a.len() }, (s,));
    let many = g.add(
        |a: u32, b: u32, c: u32, d: u32, e: u32, f: u32, g: u32, h: u32| async move {
            [a, b, c, d, e, f, g, h].iter().sum::<u32>()
        },
        (p, t, p, t, p, t, p, t),
    );
    let all = g.add(|xs: Vec<u32>| async move { xs }, vec![p, t, p]);
    let graph = g.build().unwrap();
    let report = graph.run(5).await;
    report.check().unwrap();
    assert_eq!(report.get(&ordered).unwrap(), "s5()5s550");
    assert_eq!(report.get(&reversed).unwrap(), "505()s5");
    assert_eq!(report.get(&unit).unwrap(), &());
    assert_eq!(report.get(&single).unwrap(), &2);
    assert_eq!(report.get(&many).unwrap(), &(4 * 5 + 4 * 50));
    assert_eq!(report.get(&all).unwrap(), &[5, 50, 5]);
    assert_eq!(
        report.get(&p).unwrap(),
        &5,
        "the parameter's handle reads the parameter"
    );
    let name = |h: &dyn Fn(&dagjoin::runtime::Graph<u32>) -> String| h(&graph);
    let (s, unit, t) = (
        name(&|g| g.name(&s).unwrap().to_owned()),
        name(&|g| g.name(&unit).unwrap().to_owned()),
        name(&|g| g.name(&t).unwrap().to_owned()),
    );
    assert_eq!(
        graph.dependencies(graph.name(&ordered).unwrap()).unwrap(),
        [&*s, &*unit, "param", &*s, &*t]
    );
    // Closures are named after where they were added, each its own name.
    assert_eq!(s, "closure@dag-engine/tests/typed.rs:147:15");
    assert_eq!(unit, "closure@dag-engine/tests/typed.rs:148:18");
}

async fn fetch(x: u32) -> u32 {
    x + 1
}

fn generic_task<T: Clone + Send + Sync + 'static>(x: T) -> T {
    x
}

#[tokio::test]
async fn tasks_are_named_after_their_functions() {
    let mut g = GraphBuilder::<u32>::new();
    let param = g.param();
    let first = g.add(fetch, param);
    let second = g.add(fetch, first);
    let third = g.add(fetch, second);
    let closure = g.add(|x: u32| async move { x }, third);
    let line = line!() - 1;
    let blocking = g.add_blocking(generic_task::<u32>, closure);
    assert_eq!(g.name(&second), Some("fetch#2"));
    g.rename(&third, "third");
    let last = g.add(fetch, blocking);
    let graph = g.build().unwrap();
    assert_eq!(
        graph.task_names().collect::<Vec<_>>(),
        // Suffixes only go up: `fetch#3` was the name of `third`.
        [
            "fetch",
            "fetch#2",
            "third",
            &format!("closure@dag-engine/tests/typed.rs:{line}:21"),
            "generic_task",
            "fetch#4"
        ]
    );
    assert_eq!(graph.name(&param).unwrap(), "param");
    let report = graph.run(0).await;
    assert_eq!(report.get(&last).unwrap(), &4);
    assert_eq!(report.value::<u32>("third").unwrap(), &3);
    assert!(report.value::<u32>("fetch#3").is_err());
}

#[test]
fn renaming_to_a_taken_name_fails_the_build() {
    let mut g = GraphBuilder::<u32>::new();
    let p = g.param();
    let a = g.add(fetch, p);
    let b = g.add(fetch, a);
    g.rename(&b, "fetch");
    g.options(&p, TaskOptions::new().retries(1));
    let error = g.build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "task `fetch` is defined more than once; options are given for `param`, not a task"
    );
}

#[tokio::test]
async fn handles_from_another_builder_are_errors() {
    let mut first = GraphBuilder::<u32>::new();
    let p1 = first.param();
    let a1 = first.add(fetch, p1);

    let mut second = GraphBuilder::<u32>::new();
    let p2 = second.param();
    let a2 = second.add(|x: u32| async move { x * 100 }, p2);
    // `a1` is node 1 of `first`, like `a2` of `second`: only the builder tells them apart.
    second
        .named("sum")
        .add(|a: u32, b: u32| async move { a + b }, (a2, a1));
    second.options(&a1, TaskOptions::new().retries(1));
    let error = second.build().unwrap_err();
    let [BuildProblem::ForeignHandle {
        site,
        builder,
        index: 1,
        this,
    }, BuildProblem::ForeignHandle { site: options, .. }] = error.problems()
    else {
        panic!("unexpected problems: {error:?}")
    };
    assert_eq!(site, "input 2 of task `sum`");
    assert_eq!(options, "the handle given to `options`");
    assert!(error.to_string().starts_with(&format!(
        "input 2 of task `sum` is a handle from another graph builder (node 1 of builder \
         {builder}, given to builder {this})"
    )));

    // A report refuses a handle of another builder, even of the same type and node.
    let graph = first.build().unwrap();
    assert_eq!(*builder, graph.id());
    let report = graph.run(1).await;
    assert_eq!(report.get(&a1).unwrap(), &2);
    let error = report.get(&a2).unwrap_err();
    assert!(matches!(
        error,
        ValueError::ForeignHandle {
            handle_index: 1,
            ..
        }
    ));
    assert!(error
        .to_string()
        .starts_with("the handle is from another graph builder"));
    assert!(report.task_of(&a2).is_err());
    assert!(graph.name(&a2).is_err());
}

#[tokio::test]
async fn fallible_tasks_fail_with_their_error() {
    let mut g = GraphBuilder::<u32>::new();
    let p = g.param();
    let checked = g.named("checked").try_add(
        |x: u32| async move {
            100_u32
                .checked_div(x)
                .ok_or_else(|| std::io::Error::other("zero"))
        },
        p,
    );
    let parsed = g
        .named("parsed")
        .try_add_blocking(|x: u32| format!("{x}").parse::<u8>(), p);
    let after = g.add(|x: u32| async move { x + 1 }, checked);
    let graph = g.build().unwrap();

    let report = graph.run(4).await;
    report.check().unwrap();
    assert_eq!(report.get(&after).unwrap(), &26);
    assert_eq!(report.get(&parsed).unwrap(), &4);

    let report = graph.run(0).await;
    assert_eq!(report.task_of(&checked).unwrap().status(), Status::Failed);
    assert_eq!(report.task_of(&after).unwrap().status(), Status::Skipped);
    assert_eq!(
        report.task_of(&after).unwrap().skipped_because(),
        Some("checked")
    );
    assert!(report
        .get(&after)
        .unwrap_err()
        .to_string()
        .contains("was skipped"));
    let error = report.task_of(&checked).unwrap().error().unwrap();
    assert!(error.downcast_ref::<std::io::Error>().is_some());

    let report = graph.run(300).await;
    assert_eq!(
        format!("{:#}", anyhow::Error::new(report.check().unwrap_err())),
        "task `parsed` failed: number too large to fit in target type"
    );
    assert_eq!(report.get(&after).unwrap(), &1);
}

#[tokio::test(start_paused = true)]
async fn options_set_after_adding_apply() {
    let mut g = GraphBuilder::<()>::new();
    let slow = g.named("slow").add(
        || async {
            tokio::time::sleep(Duration::from_secs(10)).await;
        },
        (),
    );
    g.options(&slow, TaskOptions::new().timeout(Duration::from_secs(1)));
    let report = g.build().unwrap().run(()).await;
    assert_eq!(report.makespan(), Duration::from_secs(1));
    assert_eq!(
        format!("{:#}", anyhow::Error::new(report.check().unwrap_err())),
        "task `slow` failed: timed out after 1s"
    );
}

#[test]
fn graphs_runs_reports_and_errors_cross_threads() {
    fn send<T: Send + 'static>() {}
    fn send_sync<T: Send + Sync + 'static>() {}
    // Whatever the parameter: a graph only hands it to tasks.
    send_sync::<Graph<std::rc::Rc<u32>>>();
    send_sync::<Graph<u32>>();
    send::<dagjoin::runtime::Run>();
    send_sync::<dagjoin::runtime::Report>();
    send_sync::<dagjoin::runtime::BuildError>();
    send_sync::<dagjoin::runtime::RunError>();
    send_sync::<dagjoin::runtime::PlanError>();
    send_sync::<ValueError>();
    send_sync::<Handle<std::rc::Rc<u32>>>();
}

#[test]
fn a_blocking_task_done_before_its_first_poll_readies_async_users() {
    // On a multi-thread runtime the blocking pool may finish a task before the run first
    // polls it, so the task ends inside the run's start of tasks; its async user must still
    // start, in every run.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut g = GraphBuilder::<u64>::new();
    let x = g.param();
    let doubled = g.add_blocking(|x: u64| x * 2, x);
    let plus_one = g.add(|d: u64| async move { d + 1 }, doubled);
    let graph = g.build().unwrap();
    runtime.block_on(async {
        for x in 0..3000_u64 {
            let report = graph.run(x).await;
            assert_eq!(report.get(&plus_one), Ok(&(2 * x + 1)), "run {x}");
        }
    });
}
