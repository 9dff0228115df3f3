//! Graphs that grow while they run: growth steps and rules, under paused time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagjoin::runtime::{
    EventKind, GraphBuilder, Growth, NamedGraphBuilder, Rule, RunOptions, Status, When,
};
use futures::StreamExt;
use tokio::time::{sleep, Instant};

mod common;
use common::after;

/// The time since `start` in whole milliseconds.
fn ms(start: Instant, at: Instant) -> u128 {
    (at - start).as_millis()
}

async fn branch(big: bool) -> dagjoin::runtime::Report {
    let mut g = GraphBuilder::<()>::new();
    let check = g.named("check").add(after(50, big), ());
    let size = g.named("size").add(after(10, 7_u32), ());
    g.named("choose").grow(
        move |grow: &mut Growth<'_, ()>, big: bool| {
            if big {
                let parts = grow.named("split").add(|n: u32| async move { n * 2 }, size);
                grow.named("merge").add(
                    |parts: u32| async move {
                        sleep(Duration::from_millis(100)).await;
                        parts + 1
                    },
                    parts,
                );
            } else {
                grow.named("whole").add(|n: u32| async move { n }, size);
            }
        },
        check,
    );
    g.build().unwrap().run(()).await
}

#[tokio::test(start_paused = true)]
async fn a_growth_step_adds_only_the_branch_its_input_chooses() {
    let start = Instant::now();
    let report = branch(true).await;
    assert!(report.is_complete(), "{report:#}");
    assert_eq!(report.value::<u32>("split").unwrap(), &14);
    assert_eq!(report.value::<u32>("merge").unwrap(), &15);
    assert!(report.task("whole").is_err());
    // `split`'s inputs were there when `choose` added it at 50 ms: it started then.
    let split = report.task("split").unwrap();
    assert_eq!(ms(start, split.started().unwrap()), 50);
    assert_eq!(split.added_by(), Some("choose"));
    assert_eq!(split.dependencies(), ["size"]);
    assert_eq!(ms(start, report.finished()), 150);
    assert_eq!(report.tasks().len(), 5);

    let report = branch(false).await;
    assert!(report.is_complete(), "{report:#}");
    assert_eq!(report.value::<u32>("whole").unwrap(), &7);
    assert!(report.task("split").is_err() && report.task("merge").is_err());
    assert_eq!(report.tasks().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_named_builder_grows_a_branch_too() {
    for big in [true, false] {
        let mut b = NamedGraphBuilder::new();
        b.task("check", move |_| async move { Ok(big) })
            .task("size", |_| async { Ok(7_u32) })
            .grow("choose", |grow: &mut Growth<'_, ()>, inputs| {
                if inputs.get::<bool>("check")? {
                    grow.task_named("split", ["size"], |inputs| async move {
                        Ok(inputs.get::<u32>("size")? * 2)
                    });
                } else {
                    grow.blocking_task_named("whole", ["size", "check"], |inputs| {
                        Ok(inputs.get::<u32>("size")?)
                    });
                }
                Ok(())
            })
            .depends("choose", ["check"]);
        let report = b.build().unwrap().run(()).await;
        report.check().unwrap();
        if big {
            assert_eq!(report.value::<u32>("split").unwrap(), &14);
            assert!(report.task("whole").is_err());
        } else {
            assert_eq!(report.value::<u32>("whole").unwrap(), &7);
            assert_eq!(
                report.task("whole").unwrap().dependencies(),
                ["size", "check"]
            );
            assert!(report.task("split").is_err());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_added_before_its_input_ends_starts_when_it_ends() {
    let mut g = GraphBuilder::<()>::new();
    let slow = g.named("slow").add(after(200, 3_u32), ());
    let go = g.named("go").add(after(50, ()), ());
    g.named("step").grow(
        move |grow: &mut Growth<'_, ()>, (): ()| {
            // Unnamed: called after the step.
            grow.add(|n: u32| async move { n + 1 }, slow);
        },
        go,
    );
    let start = Instant::now();
    let report = g.build().unwrap().run(()).await;
    assert!(report.is_complete(), "{report:#}");
    let names: Vec<_> = report.tasks().map(|t| t.name().to_owned()).collect();
    let added = names.iter().find(|n| n.starts_with("step/")).unwrap();
    assert!(added.starts_with("step/closure@"), "{added}");
    let task = report.task(added).unwrap();
    assert_eq!(task.value::<u32>().unwrap(), &4);
    assert_eq!(ms(start, task.started().unwrap()), 200);
}

#[tokio::test(start_paused = true)]
async fn a_step_never_waits_for_what_it_added_even_with_one_slot() {
    let mut g = GraphBuilder::<()>::new();
    let n = g.named("n").add(after(10, 4_u32), ());
    let step = g.named("step").grow(
        |grow: &mut Growth<'_, ()>, n: u32| {
            let parts: Vec<_> = (0..n)
                .map(|i| grow.named(format!("part{i}")).add(after(100, i), ()))
                .collect();
            grow.named("sum").add(
                |parts: Vec<u32>| async move { parts.iter().sum::<u32>() },
                parts,
            );
            n
        },
        n,
    );
    let after_step = g.named("after").add(|n: u32| async move { n * 10 }, step);
    let start = Instant::now();
    let report = g
        .build()
        .unwrap()
        .run_with((), RunOptions::new().max_in_flight(1))
        .await;
    assert!(report.is_complete(), "{report:#}");
    assert_eq!(report.value::<u32>("sum").unwrap(), &6);
    assert_eq!(report.get(&after_step).unwrap(), &40);
    // One slot: the four parts one after the other.
    assert_eq!(ms(start, report.finished()), 410);
}

#[tokio::test(start_paused = true)]
async fn a_rule_adds_a_task_and_a_rule_that_adds_another_when_its_input_ends() {
    let mut g = GraphBuilder::<()>::new();
    let a = g.named("a").add(after(50, 1_u32), ());
    g.rule(
        Rule::new(When::completed(a), move |grow: &mut Growth<'_, ()>| {
            let a_value = *grow.value(&a)?;
            let b = grow.named("b").add(
                move || async move {
                    sleep(Duration::from_millis(100)).await;
                    a_value + 1
                },
                (),
            );
            grow.rule(
                Rule::new(When::completed(b), move |grow: &mut Growth<'_, ()>| {
                    grow.named("c").add(|b: u32| async move { b * 10 }, b);
                    Ok(())
                })
                .named("second"),
            );
            Ok(())
        })
        .named("first"),
    );
    let start = Instant::now();
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    let b = report.task("b").unwrap();
    let c = report.task("c").unwrap();
    assert_eq!(ms(start, b.started().unwrap()), 50);
    assert_eq!(ms(start, b.finished().unwrap()), 150);
    // The second rule fired when `b` ended, and `c` started in that same step.
    assert_eq!(c.started(), b.finished());
    assert_eq!(c.value::<u32>().unwrap(), &20);
    assert_eq!(b.added_by(), Some("first"));
    assert_eq!(c.added_by(), Some("second"));
    let rules: Vec<_> = report.rules().map(|r| (r.name(), r.fired())).collect();
    assert_eq!(rules, [("first", true), ("second", true)]);
}

