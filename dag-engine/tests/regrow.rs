//! Reruns and names of graphs that grew: what `again` may reuse, and names that must stay
//! unique.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dagjoin::runtime::{GraphBuilder, Growth, Rule, Status, When};
use tokio::time::sleep;

mod common;
use common::after;

// Rule names: `r`, `r#2` (given), `r`: the third gets a name of its own.
#[tokio::test(start_paused = true)]
async fn rule_names_unique_even_with_literal_suffix() {
    let mut g = GraphBuilder::<()>::new();
    let a = g.named("a").add(|| async { 1_u32 }, ());
    for name in ["r", "r#2", "r"] {
        g.rule(
            Rule::new(When::completed(a), move |grow: &mut Growth<'_, ()>| {
                grow.add(|| async { 1_u32 }, ());
                Ok(())
            })
            .named(name),
        );
    }
    let report = g.build().unwrap().run(()).await;
    let names: Vec<_> = report.rules().map(|r| r.name().to_owned()).collect();
    let mut dedup = names.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), names.len(), "rule names not unique: {names:?}");
    report.check().unwrap();
}

// A step that reads a task it adds itself, in a rerun.
#[tokio::test(start_paused = true)]
async fn again_after_a_step_read_a_task_it_adds() {
    let mut g = GraphBuilder::<()>::new();
    g.named("s").grow(
        |grow: &mut Growth<'_, ()>| {
            let h = grow.named("t").add(|| async { 1_u32 }, ());
            assert!(grow.value(&h).is_err());
        },
        (),
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    let second = graph.again(&first).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(second.value::<u32>("t").unwrap(), &1);
}

// A grown map whose function changed (its step's input changed) runs its items again.
#[tokio::test(start_paused = true)]
async fn again_runs_the_items_of_a_grown_map_whose_step_changed() {
    let counter = Arc::new(AtomicU32::new(0));
    let mut g = GraphBuilder::<()>::new();
    let list = g.named("list").add(|| async { vec![1_u32, 2] }, ());
    let c = counter.clone();
    let mode = g.named("mode").add(
        move || std::future::ready(c.fetch_add(1, Ordering::SeqCst)),
        (),
    );
    g.named("s").grow(
        move |grow: &mut Growth<'_, ()>, mode: u32| {
            let factor = if mode == 0 { 10 } else { 100 };
            grow.named("m")
                .map(move |x: u32| async move { x * factor }, list);
        },
        mode,
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    assert_eq!(first.value::<Vec<u32>>("m").unwrap(), &vec![10, 20]);
    let second = graph.again(&first).reset(["mode"]).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(second.value::<u32>("mode").unwrap(), &1);
    assert_eq!(second.value::<Vec<u32>>("m").unwrap(), &vec![100, 200]);
}

// Resetting a map of the graph runs its items again.
#[tokio::test(start_paused = true)]
async fn again_reset_map_reruns_items() {
    let runs = Arc::new(AtomicU32::new(0));
    let mut g = GraphBuilder::<()>::new();
    let list = g.named("list").add(|| async { vec![1_u32, 2] }, ());
    let r = runs.clone();
    g.named("m").map(
        move |x: u32| {
            r.fetch_add(1, Ordering::SeqCst);
            async move { x }
        },
        list,
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let second = graph.again(&first).reset(["m"]).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        4,
        "reset map's items did not rerun"
    );
}

// A rule's tasks are built anew in a rerun: here their inputs differ (the rule fired later).
#[tokio::test(start_paused = true)]
async fn again_builds_the_tasks_of_a_rule_anew() {
    let counter = Arc::new(AtomicU32::new(0));
    let mut g = GraphBuilder::<()>::new();
    let c = counter.clone();
    // First run: 10 ms; second: 500 ms (it is reset), same value.
    let gate = g.named("gate").add(
        move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                sleep(Duration::from_millis(if n == 0 { 10 } else { 500 })).await;
            }
        },
        (),
    );
    let slow = g.named("slow").add(after(100, 5_u32), ());
    g.named("s").adds("t").grow(
        |grow: &mut Growth<'_, ()>, x: u32| {
            grow.named("t1")
                .tagged("t")
                .add(move || async move { x }, ());
        },
        slow,
    );
    g.rule(
        Rule::new(When::completed(gate), |grow: &mut Growth<'_, ()>| {
            let parts = grow.with_tag::<u32>("t")?;
            grow.named("sum")
                .add(|p: Vec<u32>| async move { p.iter().sum::<u32>() }, parts);
            Ok(())
        })
        .named("r"),
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    assert_eq!(first.value::<u32>("sum").unwrap(), &0);
    let second = graph.again(&first).reset(["gate"]).run(()).unwrap().await;
    second.check().unwrap();
    let sum = second.task("sum").unwrap();
    assert_eq!(sum.dependencies(), ["t1"]);
    assert_eq!(second.value::<u32>("sum").unwrap(), &5);
}

