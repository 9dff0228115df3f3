//! Reruns: only what did not complete, with reused values (the same `Arc`s, no calls); reset
//! tasks and their descendants; tasks marked done; a subset; a replaced function; the errors
//! that stop a rerun before anything starts.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Counter;
use dagjoin::runtime::{
    Graph, GraphBuilder, NamedGraphBuilder, PlanError, Report, RunOptions, Status,
};

/// `a -> b -> c`, `a -> d`, and `e` alone; `b` fails while `broken` is set. Every task's value
/// is its name followed by its inputs' values; `calls` counts each task's calls.
struct Fixture {
    graph: Graph<()>,
    broken: Arc<AtomicBool>,
    calls: Arc<Mutex<HashMap<&'static str, usize>>>,
}

impl Fixture {
    fn new() -> Self {
        let broken = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(Mutex::new(HashMap::new()));
        let mut builder = NamedGraphBuilder::new();
        for name in ["a", "b", "c", "d", "e"] {
            let broken = broken.clone();
            let calls = calls.clone();
            builder.task(name, move |inputs| {
                *calls.lock().unwrap().entry(name).or_insert(0) += 1;
                let fails = name == "b" && broken.load(Ordering::SeqCst);
                async move {
                    anyhow::ensure!(!fails, "{name} is broken");
                    let mut value = name.to_owned();
                    for i in 0..inputs.len() {
                        value.push_str(&inputs.at::<String>(i)?);
                    }
                    Ok(value)
                }
            });
        }
        builder
            .depends("b", ["a"])
            .depends("c", ["b"])
            .depends("d", ["a"]);
        Self {
            graph: builder.build().unwrap(),
            broken,
            calls,
        }
    }

    /// The calls of each task since the last time.
    fn calls(&self) -> [usize; 5] {
        let mut calls = self.calls.lock().unwrap();
        let counts = ["a", "b", "c", "d", "e"].map(|name| calls.get(name).copied().unwrap_or(0));
        calls.clear();
        counts
    }
}

