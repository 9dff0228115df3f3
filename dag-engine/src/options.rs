//! Options of a task ([`TaskOptions`]: timeout, retries) and of a run ([`RunOptions`]: limits,
//! fail-fast, its key, a cancel handle and a deadline, event callbacks).

use core::fmt;
use core::time::Duration;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use atomic_waker::AtomicWaker;
use tokio::time::Instant;

use crate::event::Event;
use crate::id::RunKey;

/// Per-task options: a timeout for each attempt, and retries with a doubling backoff.
///
/// A failed attempt (an error, a panic, a timeout) is retried up to `retries` times; the
/// first retry waits `backoff`, each further one twice as long as the one before. The task
/// keeps its place among the tasks in flight while it waits. Timeouts and a non-zero backoff
/// use tokio's timer, so they need a tokio runtime with time enabled.
///
/// A timed-out async attempt is dropped. A blocking attempt's timeout counts from the moment
/// it is handed to the blocking pool; if it has not started by then it is aborted, but a
/// closure that is already running cannot be stopped: it runs to its end on its thread, its
/// result is dropped, and it no longer counts towards its executor's limit.
///
/// ```
/// use dagjoin::runtime::TaskOptions;
/// use std::time::Duration;
///
/// let options = TaskOptions::new()
///     .timeout(Duration::from_secs(5))
///     .retries(2)
///     .backoff(Duration::from_millis(100));
/// assert_eq!(options.retries, 2);
/// assert_eq!(TaskOptions::default(), TaskOptions::new());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskOptions {
    /// The longest an attempt may take; `None` (the default) waits forever.
    pub timeout: Option<Duration>,
    /// How many times a failed attempt is retried (default 0).
    pub retries: u32,
    /// The wait before the first retry, doubled before each further one (default zero).
    pub backoff: Duration,
}

impl TaskOptions {
    /// No timeout, no retries.
    pub const fn new() -> Self {
        Self {
            timeout: None,
            retries: 0,
            backoff: Duration::ZERO,
        }
    }

    /// Sets the timeout of each attempt.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how many times a failed attempt is retried.
    #[must_use]
    pub const fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the wait before the first retry (doubled before each further one).
    #[must_use]
    pub const fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The wait before attempt `attempt` (2 or more): `backoff * 2^(attempt - 2)`, saturating.
    pub(crate) fn backoff_before(&self, attempt: u32) -> Duration {
        match 2_u32.checked_pow(attempt.saturating_sub(2)) {
            Some(factor) => self.backoff.saturating_mul(factor),
            None if self.backoff.is_zero() => Duration::ZERO,
            None => Duration::MAX,
        }
    }
}

/// A callback that observes a run's events.
pub(crate) type Observer = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Options of a run: limits on the tasks in flight per executor, fail-fast, the run's key, a
/// way to stop it from outside with its report, and callbacks that see every event.
///
/// ```
/// use dagjoin::runtime::{CancelHandle, RunOptions};
/// use std::time::Duration;
///
/// let cancel = CancelHandle::new();
/// let options = RunOptions::new()
///     .max_in_flight(8)
///     .max_blocking(2)
///     .fail_fast(true)
///     .time_limit(Duration::from_secs(60))
///     .cancel_on(&cancel)
///     .on_event(|event| println!("{event}"));
/// assert_eq!(options.max_in_flight, Some(8));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// The most tasks in flight at once on the run's own task ([`Inline`](crate::Inline)),
    /// a task waiting to retry included; `None` (the default) for no limit. 0 counts as 1.
    pub max_in_flight: Option<usize>,
    /// The most tasks in flight at once on tokio's blocking pool
    /// ([`BlockingPool`](crate::BlockingPool)); `None` (the default) leaves the limit to
    /// tokio's pool. 0 counts as 1.
    pub max_blocking: Option<usize>,
    /// The most tasks in flight at once as tokio tasks of their own
    /// ([`Spawned`](crate::Spawned)); `None` (the default) for no limit. 0 counts as 1.
    pub max_spawned: Option<usize>,
    /// Stop at the first failure: cancel (drop) every task in flight and start no other.
    /// `false` (the default) keeps going: only the failed task's descendants are skipped.
    pub fail_fast: bool,
    pub(crate) limits: Vec<(String, usize)>,
    pub(crate) run_key: Option<RunKey>,
    pub(crate) cancel: Option<CancelHandle>,
    pub(crate) deadline: Option<Deadline>,
    pub(crate) observers: Vec<Observer>,
}

