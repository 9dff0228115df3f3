//! Controlling a run from outside: stopping it with its report (a cancel handle, a
//! deadline), starting it partly done, watching its live status, and naming it.

mod common;

use std::time::Duration;

use common::{Counter, Log, SEED};
use dagjoin::runtime::{
    BuildProblem, CancelHandle, Graph, GraphBuilder, NamedGraphBuilder, PlanError, RunKey,
    RunOptions, Status, TaskState,
};

/// The seed graph, counting calls of each task.
fn seed(calls: &Counter) -> Graph<Log> {
    let mut builder = NamedGraphBuilder::with_param();
    for (name, ms, deps) in SEED {
        let calls = calls.clone();
        builder
            .task(name, move |inputs| {
                calls.hit();
                async move {
                    inputs.param::<Log>()?.work(name, ms).await;
                    Ok(name.len())
                }
            })
            .depends(name, deps.iter().copied());
    }
    builder.build().unwrap()
}

/// Checks a seed run stopped at 550 ms: what had completed keeps its value, what was running
/// is cancelled, the rest did not run; then `again` finishes it, calling only the rest.
async fn check_stopped_at_550_ms(
    graph: &Graph<Log>,
    log: &Log,
    calls: &Counter,
    report: dagjoin::runtime::Report,
) {
    assert_eq!(report.makespan(), Duration::from_millis(550));
    let status = |name: &str| report.task(name).unwrap().status();
    // fast_task_a and fast_task_b (100 ms) completed; slow_task_b (100..600 ms) and
    // slow_task_a (0..1000 ms) were running; the others wait for them.
    for (name, expected) in [
        ("fast_task_a", Status::Completed),
        ("fast_task_b", Status::Completed),
        ("slow_task_b", Status::Cancelled),
        ("slow_task_a", Status::Cancelled),
        ("fast_task_c", Status::NotRun),
        ("end_task", Status::NotRun),
    ] {
        assert_eq!(status(name), expected, "{name}");
    }
    assert_eq!(report.value::<usize>("fast_task_a").unwrap(), &11);
    assert_eq!(
        report.task("slow_task_a").unwrap().finished(),
        Some(report.finished())
    );
    // Cancelled and not-run tasks are no failures.
    report.check().unwrap();
    assert_eq!(calls.get(), 4);

    let rest = graph.again(&report).run(log.clone()).unwrap().await;
    rest.check().unwrap();
    assert!(rest.task("fast_task_a").unwrap().reused());
    assert_eq!(rest.value::<usize>("end_task").unwrap(), &8);
    // The two cancelled tasks ran again, then the two that had not run: 4 more calls.
    assert_eq!(calls.get(), 8);
    // slow_task_a again from the start (1000 ms), then fast_task_c and end_task.
    assert_eq!(rest.makespan(), Duration::from_millis(1200));
}

#[tokio::test(start_paused = true)]
async fn a_cancel_handle_stops_a_run_with_its_report() {
    let calls = Counter::default();
    let graph = seed(&calls);
    let log = Log::new();
    let cancel = CancelHandle::new();
    let run = tokio::spawn(graph.run_with(log.clone(), RunOptions::new().cancel_on(&cancel)));
    tokio::time::sleep(Duration::from_millis(550)).await;
    cancel.cancel();
    let report = run.await.unwrap();
    check_stopped_at_550_ms(&graph, &log, &calls, report).await;
}