fn same_value(first: &Report, second: &Report, name: &str) -> bool {
    Arc::ptr_eq(
        first.task(name).unwrap().raw_value().unwrap(),
        second.task(name).unwrap().raw_value().unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn again_runs_only_the_failed_tasks_and_their_descendants() {
    let fixture = Fixture::new();
    let first = fixture.graph.run(()).await;
    assert_eq!(fixture.calls(), [1, 1, 0, 1, 1]);
    assert_eq!(first.task("c").unwrap().status(), Status::Skipped);

    fixture.broken.store(false, Ordering::SeqCst);
    let second = fixture.graph.again(&first).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(fixture.calls(), [0, 1, 1, 0, 0], "only b and c ran");
    assert_eq!(second.value::<String>("c").unwrap(), "cba");
    for name in ["a", "d", "e"] {
        let task = second.task(name).unwrap();
        assert!(task.reused() && !task.ran(), "{name}");
        assert!(
            same_value(&first, &second, name),
            "{name} is the same value"
        );
        assert_eq!(task.started(), None);
    }
    assert!(second.task("b").unwrap().ran());
    assert_ne!(first.run_key(), second.run_key());

    // Nothing left to do: a rerun of a complete run runs nothing.
    let third = fixture.graph.again(&second).run(()).unwrap().await;
    assert_eq!(fixture.calls(), [0; 5]);
    assert_eq!(third.count(Status::Completed), 5);
    assert!(same_value(&second, &third, "c"));
    assert!(third.critical_path().is_empty());
    assert_eq!(third.makespan(), Duration::ZERO);
}

#[tokio::test]
async fn reset_reruns_tasks_and_their_descendants() {
    let fixture = Fixture::new();
    fixture.broken.store(false, Ordering::SeqCst);
    let first = fixture.graph.run(()).await;
    first.check().unwrap();
    fixture.calls();

    let second = fixture
        .graph
        .again(&first)
        .reset(["b"])
        .run(())
        .unwrap()
        .await;
    assert_eq!(fixture.calls(), [0, 1, 1, 0, 0]);
    assert!(!same_value(&first, &second, "c"));
    assert!(same_value(&first, &second, "d"));

    let third = fixture
        .graph
        .again(&second)
        .reset(["a", "e"])
        .run(())
        .unwrap()
        .await;
    assert_eq!(fixture.calls(), [1; 5]);
    third.check().unwrap();
}

#[tokio::test]
async fn a_replaced_function_reruns_with_reset() {
    let fixture = Fixture::new();
    let first = fixture.graph.run(()).await;
    fixture.calls();
    let fixed = fixture
        .graph
        .replace("b", |inputs| async move {
            Ok(format!("fixed {}", inputs.get::<String>("a")?))
        })
        .unwrap();
    assert_eq!(fixed.id(), fixture.graph.id());
    // The report of the original graph fits the replaced one.
    let second = fixed.again(&first).run(()).unwrap().await;
    assert_eq!(
        fixture.calls(),
        [0, 0, 1, 0, 0],
        "b's new function ran, not the old"
    );
    assert_eq!(second.value::<String>("c").unwrap(), "cfixed a");
    // The original graph is unchanged.
    let third = fixture
        .graph
        .again(&second)
        .reset(["b"])
        .run(())
        .unwrap()
        .await;
    assert_eq!(fixture.calls(), [0, 1, 0, 0, 0]);
    assert_eq!(third.task("c").unwrap().status(), Status::Skipped);

    assert_eq!(
        fixture
            .graph
            .replace("b", |_| async { Ok(1_u32) })
            .unwrap_err()
            .to_string(),
        "task `b` produces a `alloc::string::String`, but a `u32` was given for it"
    );
    assert!(matches!(
        fixture.graph.replace_blocking("zz", |_| Ok(String::new())),
        Err(PlanError::UnknownTask { .. })
    ));
    let blocking = fixture
        .graph
        .replace_blocking("b", |inputs| {
            Ok(format!("sync {}", inputs.get::<String>("a")?))
        })
        .unwrap();
    let fourth = blocking.again(&first).run(()).unwrap().await;
    assert_eq!(fourth.value::<String>("c").unwrap(), "csync a");
}

#[tokio::test]
async fn mark_done_supplies_a_value_without_running() {
    let fixture = Fixture::new();
    let first = fixture.graph.run(()).await;
    fixture.calls();
    let second = fixture
        .graph
        .again(&first)
        .mark_done("b", String::from("B"))
        .run(())
        .unwrap()
        .await;
    second.check().unwrap();
    assert_eq!(fixture.calls(), [0, 0, 1, 0, 0]);
    assert!(second.task("b").unwrap().marked_done());
    assert_eq!(second.value::<String>("c").unwrap(), "cB");

    // Marking a completed task reruns its descendants with the new value.
    fixture.broken.store(false, Ordering::SeqCst);
    let third = fixture
        .graph
        .again(&second)
        .mark_done("a", String::from("A"))
        .run(())
        .unwrap()
        .await;
    assert_eq!(fixture.calls(), [0, 1, 1, 1, 0]);
    assert_eq!(third.value::<String>("c").unwrap(), "cbA");

    assert_eq!(
        fixture
            .graph
            .again(&first)
            .mark_done("b", 7_u8)
            .run(())
            .unwrap_err(),
        PlanError::TypeMismatch {
            task: "b".into(),
            expected: "alloc::string::String",
            given: "u8",
        }
    );
}

#[tokio::test]
async fn only_runs_a_subset_with_reused_inputs() {
    let fixture = Fixture::new();
    fixture.broken.store(false, Ordering::SeqCst);
    let first = fixture.graph.run(()).await;
    fixture.calls();

    let second = fixture
        .graph
        .again(&first)
        .only(["c", "e"])
        .run(())
        .unwrap()
        .await;
    assert_eq!(fixture.calls(), [0, 0, 1, 0, 1]);
    assert!(second.task("b").unwrap().reused());
    assert!(!same_value(&first, &second, "c"));

    // With `b` reset, `d` (which does not depend on it) still has its value, `c` has none.
    let third = fixture
        .graph
        .again(&first)
        .reset(["b"])
        .only(["b", "d"])
        .run(())
        .unwrap()
        .await;
    assert_eq!(fixture.calls(), [0, 1, 0, 1, 0]);
    assert_eq!(third.task("c").unwrap().status(), Status::NotRun);
    assert!(third.task("e").unwrap().reused());
}

#[tokio::test]
async fn a_missing_input_fails_before_anything_starts() {
    let fixture = Fixture::new();
    let first = fixture.graph.run(()).await;
    fixture.calls();
    fixture.broken.store(false, Ordering::SeqCst);

    // `b` failed, so `c` alone cannot run.
    let error = fixture
        .graph
        .again(&first)
        .only(["e", "c"])
        .run(())
        .unwrap_err();
    assert_eq!(
        error,
        PlanError::MissingInput {
            task: "c".into(),
            dependency: "b".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "task `c` cannot run: its dependency `b` has no result and does not run; reset it, \
         choose it to run, or mark it done"
    );
    // A reset dependency has no result either.
    let error = fixture
        .graph
        .again(&first)
        .reset(["a"])
        .only(["b"])
        .run(())
        .unwrap_err();
    assert_eq!(
        error.to_string().split(':').next(),
        Some("task `b` cannot run")
    );
    assert_eq!(fixture.calls(), [0; 5], "nothing ran");

    let errors = [
        fixture
            .graph
            .again(&first)
            .reset(["zz"])
            .run(())
            .unwrap_err(),
        fixture
            .graph
            .again(&first)
            .only(["zz"])
            .run(())
            .unwrap_err(),
        fixture
            .graph
            .again(&first)
            .mark_done("zz", 1)
            .run(())
            .unwrap_err(),
    ];
    for error in errors {
        assert_eq!(error.to_string(), "there is no task `zz`");
    }
    assert_eq!(
        fixture
            .graph
            .again(&first)
            .mark_done("e", String::new())
            .only(["e"])
            .run(())
            .unwrap_err()
            .to_string(),
        "task `e` is marked done and also chosen to run; do one or the other"
    );

    let other = Fixture::new();
    let error = other.graph.again(&first).run(()).unwrap_err();
    assert!(matches!(error, PlanError::ForeignReport { .. }));
    assert_eq!(fixture.calls(), [0; 5]);
    assert_eq!(other.calls(), [0; 5]);
}

#[tokio::test(start_paused = true)]
async fn again_after_fail_fast_runs_the_cancelled_and_not_run_tasks() {
    let calls = Counter::default();
    let fail = Arc::new(AtomicBool::new(true));
    let mut g = GraphBuilder::<()>::new();
    let failing = {
        let fail = fail.clone();
        g.try_add(
            move || {
                let fail = fail.load(Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    if fail {
                        anyhow::bail!("first time")
                    }
                    Ok(1_u32)
                }
            },
            (),
        )
    };
    let slow = {
        let calls = calls.clone();
        g.add(
            move || {
                calls.hit();
                async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    2_u32
                }
            },
            (),
        )
    };
    let after = g.add(|a: u32, b: u32| async move { a + b }, (failing, slow));
    let graph = g.build().unwrap();
    let first = graph.run_with((), RunOptions::new().fail_fast(true)).await;
    assert_eq!(first.task_of(&slow).unwrap().status(), Status::Cancelled);
    fail.store(false, Ordering::SeqCst);
    let second = graph.again(&first).run(()).unwrap().await;
    assert_eq!(second.get(&after).unwrap(), &3);
    assert_eq!(calls.get(), 2);
    assert_eq!(second.makespan(), Duration::from_secs(1));
    let slow_name = graph.name(&slow).unwrap();
    assert!(
        slow_name.starts_with("closure@dag-engine/tests/again.rs:"),
        "{slow_name}"
    );
    assert_eq!(
        second.critical_path(),
        [slow_name, graph.name(&after).unwrap()]
    );
}

#[tokio::test]
async fn typed_graphs_replace_and_rerun_by_name() {
    async fn fetch(x: u32) -> u32 {
        x + 1
    }
    async fn double(x: u32) -> u32 {
        x * 2
    }
    let mut g = GraphBuilder::<u32>::new();
    let p = g.param();
    let fetched = g.add(fetch, p);
    let doubled = g.add(double, fetched);
    let graph = g.build().unwrap();
    let first = graph.run(1).await;
    assert_eq!(first.get(&doubled).unwrap(), &4);

    // A typed task replaced by a function of its inputs, by position.
    let name = graph.name(&fetched).unwrap();
    let replaced = graph
        .replace(name, |inputs| async move { Ok(inputs.at::<u32>(0)? * 100) })
        .unwrap();
    let second = replaced.again(&first).reset([name]).run(1).unwrap().await;
    // Handles of the original builder still work.
    assert_eq!(second.get(&fetched).unwrap(), &100);
    assert_eq!(second.get(&doubled).unwrap(), &200);
    let third = replaced
        .again(&second)
        .mark_done("fetch", 7_u32)
        .run(1)
        .unwrap()
        .await;
    assert_eq!(third.get(&doubled).unwrap(), &14);
}