/// Two producers, each adding one task tagged `part` per item of its list; a merge of all
/// parts once the tag settles.
fn late_merge(second_fails: bool) -> dagjoin::runtime::Graph<()> {
    let mut g = GraphBuilder::<()>::new();
    let left = g.named("left").add(after(30, vec![1_u32, 2]), ());
    let right = g.named("right").try_add(
        move || async move {
            sleep(Duration::from_millis(80)).await;
            anyhow::ensure!(!second_fails, "right is down");
            Ok(vec![10_u32, 20, 30])
        },
        (),
    );
    for (side, producer) in [("left", left), ("right", right)] {
        g.named(format!("{side}_parts")).adds("part").grow(
            move |grow: &mut Growth<'_, ()>, items: Vec<u32>| {
                for (i, item) in items.into_iter().enumerate() {
                    grow.named(format!("{side}{i}"))
                        .tagged("part")
                        .add(after(20, item * 2), ());
                }
            },
            producer,
        );
    }
    g.rule(
        Rule::new(When::settled("part"), |grow: &mut Growth<'_, ()>| {
            let parts = grow.with_tag::<u32>("part")?;
            grow.named("merge")
                .add(|parts: Vec<u32>| async move { parts }, parts);
            Ok(())
        })
        .named("merge_parts"),
    );
    g.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_late_merge_takes_the_parts_of_both_producers_once_their_tag_settles() {
    let start = Instant::now();
    let report = late_merge(false).run(()).await;
    report.check().unwrap();
    // In the order of their names: left0, left1, right0, right1, right2.
    assert_eq!(
        report.value::<Vec<u32>>("merge").unwrap(),
        &vec![2, 4, 20, 40, 60]
    );
    let merge = report.task("merge").unwrap();
    // The right parts end at 80 + 20 ms: the merge starts then, not before.
    assert_eq!(ms(start, merge.started().unwrap()), 100);
    assert_eq!(merge.added_by(), Some("merge_parts"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_producer_adds_nothing_and_the_rule_that_waited_is_reported() {
    let mut g = GraphBuilder::<()>::new();
    let list = g.named("list").try_add(
        || async { anyhow::bail!("offline") as anyhow::Result<Vec<u32>> },
        (),
    );
    let other = g.named("other").add(after(500, 1_u32), ());
    g.rule(
        Rule::new(When::completed(list), |grow: &mut Growth<'_, ()>| {
            grow.named("never").add(|| async {}, ());
            Ok(())
        })
        .named("process"),
    );
    let start = Instant::now();
    let report = g.build().unwrap().run(()).await;
    // The rule does not keep the run alive; the other task is not disturbed.
    assert_eq!(ms(start, report.finished()), 500);
    assert_eq!(report.get(&other).unwrap(), &1);
    assert!(report.task("never").is_err());
    let rule = report.rules().next().unwrap();
    assert_eq!(rule.name(), "process");
    assert!(!rule.fired());
    assert_eq!(rule.why_not(), Some("it waits for `list`, which failed"));
    // Not required: only the task's failure is an error.
    let error = report.check().unwrap_err();
    assert_eq!(error.failures().len(), 1);
    assert_eq!(error.rules().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_required_rule_that_never_fires_makes_the_run_an_error() {
    let mut g = GraphBuilder::<()>::new();
    g.named("a").add(after(10, 1_u32), ());
    g.rule(
        Rule::new(
            When::tagged_completed("pdf", 2),
            |_: &mut Growth<'_, ()>| Ok(()),
        )
        .named("two_pdfs")
        .required(),
    );
    let report = g.build().unwrap().run(()).await;
    let error = report.check().unwrap_err();
    assert_eq!(
        error.to_string(),
        "rule `two_pdfs` failed: it never fired: tag `pdf` settled with 0 completed tasks, \
         fewer than the 2 it waits for"
    );
}

#[tokio::test(start_paused = true)]
async fn rules_that_wait_for_each_other_are_reported_not_hung() {
    let mut g = GraphBuilder::<()>::new();
    g.named("a").add(after(10, 1_u32), ());
    g.rule(
        Rule::new(When::settled("x"), |_: &mut Growth<'_, ()>| Ok(()))
            .named("r1")
            .adds("y"),
    );
    g.rule(
        Rule::new(When::settled("y"), |_: &mut Growth<'_, ()>| Ok(()))
            .named("r2")
            .adds("x"),
    );
    let report = g.build().unwrap().run(()).await;
    let why: Vec<_> = report
        .rules()
        .map(|r| r.why_not().unwrap().to_owned())
        .collect();
    assert_eq!(
        why,
        [
            "nothing left to run could make it fire: it waits for tag `x` to settle",
            "nothing left to run could make it fire: it waits for tag `y` to settle",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_rule_waiting_for_tasks_that_never_run_gives_up_and_settles_its_tags() {
    // `late` gives up at the end; its tag then settles and `after_late` fires.
    let mut g = GraphBuilder::<()>::new();
    let a = g.named("a").add(after(10, 1_u32), ());
    g.rule(
        Rule::new(
            When::tagged_completed("seed", 1),
            |_: &mut Growth<'_, ()>| Ok(()),
        )
        .named("late")
        .adds("x"),
    );
    g.rule(
        Rule::new(When::settled("x"), move |grow: &mut Growth<'_, ()>| {
            grow.named("cleanup").add(|a: u32| async move { a + 1 }, a);
            Ok(())
        })
        .named("after_late"),
    );
    let report = g.build().unwrap().run(()).await;
    assert_eq!(report.value::<u32>("cleanup").unwrap(), &2);
    let fired: Vec<_> = report.rules().map(|r| r.fired()).collect();
    assert_eq!(fired, [false, true]);
}

#[tokio::test(start_paused = true)]
async fn a_rule_fires_when_enough_tagged_tasks_completed() {
    let mut g = GraphBuilder::<()>::new();
    for (i, ms) in [30_u64, 10, 20, 40].into_iter().enumerate() {
        g.named(format!("t{i}")).tagged("job").add(after(ms, i), ());
    }
    g.rule(Rule::new(
        When::tagged_completed("job", 2),
        |grow: &mut Growth<'_, ()>| {
            grow.named("half").add(|| async { "half" }, ());
            Ok(())
        },
    ));
    let start = Instant::now();
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    assert_eq!(
        ms(start, report.task("half").unwrap().started().unwrap()),
        20
    );
    let added_by = report.task("half").unwrap().added_by().unwrap().to_owned();
    assert!(added_by.starts_with("rule@"), "{added_by}");
}

#[tokio::test(start_paused = true)]
async fn a_step_with_a_handle_of_another_graph_fails_alone() {
    let mut other = GraphBuilder::<()>::new();
    let foreign = other.add(|| async { 1_u32 }, ());
    let mut g = GraphBuilder::<()>::new();
    let go = g.named("go").add(after(10, ()), ());
    let step = g.named("step").grow(
        move |grow: &mut Growth<'_, ()>, (): ()| {
            grow.named("fine").add(|| async { 1_u32 }, ());
            // An edge into the past is impossible: a new task can only take inputs. This one
            // takes a handle that is not of this run.
            grow.named("bad").add(|x: u32| async move { x }, foreign);
        },
        go,
    );
    let user = g.named("user").add(|()| async {}, step);
    let bystander = g.named("bystander").add(after(30, 5_u32), ());
    let report = g.build().unwrap().run(()).await;
    let step = report.task("step").unwrap();
    assert_eq!(step.status(), Status::Failed);
    let error = format!("{:#}", step.error().unwrap());
    assert!(
        error.starts_with("it cannot grow the graph: input 1 of task `bad` is a handle from another graph or another run"),
        "{error}"
    );
    // Nothing of the step was added; its user is skipped; the rest ran.
    assert!(report.task("fine").is_err());
    assert_eq!(report.task_of(&user).unwrap().status(), Status::Skipped);
    assert_eq!(report.get(&bystander).unwrap(), &5);
}

#[tokio::test(start_paused = true)]
async fn a_step_cannot_redefine_a_task_that_exists() {
    let mut b = NamedGraphBuilder::new();
    b.task("a", |_| async { Ok(1_u32) })
        .task("b", |_| async { Ok(2_u32) })
        .grow("step", |grow: &mut Growth<'_, ()>, _inputs| {
            // A second `b`, taking `a`, would be an edge into an existing task.
            grow.task_named("b", ["a"], |_| async { Ok(3_u32) });
            grow.task_named("c", ["nope"], |_| async { Ok(3_u32) });
            Ok(())
        })
        .depends("step", ["a"]);
    let report = b.build().unwrap().run(()).await;
    let step = report.task("step").unwrap();
    assert_eq!(
        format!("{:#}", step.error().unwrap()),
        "it cannot grow the graph: task `c` depends on `nope`, which is not a task; it adds a \
         task called `b`, a name another task has: name it otherwise"
    );
    assert_eq!(report.value::<u32>("b").unwrap(), &2);
    assert!(report.task("c").is_err());
}

#[tokio::test(start_paused = true)]
async fn a_new_task_whose_input_failed_is_skipped_at_once() {
    let mut g = GraphBuilder::<()>::new();
    let broken = g
        .named("broken")
        .try_add(|| async { anyhow::bail!("no") as anyhow::Result<u32> }, ());
    let go = g.named("go").add(after(10, ()), ());
    g.named("step").grow(
        move |grow: &mut Growth<'_, ()>, (): ()| {
            let x = grow.named("x").add(|b: u32| async move { b }, broken);
            grow.named("y").add(|x: u32| async move { x }, x);
        },
        go,
    );
    let report = g.build().unwrap().run(()).await;
    assert_eq!(report.task("step").unwrap().status(), Status::Completed);
    assert_eq!(report.task("x").unwrap().status(), Status::Skipped);
    assert_eq!(report.task("x").unwrap().skipped_because(), Some("broken"));
    assert_eq!(report.task("y").unwrap().skipped_because(), Some("x"));
}

#[tokio::test(start_paused = true)]
async fn an_untagged_source_cannot_add_tagged_tasks() {
    let mut g = GraphBuilder::<()>::new();
    let go = g.named("go").add(after(10, ()), ());
    g.named("step").grow(
        |grow: &mut Growth<'_, ()>, (): ()| {
            grow.named("x").tagged("pdf").add(|| async {}, ());
        },
        go,
    );
    let report = g.build().unwrap().run(()).await;
    assert_eq!(
        format!("{:#}", report.task("step").unwrap().error().unwrap()),
        "it cannot grow the graph: task `x` has tag `pdf`, which `step` did not declare: \
         declare it with `adds(\"pdf\")`"
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_that_panics_fails_and_adds_nothing() {
    let mut g = GraphBuilder::<()>::new();
    let go = g.named("go").add(after(10, ()), ());
    g.named("step").grow(
        |grow: &mut Growth<'_, ()>, (): ()| {
            grow.named("x").add(|| async {}, ());
            panic!("bad step");
        },
        go,
    );
    let report = g.build().unwrap().run(()).await;
    let error = report.task("step").unwrap().error().unwrap().to_string();
    assert!(error.contains("bad step"), "{error}");
    assert!(report.task("x").is_err());
}

#[tokio::test(start_paused = true)]
async fn steps_and_rules_obey_the_runs_limit_of_tasks() {
    let mut g = GraphBuilder::<()>::new();
    let go = g.named("go").add(after(10, ()), ());
    g.named("step").grow(
        |grow: &mut Growth<'_, ()>, (): ()| {
            for i in 0..5 {
                grow.named(format!("t{i}")).add(|| async {}, ());
            }
        },
        go,
    );
    let report = g
        .build()
        .unwrap()
        .run_with((), RunOptions::new().max_tasks(6))
        .await;
    assert_eq!(
        format!("{:#}", report.task("step").unwrap().error().unwrap()),
        "it cannot grow the graph: its 5 tasks would make the run's 2 tasks more than its \
         limit of 6 (RunOptions::max_tasks)"
    );
}

#[tokio::test(start_paused = true)]
async fn runaway_growth_stops_at_the_limit_with_a_clear_error() {
    // Each rule registers another: growth without end, stopped by the cap.
    fn chain(grow: &mut Growth<'_, ()>, i: u32) {
        let t = grow.named(format!("t{i}")).add(|| async {}, ());
        grow.rule(
            Rule::new(When::completed(t), move |grow: &mut Growth<'_, ()>| {
                chain(grow, i + 1);
                Ok(())
            })
            .named(format!("r{i}")),
        );
    }
    let mut g = GraphBuilder::<()>::new();
    g.rule(
        Rule::new(
            When::all_completed(Vec::<&str>::new()),
            |grow: &mut Growth<'_, ()>| {
                chain(grow, 0);
                Ok(())
            },
        )
        .named("start"),
    );
    let report = g
        .build()
        .unwrap()
        .run_with((), RunOptions::new().max_tasks(100))
        .await;
    assert_eq!(report.tasks().len(), 100);
    let error = report.check().unwrap_err();
    let (rule, why) = error.rules().next().unwrap();
    assert_eq!(rule, "r99");
    assert!(
        why.to_string().contains("more than its limit of 100"),
        "{why}"
    );
}

#[tokio::test(start_paused = true)]
async fn grown_tasks_have_events_and_their_adder() {
    let mut g = GraphBuilder::<()>::new();
    let a = g.named("a").add(after(10, 1_u32), ());
    g.rule(
        Rule::new(When::completed(a), |grow: &mut Growth<'_, ()>| {
            grow.named("b").add(|| async {}, ());
            Ok(())
        })
        .named("r"),
    );
    let mut run = g.build().unwrap().run(());
    let events = run.events();
    run.await.check().unwrap();
    let lines: Vec<String> = events.map(|e| e.to_string()).collect().await;
    let added = lines.iter().position(|l| l.contains("`b` added")).unwrap();
    assert!(lines[added].contains("by `r`"), "{}", lines[added]);
    assert!(lines[added + 1..]
        .iter()
        .any(|l| l == "task `b` completed in attempt 1"));
    let mut run = g_events_kind().run(());
    let events = run.events();
    run.await;
    let kinds: Vec<_> = events
        .filter_map(|e| async move {
            match e.kind {
                EventKind::Added { task, by } => Some((task.to_string(), by.to_string())),
                _ => None,
            }
        })
        .collect()
        .await;
    assert_eq!(kinds, [("s/x".to_owned(), "s".to_owned())]);
}

