//! The scheduler: keep-going and fail-fast failures, panics, timeouts and retries, limits on
//! tasks in flight, blocking tasks beside async ones, cancellation by drop.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use common::{ms, Counter, DropGuard, Log};
use dagjoin::runtime::{
    GraphBuilder, NamedGraphBuilder, Panicked, Placement, RunOptions, Status, TaskOptions, TimedOut,
};
use tokio::time::sleep;

/// Two failures in different branches, descendants of each, a task below both, and
/// independent tasks, as a named graph; `called` counts the calls of every task.
fn two_failures(called: &Counter) -> dagjoin::runtime::Graph<Log> {
    let mut builder = NamedGraphBuilder::with_param();
    let mut task = |name: &'static str, ms: u64, fails: bool| {
        let called = called.clone();
        builder.task(name, move |inputs| {
            called.hit();
            async move {
                inputs.param::<Log>()?.work(name, ms).await;
                anyhow::ensure!(!fails, "{name} broke");
                Ok(name)
            }
        });
    };
    task("root", 100, false);
    task("fail_one", 100, true);
    task("below_one", 100, false);
    task("further_below_one", 100, false);
    task("fail_two", 300, true);
    task("below_two", 100, false);
    task("below_both", 100, false);
    task("sibling", 500, false);
    task("independent", 1000, false);
    task("after_independent", 100, false);
    builder
        .depends("fail_one", ["root"])
        .depends("below_one", ["fail_one"])
        .depends("further_below_one", ["below_one", "root"])
        .depends("below_two", ["fail_two"])
        .depends("below_both", ["fail_two", "below_one"])
        .depends("sibling", ["root"])
        .depends("after_independent", ["independent"]);
    builder.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn keep_going_skips_descendants_and_finishes_independent_branches() {
    let called = Counter::default();
    let graph = two_failures(&called);
    let log = Log::new();
    let report = graph.run(log.clone()).await;

    let status = |name: &str| report.task(name).unwrap().status();
    let because = |name: &str| report.task(name).unwrap().skipped_because();
    assert_eq!(status("fail_one"), Status::Failed);
    assert_eq!(status("fail_two"), Status::Failed);
    for (name, failed) in [
        ("below_one", "fail_one"),
        ("further_below_one", "fail_one"),
        ("below_two", "fail_two"),
        // fail_one failed first (at 200 ms, fail_two at 300 ms).
        ("below_both", "fail_one"),
    ] {
        assert_eq!(status(name), Status::Skipped, "{name}");
        assert_eq!(because(name), Some(failed), "{name}");
        assert!(!report.task(name).unwrap().ran());
        assert_eq!(log.calls(name), 0, "{name} is never called");
    }
    // Skipped at once, at the time of the failure.
    let at = |name: &str| ms(report.task(name).unwrap().finished().unwrap() - report.started());
    assert_eq!(at("fail_one"), 200);
    assert_eq!(at("below_one"), 200);
    assert_eq!(at("further_below_one"), 200);
    assert_eq!(at("below_two"), 300);
    for name in ["root", "sibling", "independent", "after_independent"] {
        assert_eq!(status(name), Status::Completed, "{name}");
        assert_eq!(report.value::<&str>(name).unwrap(), &name);
    }
    assert_eq!(at("after_independent"), 1100);
    assert_eq!(report.makespan(), Duration::from_millis(1100));
    assert_eq!(called.get(), 6, "only the tasks that ran were called");
    assert_eq!(report.count(Status::Skipped), 4);

    let error = report.check().unwrap_err();
    assert_eq!(
        error.to_string(),
        "2 tasks failed: `fail_one` (fail_one broke), `fail_two` (fail_two broke)"
    );
    // Each failure's cause is in the message, so none is the source: `{:#}` says it once.
    assert!(std::error::Error::source(&error).is_none());
    assert_eq!(
        format!("{:#}", anyhow::Error::new(error.clone())),
        error.to_string()
    );
    assert_eq!(
        error.failures().map(|(name, _)| name).collect::<Vec<_>>(),
        ["fail_one", "fail_two"]
    );
    let (_, first) = error.failures().next().unwrap();
    assert_eq!(first.to_string(), "fail_one broke");
}

