//! Executors: the built-in placements, their limits, executors of your own, and cancellation
//! of work that runs outside the run's task.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::Log;
use dagjoin::runtime::{
    current_attempt, Attempt, Executor, GraphBuilder, Job, NamedGraphBuilder, Placement,
    RunOptions, Running, Status, TaskOptions,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_run_in_parallel_on_worker_threads() {
    // Two tasks that each wait for the other to have started on another thread: run on the
    // run's own task they could not both be in progress; spawned, they are.
    let (a_tx, a_rx) = mpsc::channel::<()>();
    let (b_tx, b_rx) = mpsc::channel::<()>();
    let a_rx = Arc::new(Mutex::new(a_rx));
    let b_rx = Arc::new(Mutex::new(b_rx));
    let meet = |tx: mpsc::Sender<()>, rx: Arc<Mutex<mpsc::Receiver<()>>>| {
        move || {
            let (tx, rx) = (tx.clone(), rx.clone());
            async move {
                tx.send(()).unwrap();
                rx.lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(10))
                    .map(|()| std::thread::current().id())
                    .map_err(|_| anyhow::anyhow!("the other task never ran at the same time"))
            }
        }
    };
    let mut g = GraphBuilder::<()>::new();
    let a = g.on(Placement::Spawned).try_add(meet(a_tx, b_rx), ());
    let b = g.on(Placement::Spawned).try_add(meet(b_tx, a_rx), ());
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    assert_ne!(report.get(&a).unwrap(), report.get(&b).unwrap());
    assert_eq!(report.task_of(&a).unwrap().executor(), "spawned");
}

#[tokio::test(start_paused = true)]
async fn each_executor_has_its_own_limit() {
    let log = Log::new();
    let inline_log = Log::new();
    let mut builder = NamedGraphBuilder::with_param();
    for i in 0..6 {
        builder.task_on(
            format!("spawned{i}"),
            Placement::Spawned,
            move |inputs| async move {
                inputs.param::<(Log, Log)>()?.0.work("spawned", 100).await;
                Ok(())
            },
        );
        builder.task(format!("inline{i}"), move |inputs| async move {
            inputs.param::<(Log, Log)>()?.1.work("inline", 100).await;
            Ok(())
        });
    }
    let graph = builder.build().unwrap();
    let report = graph
        .run_with(
            (log.clone(), inline_log.clone()),
            RunOptions::new().max_spawned(2).max_in_flight(3),
        )
        .await;
    report.check().unwrap();
    assert_eq!(log.max_in_flight(), 2);
    assert_eq!(inline_log.max_in_flight(), 3);
    // 6 spawned tasks 2 at a time; the inline ones, 3 at a time, finish first.
    assert_eq!(report.makespan(), Duration::from_millis(300));
}

/// An executor that runs tasks on a runtime of its own and counts what it was given.
struct OtherRuntime {
    runtime: tokio::runtime::Handle,
    started: AtomicUsize,
    limit: Option<usize>,
}

impl Executor for OtherRuntime {
    fn name(&self) -> &'static str {
        "other"
    }

    fn start(&self, attempt: Attempt<'_>, job: Job) -> anyhow::Result<Running> {
        assert!(attempt.attempt() >= 1);
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(match job {
            Job::Async(future) => Running::join_handle(self.runtime.spawn(future)),
            Job::Blocking(closure) => Running::join_handle(self.runtime.spawn_blocking(closure)),
            _ => anyhow::bail!("unknown job"),
        })
    }

    fn max_in_flight(&self) -> Option<usize> {
        self.limit
    }
}

fn other_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("other-runtime")
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_executor_of_your_own_runs_the_tasks_placed_on_it() {
    let other = other_runtime();
    let executor = Arc::new(OtherRuntime {
        runtime: other.handle().clone(),
        started: AtomicUsize::new(0),
        limit: Some(1),
    });
    let placement = Placement::custom(executor.clone());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut g = GraphBuilder::<()>::new();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (in_flight, most) = (in_flight.clone(), most.clone());
        handles.push(g.on(placement.clone()).add(
            move || {
                let (in_flight, most) = (in_flight.clone(), most.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let key = current_attempt().expect("a task sees its attempt");
                    (std::thread::current().name().map(str::to_owned), key)
                }
            },
            (),
        ));
    }
    let blocking = g
        .on(placement)
        .add_blocking(|| std::thread::current().name().map(str::to_owned), ());
    let graph = g.build().unwrap();
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = main.block_on(graph.run(()));
    report.check().unwrap();
    for handle in &handles {
        let (thread, key) = report.get(handle).unwrap();
        assert_eq!(thread.as_deref(), Some("other-runtime"));
        // The key a task saw is the one of its attempt in the report.
        let task = report.task_of(handle).unwrap();
        assert_eq!(Some(key), task.attempt_keys().last().as_ref());
        assert_eq!(task.executor(), "other");
    }
    assert_eq!(
        report.get(&blocking).unwrap().as_deref(),
        Some("other-runtime")
    );
    assert_eq!(executor.started.load(Ordering::SeqCst), 5);
    // The executor's own limit: one at a time.
    assert_eq!(most.load(Ordering::SeqCst), 1);
    // A run's limit by the executor's name, here higher than its own: the lower one wins.
    let report = main.block_on(graph.run_with((), RunOptions::new().limit("other", 3)));
    report.check().unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 1);
}