fn g_events_kind() -> dagjoin::runtime::Graph<()> {
    let mut g = GraphBuilder::<()>::new();
    g.named("s").grow(
        |grow: &mut Growth<'_, ()>| {
            fn x() -> std::future::Ready<()> {
                std::future::ready(())
            }
            grow.add(x, ());
        },
        (),
    );
    g.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn again_rebuilds_grown_tasks_and_reuses_those_that_completed() {
    let runs = Arc::new(Mutex::new(Vec::<String>::new()));
    let broken = Arc::new(AtomicU32::new(1));
    let mut g = GraphBuilder::<()>::new();
    let n = g.named("n").add(after(10, 3_u32), ());
    let (log, flag) = (runs.clone(), broken.clone());
    g.named("step").grow(
        move |grow: &mut Growth<'_, ()>, n: u32| {
            let parts: Vec<_> = (0..n)
                .map(|i| {
                    let (log, flag) = (log.clone(), flag.clone());
                    grow.named(format!("p{i}")).try_add(
                        move || {
                            log.lock().unwrap().push(format!("p{i}"));
                            let fails = i == 1 && flag.load(Ordering::SeqCst) == 1;
                            async move {
                                anyhow::ensure!(!fails, "p{i} is broken");
                                Ok(i)
                            }
                        },
                        (),
                    )
                })
                .collect();
            grow.named("sum")
                .add(|p: Vec<u32>| async move { p.iter().sum::<u32>() }, parts);
        },
        n,
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    assert_eq!(first.task("sum").unwrap().status(), Status::Skipped);
    broken.store(0, Ordering::SeqCst);
    runs.lock().unwrap().clear();
    let second = graph.again(&first).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(second.value::<u32>("sum").unwrap(), &3);
    // Only the broken part ran again.
    assert_eq!(*runs.lock().unwrap(), ["p1"]);
    assert!(second.task("p0").unwrap().reused());
    assert!(second.task("n").unwrap().reused());
}