#[tokio::test(start_paused = true)]
async fn a_deadline_stops_a_run_with_its_report() {
    let calls = Counter::default();
    let graph = seed(&calls);
    let log = Log::new();
    let report = graph
        .run_with(
            log.clone(),
            RunOptions::new().time_limit(Duration::from_millis(550)),
        )
        .await;
    check_stopped_at_550_ms(&graph, &log, &calls, report).await;

    // An absolute deadline, already past: nothing runs.
    let report = graph
        .run_with(
            log.clone(),
            RunOptions::new().deadline(tokio::time::Instant::now()),
        )
        .await;
    assert_eq!(report.count(Status::NotRun), 6);
    assert_eq!(report.makespan(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_run_cancelled_before_it_starts_runs_nothing() {
    let calls = Counter::default();
    let graph = seed(&calls);
    let cancel = CancelHandle::new();
    cancel.cancel();
    let report = graph
        .run_with(Log::new(), RunOptions::new().cancel_on(&cancel))
        .await;
    assert_eq!(report.count(Status::NotRun), 6);
    assert_eq!(calls.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_first_run_can_start_partly_done_or_with_a_subset() {
    let calls = Counter::default();
    let graph = seed(&calls);
    let log = Log::new();
    // `slow_task_a` is known already: the run takes the other branch's time.
    let report = graph
        .plan()
        .mark_done("slow_task_a", 11_usize)
        .run(log.clone())
        .unwrap()
        .await;
    report.check().unwrap();
    assert!(report.task("slow_task_a").unwrap().marked_done());
    assert!(!report.task("slow_task_a").unwrap().ran());
    assert_eq!(calls.get(), 5);
    assert_eq!(report.makespan(), Duration::from_millis(700));

    // Only two tasks, the input of the second given.
    let report = graph
        .plan()
        .mark_done("fast_task_a", 1_usize)
        .only(["slow_task_b", "fast_task_b"])
        .run(log.clone())
        .unwrap()
        .await;
    assert_eq!(report.count(Status::Completed), 3);
    assert_eq!(report.count(Status::NotRun), 3);
    assert_eq!(calls.get(), 7);

    // A subset whose input neither runs nor has a value: refused before anything runs,
    // naming both tasks.
    let error = graph
        .plan()
        .only(["end_task"])
        .run(log.clone())
        .unwrap_err();
    assert_eq!(
        error,
        PlanError::MissingInput {
            task: "end_task".to_owned(),
            dependency: "slow_task_b".to_owned()
        }
    );
    // A value of the wrong type is refused too.
    let error = graph
        .plan()
        .mark_done("fast_task_a", "one")
        .run(log)
        .unwrap_err();
    assert!(matches!(error, PlanError::TypeMismatch { .. }), "{error}");
    assert_eq!(calls.get(), 7);
}

#[tokio::test(start_paused = true)]
async fn the_live_status_follows_the_run() {
    let calls = Counter::default();
    let graph = seed(&calls);
    let mut run = graph.run(Log::new());
    let status = run.status();
    let before = status.snapshot();
    assert!(!before.started);
    assert_eq!(before.count(TaskState::Waiting), 6);
    let run = tokio::spawn(run);
    tokio::time::sleep(Duration::from_millis(550)).await;
    let now = status.snapshot();
    assert!(now.started && !now.finished);
    assert_eq!(now.elapsed, Duration::from_millis(550));
    assert_eq!(now.done(Status::Completed), 2);
    assert_eq!(now.count(TaskState::Running), 2);
    assert_eq!(now.count(TaskState::Waiting), 2);
    assert_eq!(now.state("slow_task_b"), Some(TaskState::Running));
    let report = run.await.unwrap();
    let after = status.snapshot();
    assert!(after.finished);
    assert_eq!(after.elapsed, report.makespan());
    assert_eq!(after.done(Status::Completed), 6);
    assert!(after.tasks.iter().all(|task| task.attempts == 1));
}

#[tokio::test]
async fn runs_have_unique_keys_or_the_one_given() {
    let graph = seed(&Counter::default());
    tokio::time::pause();
    let mut keys: Vec<RunKey> = Vec::new();
    for _ in 0..100 {
        let report = graph.run(Log::new()).await;
        keys.push(report.run_key().clone());
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 100, "keys are unique");
    // Time-ordered: in the order the runs were made, within a millisecond.
    assert!(keys.iter().all(|key| key.as_str().len() == 36));

    let given = RunKey::new("nightly-2026-12-01").unwrap();
    let mut run = graph.run_with(Log::new(), RunOptions::new().run_key(given.clone()));
    assert_eq!(run.key(), &given);
    let events = run.events();
    let report = run.await;
    assert_eq!(report.run_key(), &given);
    let keys: Vec<String> = report
        .task("end_task")
        .unwrap()
        .attempt_keys()
        .map(|key| key.to_string())
        .collect();
    assert_eq!(keys, ["run nightly-2026-12-01, task `end_task`, attempt 1"]);
    drop(events);

    for bad in ["", "two words", "tab\there", &"x".repeat(129)] {
        assert!(RunKey::new(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        RunKey::new("a b").unwrap_err().to_string(),
        "`a b` is not a run key: a key is 1 to 128 printable ASCII characters without spaces"
    );
}

#[test]
fn a_function_returning_a_result_must_be_added_with_try_add() {
    async fn check(x: u32) -> anyhow::Result<u32> {
        anyhow::ensure!(x > 0, "zero");
        Ok(x)
    }
    #[allow(
        clippy::needless_pass_by_value,
        reason = "a task function takes its input's value"
    )]
    fn parse(s: String) -> Result<u32, std::num::ParseIntError> {
        s.parse()
    }
    let mut g = GraphBuilder::<u32>::new();
    let x = g.param();
    g.add(check, x);
    let mut g2 = GraphBuilder::<String>::new();
    let s = g2.param();
    g2.add_blocking(parse, s);
    let error = g.build().unwrap_err();
    assert!(matches!(
        error.problems(),
        [BuildProblem::ResultValue { task, .. }] if task == "check"
    ));
    assert_eq!(
        error.to_string(),
        "task `check` returns a `core::result::Result<u32, anyhow::Error>` but was added with \
         `add`, so an `Err` would be a completed value; add it with `try_add` (or \
         `try_add_blocking`) so that an `Err` fails the task"
    );
    assert!(matches!(
        g2.build().unwrap_err().problems(),
        [BuildProblem::ResultValue { task, .. }] if task == "parse"
    ));

    // With `try_add` the same function builds, and an `Err` fails the task.
    let mut g = GraphBuilder::<u32>::new();
    let x = g.param();
    g.try_add(check, x);
    let graph = g.build().unwrap();
    let report = futures::executor::block_on(graph.run(0));
    assert_eq!(report.task("check").unwrap().status(), Status::Failed);
}

#[test]
fn names_given_when_adding_are_checked_like_renames() {
    let mut g = GraphBuilder::<()>::new();
    g.named("load").add(|| async { 1 }, ());
    g.named("load").add(|| async { 2 }, ());
    assert_eq!(
        g.build().unwrap_err().to_string(),
        "task `load` is defined more than once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_keeps_its_place_and_a_stop_during_its_backoff_cancels_it() {
    use dagjoin::runtime::{Event, TaskOptions};
    use std::sync::{Arc, Mutex};

    let log = Log::new();
    let attempts = Counter::default();
    let graph = {
        let mut g = GraphBuilder::<Log>::new();
        let log_param = g.param();
        let counted = attempts.clone();
        g.named("flaky")
            .with_options(
                TaskOptions::new()
                    .retries(1)
                    .backoff(Duration::from_millis(100)),
            )
            .try_add(
                move |_: Log| {
                    counted.hit();
                    let first = dagjoin::runtime::current_attempt().unwrap().attempt() == 1;
                    async move {
                        anyhow::ensure!(!first, "not yet");
                        Ok(1)
                    }
                },
                log_param,
            );
        g.named("other").add(
            |log: Log| async move { log.work("other", 10).await },
            log_param,
        );
        g.build().unwrap()
    };

    // One task at a time: the retry's backoff holds the place, so `other` waits for it.
    let report = graph
        .run_with(log.clone(), RunOptions::new().max_in_flight(1))
        .await;
    report.check().unwrap();
    assert_eq!(report.task("flaky").unwrap().attempts(), 2);
    assert_eq!(log.start_of("other"), 100);
    assert_eq!(report.makespan(), Duration::from_millis(110));

    // Stopped in the backoff: the waiting task is cancelled after one attempt, the other did
    // not run, and each gets exactly one terminal event.
    let events = Arc::new(Mutex::new(Vec::<Event<'static>>::new()));
    let keep = events.clone();
    let options = RunOptions::new()
        .max_in_flight(1)
        .time_limit(Duration::from_millis(50))
        .on_event(move |event| keep.lock().unwrap().push(event.clone().into_owned()));
    let report = graph.run_with(Log::new(), options).await;
    let flaky = report.task("flaky").unwrap();
    assert_eq!(flaky.status(), Status::Cancelled);
    assert_eq!(flaky.attempts(), 1);
    assert_eq!(report.task("other").unwrap().status(), Status::NotRun);
    assert_eq!(attempts.get(), 3);
    let events = events.lock().unwrap();
    let terminal: Vec<String> = events
        .iter()
        .filter(|event| event.is_terminal())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        terminal,
        [
            "task `flaky` attempt 1 cancelled",
            "task `other` did not run"
        ]
    );
    assert!(!events
        .iter()
        .any(|event| event.to_string() == "task `flaky` attempt 2 started on inline"));
}

#[test]
fn a_deadline_without_a_timer_fails_the_tasks_saying_why() {
    let calls = Counter::default();
    let graph = seed(&calls);
    let report = futures::executor::block_on(graph.run_with(
        Log::new(),
        RunOptions::new().time_limit(Duration::from_secs(10)),
    ));
    assert_eq!(calls.get(), 0);
    assert_eq!(report.count(Status::Failed), 3);
    assert_eq!(report.count(Status::Skipped), 3);
    let error = report.check().unwrap_err();
    let (task, error) = error.failures().next().unwrap();
    assert_eq!(task, "fast_task_a");
    assert_eq!(
        format!("{error:#}"),
        "the run has a deadline: it needs tokio's timer: run the graph inside a tokio runtime \
         with time enabled"
    );
}

#[test]
fn a_task_cannot_be_both_given_and_chosen() {
    let graph = seed(&Counter::default());
    let error = graph
        .plan()
        .mark_done("fast_task_a", 1_usize)
        .only(["fast_task_a"])
        .run(Log::new())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "task `fast_task_a` is marked done and also chosen to run; do one or the other"
    );
}

#[tokio::test]
async fn a_run_inside_a_task_has_its_own_attempts() {
    use dagjoin::runtime::current_attempt;

    async fn inner() -> (String, String) {
        let mut g = GraphBuilder::<()>::new();
        let seen = g.named("inner").add(
            || async { current_attempt().unwrap().task().to_owned() },
            (),
        );
        let report = g.build().unwrap().run(()).await;
        // Back in the outer task, after the inner run: the outer attempt again.
        let after = current_attempt().unwrap().task().to_owned();
        (report.get(&seen).unwrap().clone(), after)
    }
    let mut g = GraphBuilder::<()>::new();
    let outer = g.named("outer").add(inner, ());
    let report = g.build().unwrap().run(()).await;
    assert_eq!(
        report.get(&outer).unwrap(),
        &("inner".to_owned(), "outer".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn the_live_status_of_a_dropped_run_says_it_ended() {
    let graph = seed(&Counter::default());
    let mut run = graph.run(Log::new());
    let status = run.status();
    let stopped = tokio::time::timeout(Duration::from_millis(300), run).await;
    assert!(
        stopped.is_err(),
        "the run is still going when it is dropped"
    );
    let now = status.snapshot();
    assert!(now.finished && now.dropped);
    assert_eq!(now.elapsed, Duration::from_millis(300));
    assert_eq!(now.state("slow_task_a"), Some(TaskState::Running));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status.snapshot().elapsed, Duration::from_millis(300));

    let mut run = graph.run(Log::new());
    let status = run.status();
    run.await;
    assert!(status.snapshot().finished && !status.snapshot().dropped);
}

#[tokio::test(start_paused = true)]
async fn a_report_prints_its_totals_failures_and_every_task() {
    let calls = Counter::default();
    let graph = seed(&calls);
    let log = Log::new();
    let report = graph.run(log.clone()).await;
    let text = format!("{report:#}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("run {}: 6 tasks in 1.2s: 6 completed", report.run_key())
    );
    assert_eq!(
        lines[1..],
        [
            "critical path: slow_task_a -> fast_task_c -> end_task",
            "tasks:",
            "  fast_task_a  completed  at 0ns  took 100ms  attempts 1",
            "  slow_task_b  completed  at 100ms  took 500ms  attempts 1",
            "  slow_task_a  completed  at 0ns  took 1s  attempts 1",
            "  fast_task_b  completed  at 0ns  took 100ms  attempts 1",
            "  fast_task_c  completed  at 1s  took 100ms  attempts 1",
            "  end_task  completed  at 1.1s  took 100ms  attempts 1",
        ]
    );
    // Stopped, then finished by a rerun: cancellations are reasons, reused values say so.
    let stopped = graph
        .run_with(
            log.clone(),
            RunOptions::new().time_limit(Duration::from_millis(550)),
        )
        .await;
    assert_eq!(
        stopped.to_string().lines().next().unwrap(),
        format!(
            "run {}: 6 tasks in 550ms: 2 completed, 2 cancelled, 2 not run",
            stopped.run_key()
        )
    );
    let rest = graph.again(&stopped).run(log).unwrap().await;
    assert!(format!("{rest:#}").contains("\n  fast_task_a  completed  (reused)\n"));
}
