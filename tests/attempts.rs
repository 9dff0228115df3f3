//! `#[timeout(..)]` and `#[retry(..)]` on a node: a timeout is the node's failure, and a retry
//! evaluates the node's expression again, with fresh copies of its inputs. Times are read on
//! tokio's paused clock, which moves only when every task waits.

#![allow(clippy::unused_async, reason = "stand-ins for real async tasks")]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagjoin::{dag, TimedOut};
use tokio::time::{sleep, Instant};

mod common;
use common::DropGuard;

const MS: Duration = Duration::from_millis(1);

/// Milliseconds since `start`.
fn ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap()
}

/// Sleeps `millis`, then gives `value`.
async fn after<T>(millis: u64, value: T) -> T {
    sleep(MS * u32::try_from(millis).unwrap()).await;
    value
}

/// A service that fails its first `failures` calls, each after `millis`, and records when
/// each call started.
struct Flaky {
    failures: u32,
    millis: u64,
    calls: AtomicU32,
    started: Mutex<Vec<u64>>,
    start: Instant,
}

impl Flaky {
    fn new(failures: u32, millis: u64) -> Self {
        Flaky {
            failures,
            millis,
            calls: AtomicU32::new(0),
            started: Mutex::new(Vec::new()),
            start: Instant::now(),
        }
    }

    async fn call(&self, value: u32) -> Result<u32, std::io::Error> {
        self.started.lock().unwrap().push(ms(self.start));
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        after(self.millis, ()).await;
        if call <= self.failures {
            Err(std::io::Error::other(format!("busy (call {call})")))
        } else {
            Ok(value * 10)
        }
    }

    fn started(&self) -> Vec<u64> {
        self.started.lock().unwrap().clone()
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_times_out_at_exactly_its_limit_and_the_run_ends_there() {
    let start = Instant::now();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropGuard(dropped.clone());
    let error = dag! {
        #[timeout(Duration::from_millis(50))]
        slow = after(100, 1);
        sibling = async move {
            let _flag = flag;
            after(1_000, 2).await
        };
        (slow, sibling)
    }
    .await
    .unwrap_err();
    assert_eq!(ms(start), 50);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the sibling was not cancelled"
    );
    assert_eq!(format!("{error:#}"), "task `slow` timed out after 50ms");
    let timed_out = error.downcast_ref::<TimedOut>().expect("a TimedOut");
    assert_eq!(timed_out.task(), "slow");
    assert_eq!(timed_out.after(), 50 * MS);
}

#[tokio::test(start_paused = true)]
async fn a_node_that_ends_at_its_limit_succeeds_and_a_limit_counts_from_the_nodes_start() {
    let start = Instant::now();
    let out = dag! {
        a = after(30, 1);
        // Starts at 30 ms: its 50 ms count from then, not from the run's start.
        #[timeout(50ms)]
        b = after(50, a + 1);
        b
    }
    .await;
    assert_eq!(out.unwrap(), 2);
    assert_eq!(ms(start), 80);
}

#[tokio::test(start_paused = true)]
async fn a_node_that_succeeds_on_its_third_attempt_starts_its_consumer_then() {
    let flaky = Flaky::new(2, 10);
    let start = Instant::now();
    let consumer_started = Mutex::new(None);
    let out = dag! {
        #[retry(2, backoff = 100ms)]
        value = flaky.call(4)?;
        other = after(5, 1);
        used = async {
            *consumer_started.lock().unwrap() = Some(ms(start));
            value + other
        };
        used
    }
    .await;
    assert_eq!(out.unwrap(), 41);
    // Attempt 1 fails at 10 ms, waits 100; attempt 2 fails at 120, waits 200; attempt 3 ends
    // at 330.
    assert_eq!(flaky.started(), [0, 110, 320]);
    assert_eq!(*consumer_started.lock().unwrap(), Some(330));
}

#[tokio::test(start_paused = true)]
async fn when_the_retries_run_out_the_last_error_names_the_node() {
    let flaky = Flaky::new(10, 1);
    let error = dag! {
        #[retry(3)]
        fetch = flaky.call(1)?;
        fetch
    }
    .await
    .unwrap_err();
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 4);
    assert_eq!(format!("{error:#}"), "task `fetch` failed: busy (call 4)");
    // No backoff: the attempts follow each other at once.
    assert_eq!(flaky.started(), [0, 1, 2, 3]);
}