#[tokio::test(start_paused = true)]
async fn again_reuses_a_grown_value_only_if_what_it_came_from_is_unchanged() {
    let counter = Arc::new(AtomicU32::new(0));
    let mut g = GraphBuilder::<()>::new();
    let count = counter.clone();
    let x = g.named("x").add(
        move || std::future::ready(count.fetch_add(1, Ordering::SeqCst)),
        (),
    );
    let fixed = g.named("fixed").add(|| async { 7_u32 }, ());
    g.named("step").grow(
        move |grow: &mut Growth<'_, ()>| {
            // Takes `x`: runs again when `x` does.
            grow.named("y").add(|x: u32| async move { x + 10 }, x);
            // Takes only `fixed`, which is reused: reused too.
            grow.named("z").add(|f: u32| async move { f + 1 }, fixed);
        },
        (),
    );
    // Reads `x` and adds a task without inputs: its value comes from what it read.
    g.rule(
        Rule::new(When::completed(x), move |grow: &mut Growth<'_, ()>| {
            let x = *grow.value(&x)?;
            grow.named("w").add(move || async move { x + 100 }, ());
            Ok(())
        })
        .named("r"),
    );
    let list = g
        .named("list")
        .add(|x: u32| async move { vec![x * 10, x * 10 + 1] }, x);
    g.named("m").map(|i: u32| async move { i }, list);
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    first.check().unwrap();
    assert_eq!(first.value::<u32>("y").unwrap(), &10);

    let second = graph.again(&first).reset(["x"]).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(second.value::<u32>("x").unwrap(), &1);
    assert_eq!(second.value::<u32>("y").unwrap(), &11);
    assert!(second.task("y").unwrap().ran());
    assert_eq!(second.value::<u32>("w").unwrap(), &101);
    assert!(second.task("w").unwrap().ran());
    assert_eq!(second.value::<Vec<u32>>("m").unwrap(), &vec![10, 11]);
    assert!(second.task("m[0]").unwrap().ran());
    assert_eq!(second.value::<u32>("z").unwrap(), &8);
    assert!(second.task("z").unwrap().reused());
}