/// When a run must stop.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    At(Instant),
    After(Duration),
}

impl RunOptions {
    /// No limits, keep going after failures, a new key, no deadline, no callbacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the most tasks in flight at once on the run's own task.
    #[must_use]
    pub fn max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = Some(limit);
        self
    }

    /// Sets the most tasks in flight at once on the blocking pool.
    #[must_use]
    pub fn max_blocking(mut self, limit: usize) -> Self {
        self.max_blocking = Some(limit);
        self
    }

    /// Sets the most tasks in flight at once as spawned tokio tasks.
    #[must_use]
    pub fn max_spawned(mut self, limit: usize) -> Self {
        self.max_spawned = Some(limit);
        self
    }

    /// Sets the most tasks in flight at once on the executor named `executor` (one of your
    /// own, or `inline`, `blocking`, `spawned`): at most `limit` (0 counts as 1), and never
    /// more than the executor's own [`max_in_flight`](crate::Executor::max_in_flight).
    #[must_use]
    pub fn limit(mut self, executor: impl Into<String>, limit: usize) -> Self {
        self.limits.push((executor.into(), limit));
        self
    }

    /// Sets whether the run stops at the first failure.
    #[must_use]
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Gives the run this key instead of a new one ([`RunKey::generate`]).
    #[must_use]
    pub fn run_key(mut self, key: RunKey) -> Self {
        self.run_key = Some(key);
        self
    }

    /// Stops the run when `handle` is cancelled: tasks in flight are cancelled, the others do
    /// not run, and the run resolves to its report so far, which
    /// [`Graph::again`](crate::Graph::again) can continue.
    #[must_use]
    pub fn cancel_on(mut self, handle: &CancelHandle) -> Self {
        self.cancel = Some(handle.clone());
        self
    }

    /// Stops the run at `deadline`, as a cancel does ([`cancel_on`](RunOptions::cancel_on)).
    /// Needs a tokio runtime with time enabled.
    #[must_use]
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(Deadline::At(deadline));
        self
    }

    /// Stops the run `limit` after it starts (its first poll), as a cancel does. Needs a tokio
    /// runtime with time enabled.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.deadline = Some(Deadline::After(limit));
        self
    }

    /// Calls `callback` with each event of the run, synchronously, on the run's task, as the
    /// run's state changes (see [`Event`] for what is guaranteed). Keep it short: the run
    /// waits for it. Several callbacks are called in the order they were given.
    #[must_use]
    pub fn on_event(mut self, callback: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.observers.push(Arc::new(callback));
        self
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("max_in_flight", &self.max_in_flight)
            .field("max_blocking", &self.max_blocking)
            .field("max_spawned", &self.max_spawned)
            .field("limits", &self.limits)
            .field("fail_fast", &self.fail_fast)
            .field("run_key", &self.run_key)
            .field("cancel", &self.cancel)
            .field("deadline", &self.deadline)
            .field("observers", &self.observers.len())
            .finish()
    }
}

/// Stops runs from outside: every run given it ([`RunOptions::cancel_on`]) stops at its next
/// poll after [`cancel`](CancelHandle::cancel), with its report. Clones share one flag.
///
/// ```
/// use dagjoin::runtime::CancelHandle;
///
/// let handle = CancelHandle::new();
/// let clone = handle.clone();
/// clone.cancel();
/// assert!(handle.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancelHandle {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    waker: AtomicWaker,
}

impl CancelHandle {
    /// A handle that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every run given this handle; wakes the one polled last (one run per handle is
    /// what it is for; other runs see it at their next poll).
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        self.inner.waker.wake();
    }

    /// Whether [`cancel`](CancelHandle::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Whether cancelled; if not, wakes `waker` when it is.
    pub(crate) fn poll_cancelled(&self, waker: &core::task::Waker) -> bool {
        if self.is_cancelled() {
            return true;
        }
        self.inner.waker.register(waker);
        self.is_cancelled()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        let options = TaskOptions::new().backoff(Duration::from_millis(10));
        assert_eq!(options.backoff_before(2), Duration::from_millis(10));
        assert_eq!(options.backoff_before(3), Duration::from_millis(20));
        assert_eq!(options.backoff_before(5), Duration::from_millis(80));
        assert_eq!(options.backoff_before(200), Duration::MAX);
    }
}