#[test]
fn tasks_cancelled_by_their_executor_are_cancelled_and_their_descendants_skipped() {
    let other = other_runtime();
    let executor = Arc::new(OtherRuntime {
        runtime: other.handle().clone(),
        started: AtomicUsize::new(0),
        limit: None,
    });
    let (started_tx, started_rx) = mpsc::channel();
    let started_tx = Arc::new(Mutex::new(started_tx));
    let mut g = GraphBuilder::<()>::new();
    let stuck = g
        .named("stuck")
        .on(Placement::custom(executor.clone()))
        // Retries do not apply to a cancelled attempt: it was stopped, it did not fail.
        .with_options(TaskOptions::new().retries(3))
        .add(
            move || {
                let started = started_tx.clone();
                async move {
                    started.lock().unwrap().send(()).unwrap();
                    std::future::pending::<u32>().await
                }
            },
            (),
        );
    let after = g.named("after").add(|x: u32| async move { x }, stuck);
    let fine = g.named("fine").add(|| async { 1 }, ());
    let graph = g.build().unwrap();
    // Multi-threaded, so the spawned run goes on while this thread waits.
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let run = main.spawn(graph.run(()));
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // The other runtime goes away: the task running there is cancelled from outside.
    other.shutdown_background();
    let report = main.block_on(run).unwrap();
    let task = report.task_of(&stuck).unwrap();
    assert_eq!(task.status(), Status::Cancelled);
    assert_eq!(task.attempts(), 1);
    assert_eq!(report.task_of(&after).unwrap().status(), Status::Skipped);
    assert_eq!(
        report.task_of(&after).unwrap().skipped_because(),
        Some("stuck")
    );
    assert_eq!(report.get(&fine).unwrap(), &1);
    // Cancelled is not failed.
    report.check().unwrap();
    assert_eq!(executor.started.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_aborts_its_spawned_tasks() {
    let (graph, started_rx, dropped) = common::forever(Placement::Spawned);
    let run = tokio::spawn(graph.run(()));
    started_rx.await.unwrap();
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    // The spawned task is aborted, so its future (and the guard) are dropped soon after.
    for _ in 0..1000 {
        if dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the spawned task outlived its run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_see_their_attempt_key_wherever_they_run() {
    async fn key(fail_first: bool) -> anyhow::Result<(u32, String)> {
        // Read after a yield, in a later poll than the first.
        tokio::task::yield_now().await;
        let key = current_attempt().expect("inside a task");
        anyhow::ensure!(!(fail_first && key.attempt() == 1), "first attempt fails");
        Ok((key.attempt(), key.to_string()))
    }
    let mut g = GraphBuilder::<()>::new();
    let options = TaskOptions::new().retries(1);
    let inline = g
        .named("inline")
        .with_options(options)
        .try_add(|| key(true), ());
    let spawned = g
        .named("spawned")
        .on(Placement::Spawned)
        .try_add(|| key(false), ());
    let blocking = g.named("blocking").add_blocking(
        || {
            let key = current_attempt().unwrap();
            (key.attempt(), key.to_string())
        },
        (),
    );
    let report = g.build().unwrap().run(()).await;
    report.check().unwrap();
    let run = report.run_key();
    assert_eq!(
        report.get(&inline).unwrap(),
        &(2, format!("run {run}, task `inline`, attempt 2"))
    );
    assert_eq!(
        report.get(&spawned).unwrap(),
        &(1, format!("run {run}, task `spawned`, attempt 1"))
    );
    assert_eq!(
        report.get(&blocking).unwrap(),
        &(1, format!("run {run}, task `blocking`, attempt 1"))
    );
    assert!(current_attempt().is_none());
}