// An item's name is written without leading zeros: `m[01]` is no task.
#[tokio::test(start_paused = true)]
async fn item_name_with_leading_zero_is_not_a_task() {
    let mut g = GraphBuilder::<()>::new();
    let list = g.named("list").add(|| async { vec![1_u32, 2] }, ());
    g.named("m").map(|x: u32| async move { x * 7 }, list);
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    let t = report.task("m[01]");
    assert!(t.is_err(), "no task is called `m[01]`");
    assert!(report.value::<u32>("m[001]").is_err());
}

// A rule read a value that was not there in the first run; in the rerun it is.
#[tokio::test(start_paused = true)]
async fn again_builds_anew_what_a_rule_saw_differently() {
    let mut g = GraphBuilder::<()>::new();
    let a = g.named("a").add(after(10, 1_u32), ());
    g.named("b").add(after(100, 5_i32), ());
    g.rule(
        Rule::new(When::completed(a), |grow: &mut Growth<'_, ()>| {
            let seen = grow.value_of::<i32>("b").map_or(-1, |b| *b);
            grow.named("out").add(move || async move { seen }, ());
            Ok(())
        })
        .named("r"),
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    assert_eq!(first.value::<i32>("out").unwrap(), &-1);
    let second = graph.again(&first).run(()).unwrap().await;
    second.check().unwrap();
    // The rule saw b = 5 this time.
    assert_eq!(second.value::<i32>("out").unwrap(), &5);
}

// A rule named like a growth step gets a name of its own, so their tasks' names differ.
#[tokio::test(start_paused = true)]
async fn rule_named_like_a_step() {
    fn f() -> std::future::Ready<u32> {
        std::future::ready(1)
    }
    let mut g = GraphBuilder::<()>::new();
    let s = g.named("s").grow(
        |grow: &mut Growth<'_, ()>| {
            grow.add(f, ());
        },
        (),
    );
    g.rule(
        Rule::new(When::completed(s), |grow: &mut Growth<'_, ()>| {
            grow.add(f, ());
            Ok(())
        })
        .named("s"),
    );
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    let names: Vec<_> = report.tasks().map(|t| t.name().to_owned()).collect();
    assert_eq!(names, ["s", "s/f", "s#2/f"]);
    assert_eq!(report.rules().next().unwrap().name(), "s#2");
}

// A given name equal to a name the same step derives.
#[tokio::test(start_paused = true)]
async fn given_equal_to_own_derived() {
    fn f() -> std::future::Ready<u32> {
        std::future::ready(1)
    }
    let mut g = GraphBuilder::<()>::new();
    g.named("s").grow(
        |grow: &mut Growth<'_, ()>| {
            grow.add(f, ());
            grow.named("s/f").add(|| async { 2_u32 }, ());
        },
        (),
    );
    let report = g.build().unwrap().run(()).await;
    let e = report.task("s").unwrap().error().map(|e| format!("{e:#}"));
    assert!(e.unwrap().contains("`s/f`, a name another task has"));
}

// Added tasks waiting on an input that fails later are skipped, and so are their users.
#[tokio::test(start_paused = true)]
async fn waiters_skip_when_input_fails_later() {
    let mut g = GraphBuilder::<()>::new();
    let bad = g.named("bad").try_add(
        || async {
            sleep(Duration::from_millis(50)).await;
            anyhow::bail!("no") as anyhow::Result<u32>
        },
        (),
    );
    let good = g.named("good").add(after(10, 1_u32), ());
    g.named("s").grow(
        move |grow: &mut Growth<'_, ()>| {
            let x = grow
                .named("x")
                .add(|a: u32, b: u32| async move { a + b }, (good, bad));
            let y = grow.named("y").add(|x: u32| async move { x }, x);
            let _z = grow
                .named("z")
                .add(|y: u32, g: u32| async move { y + g }, (y, good));
            let w = grow.named("w").add(|g: u32| async move { g }, good);
            grow.named("v")
                .add(|w: u32, y: u32| async move { w + y }, (w, y));
            grow.named("u")
                .add(|b: u32, b2: u32| async move { b + b2 }, (bad, bad));
        },
        (),
    );
    let report = g.build().unwrap().run(()).await;
    for name in ["x", "y", "z", "v", "u"] {
        assert_eq!(
            report.task(name).unwrap().status(),
            Status::Skipped,
            "{name}"
        );
    }
    assert_eq!(report.value::<u32>("w").unwrap(), &1);
}