#[tokio::test(start_paused = true)]
async fn again_runs_grown_steps_again_so_their_tasks_exist() {
    let mut g = GraphBuilder::<()>::new();
    g.named("outer").grow(
        |grow: &mut Growth<'_, ()>| {
            grow.named("inner").grow(
                |grow: &mut Growth<'_, ()>| {
                    grow.named("leaf").add(|| async { 5_u32 }, ());
                },
                (),
            );
        },
        (),
    );
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    let second = graph.again(&first).run(()).unwrap().await;
    second.check().unwrap();
    assert_eq!(second.value::<u32>("leaf").unwrap(), &5);
    assert!(second.task("leaf").unwrap().reused());
    assert!(second.task("inner").unwrap().ran());
}

#[tokio::test(start_paused = true)]
async fn a_map_whose_item_would_have_an_added_tasks_name_fails_saying_so() {
    let mut g = GraphBuilder::<()>::new();
    let list = g.named("list").add(after(50, vec![1_u32, 2]), ());
    g.named("m").map(|i: u32| async move { i }, list);
    g.named("step").grow(
        |grow: &mut Growth<'_, ()>| {
            grow.named("m[0]").add(|| async { 99_u32 }, ());
        },
        (),
    );
    let report = g.build().unwrap().run(()).await;
    assert_eq!(
        format!("{:#}", report.task("m").unwrap().error().unwrap()),
        "its item 0 would be called `m[0]`, the name of another task: rename one of them"
    );
    assert_eq!(report.value::<u32>("m[0]").unwrap(), &99);
    let names: Vec<_> = report.tasks().map(|t| t.name().to_owned()).collect();
    assert_eq!(names, ["list", "m", "step", "m[0]"]);
}

