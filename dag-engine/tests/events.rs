//! Events: every change of a task's state is announced, in an order users can rely on, to
//! callbacks and streams alike, and the report says the same as the events.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Counter, Log, SEED};
use dagjoin::runtime::{
    Event, EventKind, Graph, NamedGraphBuilder, RunOptions, Status, TaskOptions,
};
use futures::{FutureExt, StreamExt};

/// A callback that keeps every event.
fn recorder() -> (
    Arc<Mutex<Vec<Event<'static>>>>,
    impl Fn(&Event<'_>) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let keep = events.clone();
    (events, move |event: &Event<'_>| {
        keep.lock().unwrap().push(event.clone().into_owned());
    })
}

/// The seed graph plus failures: `broken` fails, `after_broken` and `below` are skipped,
/// `flaky` fails once and then succeeds after a backoff.
fn graph(calls: &Counter) -> Graph<Log> {
    let mut builder = NamedGraphBuilder::with_param();
    for (name, ms, deps) in SEED {
        builder
            .task(name, move |inputs| async move {
                inputs.param::<Log>()?.work(name, ms).await;
                Ok(())
            })
            .depends(name, deps.iter().copied());
    }
    let broken_calls = calls.clone();
    builder
        .task("broken", move |_| {
            broken_calls.hit();
            async { anyhow::bail!("disk full") as anyhow::Result<()> }
        })
        .task("after_broken", |_| async { Ok(()) })
        .task("below", |_| async { Ok(()) })
        .depends("after_broken", ["broken", "fast_task_a"])
        .depends("below", ["after_broken"]);
    let flaky_calls = calls.clone();
    let attempts = Counter::default();
    builder
        .task("flaky", move |_| {
            flaky_calls.hit();
            attempts.hit();
            let first = attempts.get() == 1;
            async move {
                anyhow::ensure!(!first, "try again");
                Ok(7_u32)
            }
        })
        .depends("flaky", ["fast_task_b"])
        .options(
            "flaky",
            TaskOptions::new()
                .retries(2)
                .backoff(Duration::from_millis(50)),
        );
    builder.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_task_has_one_terminal_event_after_its_inputs_completed() {
    let calls = Counter::default();
    let graph = graph(&calls);
    let (events, record) = recorder();
    let report = graph
        .run_with(Log::new(), RunOptions::new().on_event(record))
        .await;
    let events = events.lock().unwrap();

    assert!(matches!(
        &events[0].kind,
        EventKind::RunStarted { run, tasks: 10 } if run == report.run_key()
    ));
    assert!(matches!(
        &events.last().unwrap().kind,
        EventKind::RunFinished { run } if run == report.run_key()
    ));
    assert!(
        events[1..events.len() - 1]
            .iter()
            .all(|event| event.task().is_some()),
        "only the first and last events are about the run"
    );

    // Exactly one terminal event per task, and it says what the report says.
    let mut terminal: HashMap<&str, &Event<'static>> = HashMap::new();
    for event in events.iter().filter(|event| event.is_terminal()) {
        let task = event.task().unwrap();
        assert!(
            terminal.insert(task, event).is_none(),
            "a second terminal event for `{task}`: {event}"
        );
    }
    assert_eq!(terminal.len(), graph.len());
    for task in report.tasks() {
        let status = match &terminal[task.name()].kind {
            EventKind::Completed { .. } => Status::Completed,
            EventKind::Failed { error, .. } => {
                assert_eq!(error.to_string(), task.error().unwrap().to_string());
                Status::Failed
            }
            EventKind::Skipped { because, .. } => {
                assert_eq!(Some(&**because), task.skipped_because());
                Status::Skipped
            }
            EventKind::Cancelled { .. } => Status::Cancelled,
            EventKind::NotRun { .. } => Status::NotRun,
            other => panic!("not terminal: {other:?}"),
        };
        assert_eq!(status, task.status(), "{}", task.name());
        if let Some(end) = task.finished() {
            assert_eq!(terminal[task.name()].at, end, "{}", task.name());
        }
    }
    assert_eq!(
        report.task("below").unwrap().skipped_because(),
        Some("broken")
    );

    // A task starts after the completion of each of its inputs; skipped tasks never start.
    let position = |wanted: &dyn Fn(&EventKind<'_>) -> bool| {
        events.iter().position(|event| wanted(&event.kind))
    };
    for name in graph.task_names() {
        let started = position(
            &|kind| matches!(kind, EventKind::Started { task, attempt: 1, .. } if task == name),
        );
        if report.task(name).unwrap().status() == Status::Skipped {
            assert_eq!(started, None, "skipped `{name}` started");
            continue;
        }
        let started = started.unwrap_or_else(|| panic!("`{name}` never started"));
        for input in graph.dependencies(name).unwrap() {
            let completed = position(
                &|kind| matches!(kind, EventKind::Completed { task, .. } if task == input),
            )
            .unwrap();
            assert!(
                completed < started,
                "`{name}` started before `{input}` completed"
            );
        }
        let ready = position(&|kind| matches!(kind, EventKind::Ready { task } if task == name));
        assert!(
            ready.unwrap() < started,
            "`{name}` was ready before it started"
        );
    }

    // The failed attempt of `flaky` is announced with its error and the backoff, then the
    // second attempt starts exactly after the backoff.
    let flaky: Vec<_> = events
        .iter()
        .filter(|event| event.task() == Some("flaky"))
        .collect();
    let kinds: Vec<String> = flaky.iter().map(ToString::to_string).collect();
    assert_eq!(
        kinds,
        [
            "task `flaky` is ready",
            "task `flaky` attempt 1 started on inline",
            "task `flaky` attempt 1 failed, retrying in 50ms: try again",
            "task `flaky` attempt 2 started on inline",
            "task `flaky` completed in attempt 2",
        ]
    );
    assert_eq!(flaky[3].at - flaky[2].at, Duration::from_millis(50));
    assert_eq!(report.task("flaky").unwrap().attempts(), 2);
    assert_eq!(calls.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_stream_has_every_event_before_the_run_resolves_and_then_ends() {
    let graph = graph(&Counter::default());
    let (events, record) = recorder();
    let mut run = graph.run_with(Log::new(), RunOptions::new().on_event(record));
    let mut first = run.events();
    let mut second = run.events();
    run.await;
    // Nothing more to wait for: every event is in the stream, which has ended.
    let from_stream: Vec<String> = first
        .by_ref()
        .map(|event| event.to_string())
        .collect()
        .now_or_never()
        .expect("the stream is complete when the run resolves");
    let from_callback: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(from_stream, from_callback);
    assert_eq!(
        second.by_ref().count().now_or_never(),
        Some(from_callback.len())
    );
    assert!(matches!(first.next().now_or_never(), Some(None)));
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_loses_no_event() {
    // 10,000 tasks finish before the reader reads anything.
    let mut builder = NamedGraphBuilder::new();
    for i in 0..10_000 {
        builder.task(format!("t{i}"), |_| async { Ok(()) });
        if i > 0 {
            builder.depends(format!("t{i}"), [format!("t{}", i - 1)]);
        }
    }
    let graph = builder.build().unwrap();
    let mut run = graph.run(());
    let events = run.events();
    let reader = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        events.collect::<Vec<_>>().await
    });
    let report = run.await;
    report.check().unwrap();
    let events = reader.await.unwrap();
    // Start, end, and ready, started, completed for each task.
    assert_eq!(events.len(), 2 + 3 * 10_000);
    assert_eq!(
        events.iter().filter(|event| event.is_terminal()).count(),
        10_000
    );
}

#[tokio::test]
async fn values_given_before_the_run_complete_with_attempt_zero() {
    let graph = graph(&Counter::default());
    let log = Log::new();
    tokio::time::pause();
    let first = graph.run(log.clone()).await;
    let (events, record) = recorder();
    let second = graph
        .again(&first)
        .options(RunOptions::new().on_event(record))
        .run(log)
        .unwrap()
        .await;
    assert_eq!(second.task("broken").unwrap().status(), Status::Failed);
    let events = events.lock().unwrap();
    let given: Vec<&str> = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Completed { attempt: 0, .. }))
        .map(|event| event.task().unwrap())
        .collect();
    // Every task that completed in the first run, in the order of the graph, right after the
    // run's start.
    let reused: Vec<&str> = second
        .tasks()
        .filter(dagjoin::runtime::TaskReport::reused)
        .map(|task| task.name())
        .collect();
    assert_eq!(given, reused);
    assert_eq!(given.len(), 7);
    assert!(events[1..=7]
        .iter()
        .all(|event| matches!(event.kind, EventKind::Completed { attempt: 0, .. })));
}