#[tokio::test(start_paused = true)]
async fn fail_fast_stops_at_the_first_failure() {
    let (guard, dropped) = DropGuard::new();
    let guard = Arc::new(Mutex::new(Some(guard)));
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("fails", |_| async {
            sleep(Duration::from_millis(100)).await;
            anyhow::bail!("stop") as anyhow::Result<()>
        })
        .task("sibling", move |_| {
            let guard = guard.lock().unwrap().take();
            async move {
                let _guard = guard;
                sleep(Duration::from_secs(10)).await;
                Ok(())
            }
        })
        .task("below_sibling", |_| async { Ok(()) })
        .task("below_failure", |_| async { Ok(()) })
        .depends("below_sibling", ["sibling"])
        .depends("below_failure", ["fails"]);
    let graph = builder.build().unwrap();
    let report = graph.run_with((), RunOptions::new().fail_fast(true)).await;
    assert_eq!(report.makespan(), Duration::from_millis(100));
    assert!(dropped.load(Ordering::SeqCst), "the sibling was dropped");
    let status = |name: &str| report.task(name).unwrap().status();
    assert_eq!(status("fails"), Status::Failed);
    assert_eq!(status("sibling"), Status::Cancelled);
    assert_eq!(
        ms(report.task("sibling").unwrap().finished().unwrap() - report.started()),
        100
    );
    assert_eq!(status("below_sibling"), Status::NotRun);
    assert_eq!(status("below_failure"), Status::Skipped);
    assert_eq!(
        format!("{:#}", anyhow::Error::new(report.check().unwrap_err())),
        "task `fails` failed: stop"
    );
    // Alone, `{:#}` shows the cause too; `{}` names the task.
    let error = report.check().unwrap_err();
    assert_eq!(format!("{error:#}"), "task `fails` failed: stop");
    assert_eq!(error.to_string(), "task `fails` failed");
    // anyhow's chain shows the cause once (then a backtrace, if enabled).
    let chain = format!("{:?}", anyhow::Error::new(error));
    let chain = chain.split("\n\nStack backtrace").next().unwrap();
    assert_eq!(chain, "task `fails` failed\n\nCaused by:\n    stop");
}