#[tokio::test(start_paused = true)]
async fn rules_made_alike_get_names_of_their_own() {
    fn make(task: &'static str) -> Rule<()> {
        Rule::new(When::completed(task), |grow: &mut Growth<'_, ()>| {
            grow.add(|| async { 1_u32 }, ());
            Ok(())
        })
    }
    let mut g = GraphBuilder::<()>::new();
    g.named("a").add(|| async {}, ());
    g.named("b").add(|| async {}, ());
    g.rule(make("a"));
    g.rule(make("b"));
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    let names: Vec<_> = report.rules().map(|r| r.name().to_owned()).collect();
    assert_eq!(names[1], format!("{}#2", names[0]));
    assert!(
        names[0].starts_with("rule@dag-engine/tests/rules.rs:"),
        "{names:?}"
    );
    assert_eq!(report.tasks().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn reading_a_task_the_step_adds_is_an_error_not_a_panic() {
    let mut g = GraphBuilder::<()>::new();
    let step = g.named("step").grow(
        |grow: &mut Growth<'_, ()>| {
            let y = grow.named("y").add(|| async { 1_u32 }, ());
            let by_handle = grow.value(&y).unwrap_err().to_string();
            let by_name = grow.value_of::<u32>("y").unwrap_err().to_string();
            (by_handle, by_name)
        },
        (),
    );
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    let (by_handle, by_name) = report.get(&step).unwrap();
    assert_eq!(by_handle, by_name);
    assert!(by_handle.contains("a task `step` adds"), "{by_handle}");
}

