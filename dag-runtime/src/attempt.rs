//! Attempts of a node with `#[timeout(..)]` or `#[retry(..)]`: [`timeout()`] bounds one
//! attempt, [`Retry`] decides whether a failed attempt is tried again and how long to wait
//! first, and [`CloneForRetry`] gives each attempt its own copy of the node's inputs.
//!
//! The semantics are those of the engine's `TaskOptions`: the limit bounds each attempt, a
//! failed attempt (an error or a timeout) is retried up to `retries` times, the first retry
//! waits the backoff and each further one twice as long as the one before.
//!
//! ```
//! use dag_runtime::Retry;
//!
//! # futures::executor::block_on(async {
//! let mut retry = Retry::new(2);
//! let mut attempts = 0;
//! let value = loop {
//!     attempts += 1;
//!     let result = if attempts < 3 { Err("busy") } else { Ok(attempts * 10) };
//!     match result {
//!         Ok(value) => break value,
//!         Err(error) => retry.failed(error).await.unwrap(),
//!     }
//! };
//! assert_eq!(value, 30);
//! # });
//! ```

use core::fmt;
use core::time::Duration;

/// The error of a node whose attempt took longer than its `#[timeout(..)]`.
///
/// Its message names the node and the limit: ``task `fetch` timed out after 50ms``. A graph
/// with its own error type (`type Error = MyError;`) converts it with `From<TimedOut>`.
///
/// ```
/// use dagjoin::TimedOut;
///
/// /// A library's own error type, for `type Error = FetchError;` in its graphs.
/// #[derive(Debug)]
/// enum FetchError {
///     Io(std::io::Error),
///     TooSlow { task: &'static str },
/// }
///
/// impl From<TimedOut> for FetchError {
///     fn from(error: TimedOut) -> Self {
///         FetchError::TooSlow { task: error.task() }
///     }
/// }
/// # let _ = FetchError::Io(std::io::Error::other("unused"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut {
    task: &'static str,
    after: Duration,
}

impl TimedOut {
    /// The node that timed out.
    pub fn task(&self) -> &'static str {
        self.task
    }

    /// The limit that elapsed.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task `{}` timed out after {:?}", self.task, self.after)
    }
}

impl std::error::Error for TimedOut {}

/// One attempt of node `task`, given `limit`: its output, or [`TimedOut`] when it takes
/// longer. An attempt that ends at the very instant of its limit succeeds. Needs a tokio
/// runtime with time enabled.
///
/// # Errors
///
/// [`TimedOut`] when `limit` passes before `future` is done; `future` is then dropped.
///
/// ```
/// use dag_runtime::timeout;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let slow = tokio::time::sleep(Duration::from_secs(1));
/// let error = timeout(Duration::from_millis(5), "slow", slow).await.unwrap_err();
/// assert_eq!(error.to_string(), "task `slow` timed out after 5ms");
/// assert_eq!(timeout(Duration::from_secs(1), "fast", async { 7 }).await, Ok(7));
/// # });
/// ```
#[cfg(feature = "tokio")]
pub async fn timeout<F: core::future::IntoFuture>(
    limit: Duration,
    task: &'static str,
    future: F,
) -> Result<F::Output, TimedOut> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| TimedOut { task, after: limit })
}

/// What is left of a node's retries: whether a failed attempt is tried again, after which
/// wait (see the [module](self)'s example).
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    retries: u32,
    /// Retries made so far.
    made: u32,
    backoff: Duration,
}

impl Retry {
    /// Up to `retries` retries, without waiting between attempts.
    pub const fn new(retries: u32) -> Self {
        Retry {
            retries,
            made: 0,
            backoff: Duration::ZERO,
        }
    }

    /// Up to `retries` retries; the first waits `backoff`, each further one twice as long as
    /// the one before. Waiting needs a tokio runtime with time enabled.
    #[cfg(feature = "tokio")]
    pub const fn with_backoff(retries: u32, backoff: Duration) -> Self {
        Retry {
            retries,
            made: 0,
            backoff,
        }
    }