#[tokio::test]
async fn a_panic_is_a_failure_with_its_message() {
    let mut g = GraphBuilder::<u32>::new();
    let p = g.param();
    let panics = g.named("panics").add(
        |x: u32| async move {
            tokio::task::yield_now().await;
            assert!(x > 10, "x is only {x}");
            x
        },
        p,
    );
    #[allow(
        unreachable_code,
        reason = "the function panics before it returns a future"
    )]
    let panics_at_call = g.named("panics_at_call").add(
        |_: u32| -> std::future::Ready<u32> { panic!("no future for you") },
        p,
    );
    let panics_blocking = g
        .named("panics_blocking")
        .add_blocking(|_: u32| -> u32 { panic!("blocking {}", 3) }, p);
    let below = g.add(|x: u32| async move { x }, panics);
    let fine = g.add(|x: u32| async move { x + 1 }, p);
    let graph = g.build().unwrap();
    let report = graph.run(1).await;
    let message = |name: &str| {
        report
            .task(name)
            .unwrap()
            .error()
            .unwrap()
            .downcast_ref::<Panicked>()
            .unwrap()
            .message()
            .to_owned()
    };
    assert_eq!(message("panics"), "x is only 1");
    assert_eq!(message("panics_at_call"), "no future for you");
    assert_eq!(message("panics_blocking"), "blocking 3");
    assert_eq!(
        report.task_of(&below).unwrap().skipped_because(),
        Some("panics")
    );
    assert_eq!(report.get(&fine).unwrap(), &2);
    assert!(report
        .check()
        .unwrap_err()
        .to_string()
        .starts_with("3 tasks failed: `panics` (panicked: x is only 1), "));
    let _ = (panics_at_call, panics_blocking);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_then_a_retry_that_succeeds() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let mut g = GraphBuilder::<()>::new();
    let flaky = g.add(
        move || {
            let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                // The first attempt hangs; the second takes 100 ms.
                let ms = if attempt == 1 { 60_000 } else { 100 };
                sleep(Duration::from_millis(ms)).await;
                attempt
            }
        },
        (),
    );
    g.rename(&flaky, "flaky").options(
        &flaky,
        TaskOptions::new()
            .timeout(Duration::from_secs(1))
            .retries(3)
            .backoff(Duration::from_millis(500)),
    );
    let graph = g.build().unwrap();
    let report = graph.run(()).await;
    report.check().unwrap();
    assert_eq!(report.get(&flaky).unwrap(), &2);
    let task = report.task("flaky").unwrap();
    assert_eq!(task.attempts(), 2);
    // 1 s timeout, 0.5 s backoff, 0.1 s second attempt.
    assert_eq!(report.makespan(), Duration::from_millis(1600));
    assert_eq!(ms(task.started().unwrap() - report.started()), 0);
    let ids: Vec<_> = task.attempt_keys().collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1].run(), report.run_key());
    assert_eq!(ids[1].task(), "flaky");
    assert_eq!(ids[1].attempt(), 2);
    assert_eq!(
        ids[0].to_string(),
        format!("run {}, task `flaky`, attempt 1", report.run_key())
    );
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_doubling_then_fail_with_the_last_error() {
    let attempts = Counter::default();
    let counted = attempts.clone();
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("always", move |_| {
            counted.hit();
            let attempt = counted.get();
            async move { anyhow::bail!("attempt {attempt}") as anyhow::Result<()> }
        })
        .options(
            "always",
            TaskOptions::new()
                .retries(3)
                .backoff(Duration::from_millis(100)),
        );
    let report = builder.build().unwrap().run(()).await;
    assert_eq!(attempts.get(), 4);
    assert_eq!(report.task("always").unwrap().attempts(), 4);
    // Waits of 100, 200 and 400 ms.
    assert_eq!(report.makespan(), Duration::from_millis(700));
    assert_eq!(
        format!("{:#}", anyhow::Error::new(report.check().unwrap_err())),
        "task `always` failed: attempt 4"
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_fail_with_timed_out() {
    let mut g = GraphBuilder::<()>::new();
    let hangs = g.add(std::future::pending::<()>, ());
    g.options(
        &hangs,
        TaskOptions::new().timeout(Duration::from_millis(250)),
    );
    let report = g.build().unwrap().run(()).await;
    let error = report.task_of(&hangs).unwrap().error().unwrap();
    assert_eq!(
        error.downcast_ref::<TimedOut>().unwrap().after(),
        Duration::from_millis(250)
    );
    assert_eq!(report.makespan(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn at_most_max_in_flight_tasks_run_at_once() {
    let mut builder = NamedGraphBuilder::with_param();
    for i in 0..10 {
        builder.task(format!("t{i}"), |inputs| async move {
            inputs.param::<Log>()?.work(inputs.task(), 100).await;
            Ok(())
        });
    }
    let graph = builder.build().unwrap();
    for limit in [1, 3, 10] {
        let log = Log::new();
        let report = graph
            .run_with(log.clone(), RunOptions::new().max_in_flight(limit))
            .await;
        report.check().unwrap();
        assert_eq!(log.max_in_flight(), limit);
        let waves = 10_u64.div_ceil(limit as u64);
        assert_eq!(report.makespan(), Duration::from_millis(100 * waves));
    }
}

#[tokio::test]
async fn blocking_tasks_do_not_stall_async_ones() {
    // The blocking task pings the async one and waits for its answer: they must be in flight
    // at the same time, on different threads, even with one async slot.
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (pong_tx, pong_rx) = mpsc::channel::<()>();
    let ping_rx = Arc::new(tokio::sync::Mutex::new(ping_rx));
    let pong_rx = Arc::new(Mutex::new(pong_rx));
    let mut builder = NamedGraphBuilder::new();
    builder
        .blocking_task("blocking", move |_| {
            ping_tx.blocking_send(())?;
            let answered = pong_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30))
                .is_ok();
            Ok(answered)
        })
        .task("async", move |_| {
            let ping_rx = ping_rx.clone();
            let pong_tx = pong_tx.clone();
            async move {
                ping_rx.lock().await.recv().await;
                pong_tx.send(())?;
                Ok(())
            }
        })
        .task("other", |_| async { Ok(()) });
    let report = builder
        .build()
        .unwrap()
        .run_with((), RunOptions::new().max_in_flight(1))
        .await;
    report.check().unwrap();
    assert_eq!(report.value::<bool>("blocking").unwrap(), &true);
}

#[tokio::test]
async fn at_most_max_blocking_tasks_run_at_once() {
    /// Counts blocking tasks in flight; each waits (up to 30 s) until two ran at once.
    #[derive(Default)]
    struct Gauge {
        state: Mutex<(usize, usize)>,
        changed: Condvar,
    }
    let gauge = Arc::new(Gauge::default());
    let mut builder = NamedGraphBuilder::new();
    for i in 0..6 {
        let gauge = gauge.clone();
        builder.blocking_task(format!("b{i}"), move |_| {
            let mut state = gauge.state.lock().unwrap();
            state.0 += 1;
            state.1 = state.1.max(state.0);
            gauge.changed.notify_all();
            let (mut state, _) = gauge
                .changed
                .wait_timeout_while(state, Duration::from_secs(30), |(_, max)| *max < 2)
                .unwrap();
            state.0 -= 1;
            Ok(())
        });
    }
    let async_ran = Counter::default();
    let counted = async_ran.clone();
    builder.task("async", move |_| {
        counted.hit();
        async { Ok(()) }
    });
    let report = builder
        .build()
        .unwrap()
        .run_with((), RunOptions::new().max_blocking(2).max_in_flight(1))
        .await;
    report.check().unwrap();
    assert_eq!(gauge.state.lock().unwrap().1, 2);
    assert_eq!(async_ran.get(), 1);
}

#[tokio::test]
async fn dropping_the_run_cancels_its_tasks() {
    let (graph, started_rx, dropped) = common::forever(Placement::Inline);
    let run = graph.run(());
    assert!(format!("{run:?}").starts_with("Run { key: RunKey("));
    let run = tokio::spawn(run);
    started_rx.await.unwrap();
    assert!(!dropped.load(Ordering::SeqCst));
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert!(
        dropped.load(Ordering::SeqCst),
        "the task's future was dropped"
    );
}

#[test]
fn dropping_the_run_aborts_blocking_tasks_not_started() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let (release, released) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let queued = Counter::default();
    let counted = queued.clone();
    let mut builder = NamedGraphBuilder::new();
    builder
        .blocking_task("holds_the_thread", move |_| {
            started_tx.send(())?;
            Ok(released.lock().unwrap().recv().is_ok())
        })
        .blocking_task("queued", move |_| {
            counted.hit();
            Ok(())
        });
    let graph = builder.build().unwrap();
    runtime.block_on(async {
        {
            let mut run = std::pin::pin!(graph.run(()));
            // Starts both tasks: one takes the only blocking thread, the other waits for it.
            assert!(futures::poll!(run.as_mut()).is_pending());
            while started_rx.try_recv().is_err() {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        // Queued after `queued`: once it ran, `queued` would have run too, had it not been
        // aborted.
        tokio::task::spawn_blocking(|| ()).await.unwrap();
    });
    assert_eq!(queued.get(), 0, "an aborted blocking task ran");
}

#[test]
fn async_graphs_run_on_any_executor() {
    let mut g = GraphBuilder::<u32>::new();
    let p = g.param();
    let a = g.add(|x: u32| async move { x + 1 }, p);
    let b = g.add(|x: u32| async move { x * 2 }, a);
    let blocking = g.named("blocking").add_blocking(|x: u32| x, p);
    let graph = g.build().unwrap();
    let report = futures::executor::block_on(graph.run(20));
    assert_eq!(report.get(&b).unwrap(), &42);
    // Blocking tasks need tokio: without it they fail, and say why.
    let error = report
        .task_of(&blocking)
        .unwrap()
        .error()
        .unwrap()
        .to_string();
    assert!(
        error.ends_with(
            "the task runs on tokio's blocking pool, but the graph is not running inside a \
             tokio runtime"
        ),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_start_in_the_poll_their_last_input_arrives() {
    // A fan-out and fan-in of zero-time tasks takes no time at all, and each task starts at
    // the instant its inputs are ready.
    let mut g = GraphBuilder::<()>::new();
    let root = g.add(|| async { sleep(Duration::from_millis(10)).await }, ());
    let leaves: Vec<_> = (0..100)
        .map(|_| g.add(|()| async { 1_u32 }, root))
        .collect();
    let sum = g.add(|xs: Vec<u32>| async move { xs.iter().sum::<u32>() }, leaves);
    let report = g.build().unwrap().run(()).await;
    assert_eq!(report.get(&sum).unwrap(), &100);
    assert_eq!(report.makespan(), Duration::from_millis(10));
    assert_eq!(
        report.task_of(&sum).unwrap().started().unwrap() - report.started(),
        Duration::from_millis(10)
    );
    assert!(format!("{report:?}").starts_with("Report { run: "));
}

#[test]
fn a_run_of_instant_tasks_yields_to_its_executor() {
    // Tasks that finish in their first poll never leave the run's own poll, so the run counts
    // them against its budget and lets the executor's other tasks in between.
    const TASKS: usize = 10_000;
    let mut g = GraphBuilder::<()>::new();
    let mut prev = g.add(|| async { 0_u64 }, ());
    for _ in 1..TASKS {
        prev = g.add(|x: u64| async move { x + 1 }, prev);
    }
    let graph = g.build().unwrap();
    let mut run = graph.run(());
    let polls = std::cell::Cell::new(0_usize);
    let report = futures::executor::block_on(std::future::poll_fn(|cx| {
        polls.set(polls.get() + 1);
        std::future::Future::poll(std::pin::Pin::new(&mut run), cx)
    }));
    assert_eq!(report.get(&prev).unwrap(), &(TASKS as u64 - 1));
    assert!(
        polls.get() >= TASKS / 128,
        "the run finished {TASKS} tasks in {} polls",
        polls.get()
    );
}

#[tokio::test]
async fn a_timeout_too_large_for_the_clock_waits_forever_without_panicking() {
    let mut g = GraphBuilder::<()>::new();
    let a = g.add(|| async { 1_u32 }, ());
    let b = g.add(
        |x: u32| async move {
            tokio::task::yield_now().await;
            x + 1
        },
        a,
    );
    g.options(&a, TaskOptions::new().timeout(Duration::MAX));
    g.options(&b, TaskOptions::new().timeout(Duration::MAX));
    let report = g.build().unwrap().run(()).await;
    assert_eq!(report.get(&b), Ok(&2));
}

#[tokio::test(flavor = "current_thread")]
async fn a_retry_s_timeout_counts_from_the_retry() {
    // `hog` blocks the thread for 300 ms in the same poll of the run that retries `flaky`;
    // the retry's 100 ms must not have run out before it starts.
    let calls = Counter::default();
    let mut builder = NamedGraphBuilder::new();
    builder.task("hog", |_| async {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(300));
        sleep(Duration::from_millis(10)).await;
        Ok(())
    });
    let flaky_calls = calls.clone();
    builder.task("flaky", move |_| {
        flaky_calls.hit();
        let first = flaky_calls.get() == 1;
        async move {
            anyhow::ensure!(!first, "the first attempt fails");
            sleep(Duration::from_millis(20)).await;
            Ok(7_u32)
        }
    });
    builder.options(
        "flaky",
        TaskOptions::new()
            .retries(1)
            .timeout(Duration::from_millis(100)),
    );
    let report = builder.build().unwrap().run(()).await;
    assert_eq!(report.value::<u32>("flaky"), Ok(&7), "{:?}", report.check());
    assert_eq!(calls.get(), 2);
}

#[test]
fn without_a_timer_a_task_with_a_timeout_fails_before_it_runs() {
    // Outside tokio there is no timer: the attempt fails before the task's future is polled.
    let polled = Arc::new(AtomicUsize::new(0));
    let mut g = GraphBuilder::<()>::new();
    let counter = polled.clone();
    let a = g.add(
        move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                1_u32
            }
        },
        (),
    );
    g.options(
        &a,
        TaskOptions::new()
            .timeout(Duration::from_secs(1))
            .retries(2),
    );
    let report = futures::executor::block_on(g.build().unwrap().run(()));
    assert_eq!(report.task_of(&a).unwrap().status(), Status::Failed);
    assert_eq!(polled.load(Ordering::SeqCst), 0);
}