/// A value that counts its clones.
#[derive(Debug)]
struct Counted(Arc<AtomicU32>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, Ordering::SeqCst);
        Counted(self.0.clone())
    }
}

/// Takes its input by value, and fails while `failures` lasts.
async fn consume(input: Counted, failures: &AtomicU32) -> Result<u32, std::io::Error> {
    drop(input);
    if failures.load(Ordering::SeqCst) > 0 {
        failures.fetch_sub(1, Ordering::SeqCst);
        return Err(std::io::Error::other("not yet"));
    }
    Ok(7)
}

/// Not `Clone`: a retried node can still borrow it.
struct Connection {
    id: u32,
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_its_own_copy_of_what_it_takes_and_borrows_the_rest() {
    let clones = Arc::new(AtomicU32::new(0));
    let failures = AtomicU32::new(2);
    let input = Counted(clones.clone());
    let out = dag! {
        value = async move { input };
        conn = async { Connection { id: 3 } };
        #[retry(5)]
        used = consume(value, &failures)?;
        #[retry(1)]
        id = async { conn.id.checked_add(0).ok_or(std::io::Error::other("overflow")) }?;
        (used, id, conn.id)
    }
    .await;
    assert_eq!(out.unwrap(), (7, 3, 3));
    // One copy per attempt.
    assert_eq!(clones.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let out = dag! {
        #[timeout(20ms)]
        #[retry(1, backoff = Duration::from_millis(5))]
        value = async {
            // The first attempt takes too long.
            let call = calls.fetch_add(1, Ordering::SeqCst);
            after(if call == 0 { 1_000 } else { 10 }, call).await
        };
        value
    }
    .await;
    assert_eq!(out.unwrap(), 1);
    assert_eq!(ms(start), 20 + 5 + 10);
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_errors_of_one_node_both_fail_it() {
    let run = |millis: u64, fails: bool| {
        dag! {
            move;
            #[timeout(50ms)]
            value = async move {
                after(millis, ()).await;
                if fails { Err(std::io::Error::other("refused")) } else { Ok(millis) }
            }?;
            value
        }
    };
    assert_eq!(run(10, false).await.unwrap(), 10);
    let error = run(10, true).await.unwrap_err();
    assert_eq!(format!("{error:#}"), "task `value` failed: refused");
    let error = run(60, false).await.unwrap_err();
    assert_eq!(format!("{error:#}"), "task `value` timed out after 50ms");
}

#[derive(Debug, PartialEq)]
enum MyError {
    Io(String),
    TimedOut { task: &'static str },
}

impl From<std::io::Error> for MyError {
    fn from(error: std::io::Error) -> Self {
        MyError::Io(error.to_string())
    }
}

impl From<TimedOut> for MyError {
    fn from(error: TimedOut) -> Self {
        MyError::TimedOut { task: error.task() }
    }
}

#[tokio::test(start_paused = true)]
async fn a_graph_with_its_own_error_type_converts_timeouts_and_retried_errors() {
    let flaky = Flaky::new(5, 1);
    let result: Result<u32, MyError> = dag! {
        type Error = MyError;
        #[timeout(10ms)]
        slow = after(20, 1);
        slow
    }
    .await;
    assert_eq!(result, Err(MyError::TimedOut { task: "slow" }));
    let result: Result<u32, MyError> = dag! {
        type Error = MyError;
        #[retry(1)]
        fetch = flaky.call(1)?;
        fetch
    }
    .await;
    assert_eq!(result, Err(MyError::Io("busy (call 2)".to_owned())));
}

/// Calls of the blocking node below: a closure on the blocking pool owns what it names, so
/// the count cannot be a local it borrows.
static BLOCKING_CALLS: AtomicU32 = AtomicU32::new(0);

#[tokio::test(start_paused = true)]
async fn spawned_and_blocking_nodes_are_retried_and_a_spawned_one_times_out() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropGuard(dropped.clone());
    let out = dag! {
        seed = async { 2_u32 };
        #[spawn]
        #[retry(2)]
        spawned = {
            // Variables from outside are used as in the body of a loop.
            let counter = counter.clone();
            async move {
                let call = counter.fetch_add(1, Ordering::SeqCst);
                if call < 2 { Err(std::io::Error::other("again")) } else { Ok(seed * 10) }
            }
        }?;
        #[blocking]
        #[retry(1)]
        blocking = match BLOCKING_CALLS.fetch_add(1, Ordering::SeqCst) {
            0 => Err(std::io::Error::other("first call")),
            _ => Ok(seed + 1),
        }?;
        (spawned, blocking)
    }
    .await;
    assert_eq!(out.unwrap(), (20, 3));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(BLOCKING_CALLS.load(Ordering::SeqCst), 2);

    let start = Instant::now();
    let error = dag! {
        #[spawn]
        #[timeout(5ms)]
        spawned = async move {
            let _flag = flag;
            after(1_000, ()).await;
        };
    }
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "task `spawned` timed out after 5ms");
    assert_eq!(ms(start), 5);
    // The timed-out task was aborted: its future is dropped.
    tokio::task::yield_now().await;
    assert!(
        dropped.load(Ordering::SeqCst),
        "the spawned task still runs"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retried_node_in_a_graph_that_is_not_series_parallel() {
    let flaky = Flaky::new(1, 10);
    let start = Instant::now();
    let started = Mutex::new(Vec::new());
    // The N shape: `c` uses `a` and `b`, `d` only `b`, so `b` lives in a slot.
    let out = dag! {
        a = after(50, 1);
        #[retry(1, backoff = 10ms)]
        b = flaky.call(2)?;
        c = async { started.lock().unwrap().push(("c", ms(start))); a + b };
        d = async { started.lock().unwrap().push(("d", ms(start))); b * 2 };
        (c, d)
    }
    .await;
    assert_eq!(out.unwrap(), (21, 40));
    // `b` fails at 10 ms, waits 10, succeeds at 30: `d` starts then, `c` when `a` is done.
    assert_eq!(*started.lock().unwrap(), [("d", 30), ("c", 50)]);
}

#[tokio::test(start_paused = true)]
async fn limits_and_counts_may_be_expressions() {
    let limit = Duration::from_millis(15);
    let retries = 2;
    let flaky = Flaky::new(2, 20);
    let out = dag! {
        #[timeout(limit)]
        #[retry(retries)]
        value = flaky.call(1)?;
        value
    }
    .await;
    // Each attempt times out at 15 ms, before the service answers.
    let error = out.unwrap_err();
    assert_eq!(error.to_string(), "task `value` timed out after 15ms");
    assert_eq!(flaky.started(), [0, 15, 30]);
}

#[tokio::test(start_paused = true)]
async fn the_macros_own_names_do_not_hide_the_users() {
    let __dag_limit = 7_u32;
    let __dag_retries = 1_u32;
    let out = dag! {
        #[timeout(1s)]
        #[retry(__dag_retries)]
        value = async { Ok::<_, std::io::Error>(__dag_limit) }?;
        value
    }
    .await;
    assert_eq!(out.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn attempts_that_fail_at_once_let_the_rest_of_the_graph_run() {
    let attempts = AtomicU32::new(0);
    let seen = Mutex::new(Vec::new());
    let out = dag! {
        #[retry(3)]
        failing = async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<u32, _>(std::io::Error::other("down"))
        }?;
        watcher = async {
            for _ in 0..3 {
                seen.lock().unwrap().push(attempts.load(Ordering::SeqCst));
                tokio::task::yield_now().await;
            }
        };
        (failing, watcher)
    }
    .await;
    assert_eq!(out.unwrap_err().to_string(), "task `failing` failed");
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    // The watcher ran between attempts, not only after the last one.
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
#[allow(
    clippy::await_holding_lock,
    reason = "the guard is held during the attempt, and the test is about when it ends"
)]
async fn an_attempts_temporaries_end_before_its_backoff() {
    let shared = Mutex::new(0_u32);
    let flaky = Flaky::new(1, 0);
    let out = dag! {
        // The guard is a temporary of the expression.
        #[retry(1, backoff = 10ms)]
        value = flaky.call(*shared.lock().unwrap())?;
        // Runs during the backoff.
        free = async {
            after(5, ()).await;
            shared.try_lock().is_ok()
        };
        (value, free)
    }
    .await;
    assert_eq!(out.unwrap(), (0, true));
}