    /// After an attempt failed with `error`: `Ok` once the backoff has passed, and the next
    /// attempt may start.
    ///
    /// # Errors
    ///
    /// `error` itself when no retry is left.
    pub async fn failed<E>(&mut self, error: E) -> Result<(), E> {
        if self.made == self.retries {
            return Err(error);
        }
        drop(error);
        let wait = doubled(self.backoff, self.made);
        self.made += 1;
        #[cfg(feature = "tokio")]
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            return Ok(());
        }
        #[cfg(not(feature = "tokio"))]
        debug_assert!(wait.is_zero(), "a backoff is only made with `tokio`");
        // Lets the rest of the graph run before the next attempt, which may fail without ever
        // waiting.
        YieldNow::default().await;
        Ok(())
    }
}

/// Wakes its task and returns `Pending` once, then is ready.
#[derive(Default)]
pub(crate) struct YieldNow(bool);

impl core::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<()> {
        if self.0 {
            return core::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        core::task::Poll::Pending
    }
}

/// `wait` doubled `times` times, or [`Duration::MAX`] if that is longer: the wait before a
/// retry when the first waited `wait`.
///
/// ```
/// use dag_runtime::attempt::doubled;
/// use std::time::Duration;
///
/// assert_eq!(doubled(Duration::from_millis(10), 3), Duration::from_millis(80));
/// assert_eq!(doubled(Duration::from_nanos(1), 40), Duration::from_nanos(1 << 40));
/// assert_eq!(doubled(Duration::from_secs(1), 200), Duration::MAX);
/// assert_eq!(doubled(Duration::ZERO, 200), Duration::ZERO);
/// ```
pub fn doubled(wait: Duration, times: u32) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    if wait.is_zero() {
        return Duration::ZERO;
    }
    let nanos = 1_u128
        .checked_shl(times)
        .and_then(|factor| wait.as_nanos().checked_mul(factor));
    match nanos.map(|n| (u64::try_from(n / NANOS_PER_SEC), n % NANOS_PER_SEC)) {
        Some((Ok(secs), sub)) => Duration::new(secs, u32::try_from(sub).expect("below a second")),
        _ => Duration::MAX,
    }
}

/// A copy of a retried node's input for one attempt: [`Clone`], under a name that makes the
/// error say why a value that is not `Clone` cannot be used.
///
/// ```
/// use dag_runtime::CloneForRetry;
///
/// assert_eq!(vec![1, 2].clone_for_retry(), [1, 2]);
/// ```
#[diagnostic::on_unimplemented(
    message = "a task with `#[retry]` takes `{Self}` by value, but `{Self}` is not `Clone`",
    label = "each attempt needs its own `{Self}`",
    note = "borrow it (`&name`) if the task only reads it, wrap it in an `Arc`, or implement `Clone` for it"
)]
pub trait CloneForRetry {
    /// A copy for the next attempt.
    #[must_use]
    fn clone_for_retry(&self) -> Self;
}

impl<T: Clone> CloneForRetry for T {
    #[inline]
    fn clone_for_retry(&self) -> Self {
        self.clone()
    }
}

/// A copy of `value` for the next attempt of a retried node.
///
/// ```
/// let input = String::from("payload");
/// let copy: String = dag_runtime::clone_for_retry(&input);
/// assert_eq!(copy, input);
/// ```
#[inline]
pub fn clone_for_retry<T: CloneForRetry>(value: &T) -> T {
    value.clone_for_retry()
}

/// The error type of a graph with a `#[timeout]` node: one that holds a [`TimedOut`], through
/// `From<TimedOut>` (see [`timed_out_into`]).
#[diagnostic::on_unimplemented(
    message = "the graph's error type `{Self}` cannot hold a timeout",
    label = "this task's timeout needs `{Self}: From<dagjoin::TimedOut>`",
    note = "implement `From<dagjoin::TimedOut>` for `{Self}`"
)]
pub trait FromTimedOut {
    /// `error` in this type.
    fn from_timed_out(error: TimedOut) -> Self;
}