// A rule registered by a step whose input changed captures the new input.
#[tokio::test(start_paused = true)]
async fn a_rule_registered_by_a_changed_step_adds_fresh_tasks() {
    let counter = Arc::new(AtomicU32::new(0));
    let mut g = GraphBuilder::<()>::new();
    let c = counter.clone();
    let x = g.named("x").add(
        move || std::future::ready(c.fetch_add(1, Ordering::SeqCst)),
        (),
    );
    let a = g.named("a").add(|| async {}, ());
    g.named("s").grow(
        move |grow: &mut Growth<'_, ()>, x: u32| {
            grow.rule(
                Rule::new(When::completed(a), move |grow: &mut Growth<'_, ()>| {
                    grow.named("out").add(move || async move { x }, ());
                    Ok(())
                })
                .named("r"),
            );
        },
        x,
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    assert_eq!(first.value::<u32>("out").unwrap(), &0);
    let second = graph.again(&first).reset(["x"]).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(second.value::<u32>("x").unwrap(), &1);
    assert_eq!(second.value::<u32>("out").unwrap(), &1);
}

// A growth step added by a step whose input changed captures the new input.
#[tokio::test(start_paused = true)]
async fn a_step_added_by_a_changed_step_adds_fresh_tasks() {
    let counter = Arc::new(AtomicU32::new(0));
    let mut g = GraphBuilder::<()>::new();
    let c = counter.clone();
    let x = g.named("x").add(
        move || std::future::ready(c.fetch_add(1, Ordering::SeqCst)),
        (),
    );
    g.named("s").grow(
        move |grow: &mut Growth<'_, ()>, x: u32| {
            grow.named("inner").grow(
                move |grow: &mut Growth<'_, ()>| {
                    grow.named("leaf").add(move || async move { x }, ());
                },
                (),
            );
        },
        x,
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    let second = graph.again(&first).reset(["x"]).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(second.value::<u32>("leaf").unwrap(), &1);
}

// Skips reach added tasks through a failed growth step, a map and a timed-out task.
#[tokio::test(start_paused = true)]
async fn waiters_skip_through_steps_maps_and_timeouts() {
    use dagjoin::runtime::TaskOptions;
    let mut g = GraphBuilder::<()>::new();
    let slow = g.named("slow").add(after(30, 1_u32), ());
    let bad_step = g.named("bad_step").try_grow(
        |_grow: &mut Growth<'_, ()>, _s: u32| -> anyhow::Result<u32> {
            anyhow::bail!("step fails")
        },
        slow,
    );
    let list = g.named("list").add(after(20, vec![1_u32, 2, 3]), ());
    let m = g.named("m").try_map(
        |x: u32| async move {
            sleep(Duration::from_millis(10 * u64::from(x))).await;
            anyhow::ensure!(x != 3, "bad item");
            Ok(x)
        },
        list,
    );
    g.named("s").grow(
        move |grow: &mut Growth<'_, ()>| {
            let t = grow
                .named("to")
                .with_options(TaskOptions::new().timeout(Duration::from_millis(5)))
                .add(after(100, 1_u32), ());
            grow.named("after_step")
                .add(|x: u32| async move { x }, bad_step);
            grow.named("after_map")
                .add(|v: Vec<u32>| async move { v.len() }, m);
            let at = grow.named("after_to").add(|x: u32| async move { x }, t);
            grow.named("after_after_to")
                .add(|x: u32| async move { x }, at);
            grow.named("mixed").add(
                |a: u32, v: Vec<u32>| async move { a + v.iter().sum::<u32>() },
                (slow, m),
            );
        },
        (),
    );
    let report = g.build().unwrap().run(()).await;
    for name in [
        "after_step",
        "after_map",
        "after_to",
        "after_after_to",
        "mixed",
        "m",
    ] {
        assert_eq!(
            report.task(name).unwrap().status(),
            Status::Skipped,
            "{name}"
        );
    }
}
