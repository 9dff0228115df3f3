//! Scheduling: every node starts the moment its last dependency finishes. Time is paused, so
//! sleeps complete exactly at their deadlines and the measured times are deterministic.

#![allow(
    clippy::many_single_char_names,
    reason = "node names in small test graphs"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dagjoin::dag;
use tokio::time::Instant;

/// Records when each task starts and how often it runs.
struct Log {
    t0: Instant,
    starts: Mutex<Vec<(&'static str, u64)>>,
    runs: AtomicUsize,
}

impl Log {
    fn new() -> Self {
        Log {
            t0: Instant::now(),
            starts: Mutex::new(Vec::new()),
            runs: AtomicUsize::new(0),
        }
    }

    async fn task<T>(&self, name: &'static str, millis: u64, value: T) -> T {
        let at = u64::try_from(self.t0.elapsed().as_millis()).unwrap();
        self.starts.lock().unwrap().push((name, at));
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        value
    }

    fn start_of(&self, name: &str) -> u64 {
        let starts = self.starts.lock().unwrap();
        let mut found = starts.iter().filter(|(n, _)| *n == name);
        let (_, at) = found
            .next()
            .unwrap_or_else(|| panic!("{name} never started"));
        assert!(found.next().is_none(), "{name} started twice");
        *at
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap()
    }

    /// Checks that each named task started once, at its time, that no other task ran and
    /// that the graph took `makespan` milliseconds.
    fn assert_schedule(&self, starts: &[(&str, u64)], makespan: u64) {
        for &(name, at) in starts {
            assert_eq!(self.start_of(name), at, "start of {name}");
        }
        assert_eq!(self.elapsed_ms(), makespan);
        assert_eq!(self.runs.load(Ordering::SeqCst), starts.len());
    }
}

#[tokio::test(start_paused = true)]
async fn seed_graph_finishes_at_its_critical_path() {
    let log = Log::new();
    let end = dag! {
        a   = log.task("fast_task_a", 100, 1);
        b   = log.task("slow_task_b", 500, a + 10);
        sa  = log.task("slow_task_a", 1000, 2);
        fb  = log.task("fast_task_b", 100, 3);
        c   = log.task("fast_task_c", 100, sa * fb);
        end = log.task("end_task", 100, b + c);
        end
    }
    .await;
    assert_eq!(end, 17);
    // The critical path is slow_task_a, fast_task_c, end_task: 1.2 s. Layer by layer would
    // take 1.6 s and sequentially 1.9 s.
    assert_eq!(log.elapsed_ms(), 1200);
    assert_eq!(log.start_of("fast_task_a"), 0);
    assert_eq!(log.start_of("slow_task_a"), 0);
    assert_eq!(log.start_of("fast_task_b"), 0);
    assert_eq!(
        log.start_of("slow_task_b"),
        100,
        "starts when fast_task_a is done, not after slow_task_a"
    );
    assert_eq!(log.start_of("fast_task_c"), 1000);
    assert_eq!(log.start_of("end_task"), 1100);
    assert_eq!(log.runs.load(Ordering::SeqCst), 6, "each node runs once");
}

/// a -> c, b -> c, b -> d: not series-parallel, so no nesting of joins alone is optimal.
#[tokio::test(start_paused = true)]
async fn n_shaped_graph_is_optimal() {
    for (ta, tb) in [(100, 300), (300, 100)] {
        let log = Log::new();
        let (c, d) = dag! {
            a = log.task("a", ta, 1);
            b = log.task("b", tb, 2);
            c = log.task("c", 50, a + b);
            d = log.task("d", 50, b * 10);
            (c, d)
        }
        .await;
        assert_eq!((c, d), (3, 20));
        assert_eq!(log.start_of("c"), ta.max(tb));
        assert_eq!(log.start_of("d"), tb, "d waits for b only");
        assert_eq!(log.elapsed_ms(), ta.max(tb) + 50);
    }
}

/// Every shape of graph, in a form that needs slots: each node starts at its earliest time.
#[tokio::test(start_paused = true)]
async fn non_series_parallel_graph_starts_every_node_at_its_earliest_time() {
    let log = Log::new();
    // Edges: a->c, a->d, b->d, b->e, c->f, d->f, d->g, e->g.
    let g = dag! {
        a = log.task("a", 30, 1);
        b = log.task("b", 70, 2);
        c = log.task("c", 100, a);
        d = log.task("d", 10, a + b);
        e = log.task("e", 5, b);
        f = log.task("f", 20, c + d);
        g = log.task("g", 20, d * e);
        (f, g)
    }
    .await;
    assert_eq!(g, (1 + 3, 3 * 2));
    let starts = [
        ("a", 0),
        ("b", 0),
        ("c", 30),
        ("d", 70),
        ("e", 70),
        ("f", 130),
        ("g", 80),
    ];
    log.assert_schedule(&starts, 150);
}

#[tokio::test(start_paused = true)]
async fn nodes_may_be_written_in_any_order() {
    let log = Log::new();
    let out = dag! {
        end = log.task("end", 10, b + 1);
        b = log.task("b", 20, a * 2);
        a = log.task("a", 30, 5);
        end
    }
    .await;
    assert_eq!(out, 11);
    assert_eq!(log.start_of("b"), 30);
    assert_eq!(log.start_of("end"), 50);
}

/// Non-series-parallel parts inside a branch of a join and after a sequential stage, written
/// consumers first: each part still starts every node at its earliest time.
#[tokio::test(start_paused = true)]
async fn nested_and_later_non_series_parallel_parts_are_optimal() {
    let log = Log::new();
    let out = dag! {
        j = log.task("j", 10, h * 2);
        i = log.task("i", 10, g + h);
        h = log.task("h", 30, f);
        g = log.task("g", 100, f);
        f = log.task("f", 10, c + d + y);
        d = log.task("d", 50, b * 10);
        c = log.task("c", 50, a + b);
        b = log.task("b", 300, x + 1);
        a = log.task("a", 100, x);
        x = log.task("x", 10, 1);
        y = log.task("y", 200, 7);
        (i, j)
    }
    .await;
    assert_eq!(out, (60, 60));
    let starts = [
        ("x", 0),
        ("y", 0),
        ("a", 10),
        ("b", 10),
        ("c", 310),
        ("d", 310),
        ("f", 360),
        ("g", 370),
        ("h", 370),
        ("j", 400),
        ("i", 470),
    ];
    log.assert_schedule(&starts, 480);
}

/// Branches are polled in the order their nodes are written, whether or not they use slots:
/// the tasks ready at the start start in that order (and of several that fail in the same
/// poll, a fallible graph reports the first).
#[tokio::test(start_paused = true)]
async fn branches_start_in_the_order_they_are_written() {
    let log = Log::new();
    let out = dag! {
        a1 = log.task("a1", 10, 1);
        b1 = log.task("b1", 20, 2);
        c1 = log.task("c1", 10, a1 + b1);
        d1 = log.task("d1", 10, b1 * 2);
        m = log.task("m", 10, 9);
        a2 = log.task("a2", 10, 1);
        b2 = log.task("b2", 20, 2);
        c2 = log.task("c2", 10, a2 + b2);
        d2 = log.task("d2", 10, b2 * 2);
        (c1, d1, m, c2, d2)
    }
    .await;
    assert_eq!(out, (3, 4, 9, 3, 4));
    let first: Vec<&str> = log
        .starts
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at == 0)
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(first, ["a1", "b1", "m", "a2", "b2"]);
}