impl<E: From<TimedOut>> FromTimedOut for E {
    #[inline]
    fn from_timed_out(error: TimedOut) -> Self {
        E::from(error)
    }
}

/// `error` in the graph's own error type `E`.
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let slow = std::future::pending::<()>();
/// let error = dag_runtime::timeout(std::time::Duration::from_secs(1), "slow", slow).await.unwrap_err();
/// let boxed: Box<dyn std::error::Error> = dag_runtime::timed_out_into(error);
/// assert_eq!(boxed.to_string(), "task `slow` timed out after 1s");
/// # });
/// # }
/// ```
#[inline]
pub fn timed_out_into<E: FromTimedOut>(error: TimedOut) -> E {
    E::from_timed_out(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_saturate() {
        let retry = Retry {
            retries: 40,
            made: 0,
            backoff: Duration::from_millis(10),
        };
        let wait_before = |retry: &Retry, made| doubled(retry.backoff, made);
        let waits: Vec<u64> = (0..4)
            .map(|made| u64::try_from(wait_before(&retry, made).as_millis()).unwrap())
            .collect();
        assert_eq!(waits, [10, 20, 40, 80]);
        // 10 ms * 2^40 is about 348 years: long, but not forever.
        assert_eq!(
            wait_before(&retry, 40),
            Duration::from_millis(10 * (1 << 40))
        );
        assert_eq!(wait_before(&retry, 100), Duration::MAX);
        assert_eq!(wait_before(&Retry::new(40), 40), Duration::ZERO);
    }

    #[test]
    fn gives_up_after_its_retries_with_the_last_error() {
        futures::executor::block_on(async {
            let mut retry = Retry::new(2);
            assert_eq!(retry.failed("first").await, Ok(()));
            assert_eq!(retry.failed("second").await, Ok(()));
            assert_eq!(retry.failed("third").await, Err("third"));
            assert_eq!(Retry::new(0).failed(7).await, Err(7));
        });
    }

    #[test]
    fn a_retry_without_backoff_lets_others_run_first() {
        use core::future::Future;
        use core::task::{Context, Poll};
        let mut retry = Retry::new(1);
        let mut failed = core::pin::pin!(retry.failed("busy"));
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert_eq!(failed.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(failed.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    }

    /// A runtime whose clock moves only when every task waits.
    #[cfg(feature = "tokio")]
    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn backoff_waits_on_the_clock() {
        paused().block_on(async {
            let start = tokio::time::Instant::now();
            let mut retry = Retry::with_backoff(2, Duration::from_millis(100));
            retry.failed(()).await.unwrap();
            assert_eq!(start.elapsed(), Duration::from_millis(100));
            retry.failed(()).await.unwrap();
            assert_eq!(start.elapsed(), Duration::from_millis(300));
            assert_eq!(retry.failed(()).await, Err(()));
            assert_eq!(start.elapsed(), Duration::from_millis(300));
        });
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn timeout_names_the_task_and_an_attempt_at_its_limit_succeeds() {
        paused().block_on(async {
            let start = tokio::time::Instant::now();
            let limit = Duration::from_millis(50);
            let late = tokio::time::sleep(Duration::from_millis(51));
            let error = timeout(limit, "late", late).await.unwrap_err();
            assert_eq!(start.elapsed(), limit);
            assert_eq!(error.task(), "late");
            assert_eq!(error.after(), limit);
            assert_eq!(error.to_string(), "task `late` timed out after 50ms");
            let start = tokio::time::Instant::now();
            let on_time = tokio::time::sleep(limit);
            assert_eq!(timeout(limit, "on_time", on_time).await, Ok(()));
            assert_eq!(start.elapsed(), limit);
        });
    }
}