#[tokio::test(start_paused = true)]
async fn a_named_map_takes_its_collection_whatever_depends_said_before() {
    let mut b = NamedGraphBuilder::new();
    b.task("x", |_| async { Ok(5_u32) })
        .task("items", |_| async { Ok(vec![1_u32, 2]) })
        .depends("m", ["x"])
        .map("m", "items", |i: u32| async move { Ok(i * 3) });
    let report = b.build().unwrap().run(()).await;
    report.check().unwrap();
    assert_eq!(report.value::<Vec<u32>>("m").unwrap(), &vec![3, 6]);
    assert_eq!(
        report.task("m").unwrap().dependencies(),
        ["items", "x", "m[0]", "m[1]"]
    );
}

#[tokio::test(start_paused = true)]
async fn handles_a_step_made_read_the_report() {
    let kept = Arc::new(Mutex::new(None));
    let keep = kept.clone();
    let mut g = GraphBuilder::<()>::new();
    g.named("step").grow(
        move |grow: &mut Growth<'_, ()>| {
            let y = grow.named("y").add(|| async { 4_u32 }, ());
            *keep.lock().unwrap() = Some(y);
        },
        (),
    );
    let graph = g.build().unwrap();
    let report = graph.run(()).await;
    let y = kept.lock().unwrap().unwrap();
    assert_eq!(report.get(&y).unwrap(), &4);
    assert_eq!(report.task_of(&y).unwrap().name(), "y");
    // The same handle means nothing to another run's report.
    let other = graph.run(()).await;
    assert!(other.get(&y).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_failed_rule_shows_in_the_report_and_its_error() {
    let mut g = GraphBuilder::<()>::new();
    let a = g.named("a").add(|| async {}, ());
    g.rule(
        Rule::new(When::completed(a), |_: &mut Growth<'_, ()>| {
            anyhow::bail!("no room left")
        })
        .named("r"),
    );
    let report = g.build().unwrap().run(()).await;
    let error = report.check().unwrap_err();
    assert_eq!(error.to_string(), "rule `r` failed: no room left");
    assert_eq!(format!("{error:?}"), r#"{"rule r": "no room left"}"#);
    assert!(
        report
            .to_string()
            .ends_with("\nrule failed: `r`: no room left"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn what_a_step_adds_declares_only_tags_the_step_declared() {
    let mut g = GraphBuilder::<()>::new();
    g.rule(
        Rule::new(When::settled("part"), |grow: &mut Growth<'_, ()>| {
            grow.named("sum").add(|| async {}, ());
            Ok(())
        })
        .named("merge"),
    );
    g.named("step").grow(
        |grow: &mut Growth<'_, ()>| {
            grow.rule(
                Rule::new(
                    When::all_completed(Vec::<&str>::new()),
                    |_: &mut Growth<'_, ()>| Ok(()),
                )
                .adds("part"),
            );
        },
        (),
    );
    let report = g.build().unwrap().run(()).await;
    assert_eq!(
        format!("{:#}", report.task("step").unwrap().error().unwrap()),
        "it cannot grow the graph: what it adds declares tag `part`, which it did not declare \
         itself: declare it with `adds(\"part\")`"
    );
}

#[tokio::test(start_paused = true)]
async fn derived_names_are_found_by_name_and_checked_against_given_ones() {
    fn f() -> std::future::Ready<u32> {
        std::future::ready(1)
    }
    let mut g = GraphBuilder::<()>::new();
    // A graph task with the name the step will derive.
    g.named("step/f").add(|| async { 0_u32 }, ());
    g.named("step").grow(
        |grow: &mut Growth<'_, ()>| {
            grow.add(f, ());
        },
        (),
    );
    g.named("other").grow(
        |grow: &mut Growth<'_, ()>| {
            grow.add(f, ());
            grow.add(f, ());
            grow.named("given/name").add(|| async { 3_u32 }, ());
        },
        (),
    );
    g.named("late").grow(
        |grow: &mut Growth<'_, ()>| {
            // A given name that another step derived.
            grow.named("other/f#2").add(|| async { 9_u32 }, ());
        },
        // Ready at the start too, after the steps added before it.
        (),
    );
    let report = g.build().unwrap().run(()).await;
    assert_eq!(
        format!("{:#}", report.task("step").unwrap().error().unwrap()),
        "it cannot grow the graph: it adds a task called `step/f`, a name another task has: \
         name it otherwise"
    );
    assert_eq!(report.value::<u32>("other/f").unwrap(), &1);
    assert_eq!(report.value::<u32>("other/f#2").unwrap(), &1);
    assert_eq!(report.value::<u32>("given/name").unwrap(), &3);
    assert_eq!(report.task("other/f#2").unwrap().added_by(), Some("other"));
    assert!(report
        .task("late")
        .unwrap()
        .error()
        .unwrap()
        .to_string()
        .contains("`other/f#2`, a name another task has"));
}

