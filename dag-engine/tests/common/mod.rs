//! Helpers shared by the engine tests: a log of task runs in (paused) tokio time, a drop
//! guard, the seed graph's timings, and a task that sleeps then returns a value.

#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{sleep, Instant};

/// Records when tasks ran, how often, and how many ran at once.
#[derive(Clone)]
pub struct Log(Arc<Inner>);

struct Inner {
    base: Instant,
    runs: Mutex<HashMap<String, Vec<(u64, u64)>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Log {
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            base: Instant::now(),
            runs: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }))
    }

    /// Works for `ms` milliseconds of tokio time as task `name`.
    pub async fn work(&self, name: &str, ms: u64) {
        let start = self.now_ms();
        let now = self.0.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.max_in_flight.fetch_max(now, Ordering::SeqCst);
        sleep(Duration::from_millis(ms)).await;
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        let end = self.now_ms();
        self.0
            .runs
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .push((start, end));
    }

    /// Milliseconds since the log was made.
    pub fn now_ms(&self) -> u64 {
        ms(self.0.base.elapsed())
    }

    /// How many times task `name` finished its work.
    pub fn calls(&self, name: &str) -> usize {
        self.0.runs.lock().unwrap().get(name).map_or(0, Vec::len)
    }

    /// When task `name` started its (only) work, in ms since the log was made.
    pub fn start_of(&self, name: &str) -> u64 {
        let runs = self.0.runs.lock().unwrap();
        let runs = &runs[name];
        assert_eq!(runs.len(), 1, "{name} ran {} times", runs.len());
        runs[0].0
    }

    /// The most tasks that worked at once.
    pub fn max_in_flight(&self) -> usize {
        self.0.max_in_flight.load(Ordering::SeqCst)
    }
}

/// `d` in whole milliseconds.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// Sets its flag when dropped.
pub struct DropGuard(pub Arc<AtomicBool>);

impl DropGuard {
    pub fn new() -> (Self, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (Self(flag.clone()), flag)
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A graph of one task, `forever`, on `placement`, which never ends: the receiver hears when
/// it has started, and the flag is set when its future is dropped.
pub fn forever(
    placement: dagjoin::runtime::Placement,
) -> (
    dagjoin::runtime::Graph<()>,
    tokio::sync::oneshot::Receiver<()>,
    Arc<AtomicBool>,
) {
    let (guard, dropped) = DropGuard::new();
    let guard = Arc::new(Mutex::new(Some(guard)));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let started_tx = Arc::new(Mutex::new(Some(started_tx)));
    let mut builder = dagjoin::runtime::NamedGraphBuilder::new();
    builder.task_on("forever", placement, move |_| {
        let guard = guard.lock().unwrap().take();
        let started = started_tx.lock().unwrap().take();
        async move {
            let _guard = guard;
            started.unwrap().send(()).unwrap();
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    (builder.build().unwrap(), started_rx, dropped)
}

/// A call counter.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The seed graph's tasks, durations and dependencies: a chain of a fast and a slow task
/// beside two tasks that join into a third; the critical path is `slow_task_a`,
/// `fast_task_c`, `end_task` (1.2 s).
pub const SEED: [(&str, u64, &[&str]); 6] = [
    ("fast_task_a", 100, &[]),
    ("slow_task_b", 500, &["fast_task_a"]),
    ("slow_task_a", 1000, &[]),
    ("fast_task_b", 100, &[]),
    ("fast_task_c", 100, &["slow_task_a", "fast_task_b"]),
    ("end_task", 100, &["slow_task_b", "fast_task_c"]),
];

/// The earliest start of each seed task, in ms.
pub const SEED_STARTS: [(&str, u64); 6] = [
    ("fast_task_a", 0),
    ("slow_task_b", 100),
    ("slow_task_a", 0),
    ("fast_task_b", 0),
    ("fast_task_c", 1000),
    ("end_task", 1100),
];

/// Checks a seed run's report against the earliest times and the critical path.
pub fn check_seed_report(report: &dagjoin::runtime::Report, log: &Log) {
    report.check().unwrap();
    assert_eq!(report.makespan(), Duration::from_millis(1200));
    for (name, start) in SEED_STARTS {
        let task = report.task(name).unwrap();
        assert_eq!(
            ms(task.started().unwrap() - report.started()),
            start,
            "{name} starts at its earliest"
        );
        assert_eq!(task.attempts(), 1);
        assert_eq!(log.calls(name), 1, "{name} runs once");
    }
    assert_eq!(
        report.critical_path(),
        ["slow_task_a", "fast_task_c", "end_task"]
    );
}

/// A task that sleeps `ms` milliseconds, then returns `value`.
pub fn after<T: Clone + Send + Sync + 'static>(
    ms: u64,
    value: T,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + Sync {
    move || {
        let value = value.clone();
        Box::pin(async move {
            sleep(Duration::from_millis(ms)).await;
            value
        })
    }
}