#[tokio::test(start_paused = true)]
async fn rules_that_fire_in_one_step_add_their_tasks_in_it() {
    let mut g = GraphBuilder::<()>::new();
    let a = g.named("a").add(after(30, 2_u32), ());
    for name in ["left", "right"] {
        g.rule(
            Rule::new(When::completed(a), move |grow: &mut Growth<'_, ()>| {
                grow.named(name).add(|a: u32| async move { a }, a);
                Ok(())
            })
            .named(name),
        );
    }
    let start = Instant::now();
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    for name in ["left", "right"] {
        let task = report.task(name).unwrap();
        assert_eq!(ms(start, task.started().unwrap()), 30, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn grown_tasks_keep_their_timeouts_retries_and_fail_fast() {
    use dagjoin::runtime::TaskOptions;
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = attempts.clone();
    let mut g = GraphBuilder::<()>::new();
    g.named("step").grow(
        move |grow: &mut Growth<'_, ()>| {
            let counted = counted.clone();
            grow.named("flaky")
                .with_options(
                    TaskOptions::new()
                        .retries(2)
                        .backoff(Duration::from_millis(10)),
                )
                .try_add(
                    move || {
                        let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
                        async move {
                            anyhow::ensure!(attempt >= 3, "attempt {attempt} failed");
                            Ok(attempt)
                        }
                    },
                    (),
                );
            grow.named("slow")
                .with_options(TaskOptions::new().timeout(Duration::from_millis(200)))
                .add(after(1_000, ()), ());
        },
        (),
    );
    g.named("long").add(after(5_000, ()), ());
    let start = Instant::now();
    let report = g
        .build()
        .unwrap()
        .run_with((), RunOptions::new().fail_fast(true))
        .await;
    // Attempts at 0, 10 and 30 ms: the third succeeds.
    assert_eq!(report.value::<u32>("flaky").unwrap(), &3);
    assert_eq!(report.task("flaky").unwrap().attempts(), 3);
    let slow = report.task("slow").unwrap();
    assert_eq!(slow.status(), Status::Failed);
    assert_eq!(ms(start, slow.finished().unwrap()), 200);
    // Its failure stops the run: the long task is cancelled then.
    assert_eq!(report.task("long").unwrap().status(), Status::Cancelled);
    assert_eq!(ms(start, report.finished()), 200);
}

#[test]
fn a_step_that_adds_a_hundred_thousand_tasks_runs() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = GraphBuilder::<()>::new();
    g.named("step").grow(
        |grow: &mut Growth<'_, ()>| {
            let mut last = grow.add(|| async { 0_u64 }, ());
            for _ in 0..100_000 {
                last = grow.add(|x: u64| async move { x + 1 }, last);
            }
            grow.named("end").add(|x: u64| async move { x }, last);
        },
        (),
    );
    let report = rt.block_on(g.build().unwrap().run(()));
    report.check().unwrap();
    assert_eq!(report.value::<u64>("end").unwrap(), &100_000);
    assert_eq!(report.tasks().len(), 100_003);
}
