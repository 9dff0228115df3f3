//! Options of a run ([`RunOptions`]: limits, fail-fast, its key, a cancel handle and a
//! deadline, event callbacks).

use core::fmt;
use core::task::Waker;
use core::time::Duration;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::event::Event;
use crate::id::RunKey;

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
    /// The most tasks the run may have, the ones it adds as it goes included (a map's
    /// items): a map that would take it past the limit fails, saying so. `None` (the
    /// default) for no limit but the engine's own, 2^32 - 2 tasks.
    pub max_tasks: Option<usize>,
    pub(crate) limits: Vec<(String, usize)>,
    pub(crate) run_key: Option<RunKey>,
    pub(crate) cancel: Option<CancelHandle>,
    pub(crate) deadline: Option<Deadline>,
    pub(crate) observers: Vec<Observer>,
    /// Bars to show the run on: each makes its observer once the graph is known.
    #[cfg(feature = "progress")]
    pub(crate) progress: Vec<crate::Progress>,
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

    /// Sets the most tasks the run may have, added ones included: see
    /// [`max_tasks`](RunOptions#structfield.max_tasks).
    #[must_use]
    pub fn max_tasks(mut self, limit: usize) -> Self {
        self.max_tasks = Some(limit);
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

    /// Shows the run on `progress`, a progress bar (feature `progress`).
    #[cfg(feature = "progress")]
    #[must_use]
    pub fn progress(mut self, progress: &crate::Progress) -> Self {
        self.progress.push(progress.clone());
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
            .field("max_tasks", &self.max_tasks)
            .field("run_key", &self.run_key)
            .field("cancel", &self.cancel)
            .field("deadline", &self.deadline)
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}

/// Stops runs from outside: every run given it ([`RunOptions::cancel_on`]) stops, with its
/// report, as soon as [`cancel`](CancelHandle::cancel) is called. Clones share one flag, and
/// one handle may stop any number of runs.
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
    /// The runs waiting on the handle, by the id each got from `watch`.
    waiting: Mutex<Vec<(u64, Waker)>>,
    next: AtomicU64,
}

impl CancelHandle {
    /// A handle that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every run given this handle, and wakes them.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        let waiting = core::mem::take(&mut *self.waiting());
        for (_, waker) in waiting {
            waker.wake();
        }
    }

    /// Whether [`cancel`](CancelHandle::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// A new id for a run that watches the handle.
    pub(crate) fn watch(&self) -> u64 {
        self.inner.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether cancelled; if not, wakes `waker` when it is, for run `id`.
    pub(crate) fn poll_cancelled(&self, id: u64, waker: &Waker) -> bool {
        if self.is_cancelled() {
            return true;
        }
        {
            let mut waiting = self.waiting();
            match waiting.iter_mut().find(|(run, _)| *run == id) {
                Some((_, known)) if known.will_wake(waker) => {}
                Some((_, known)) => known.clone_from(waker),
                None => waiting.push((id, waker.clone())),
            }
        }
        // A cancel between the check and the registration took the list before the waker
        // was in it: look again.
        self.is_cancelled()
    }

    /// Run `id` no longer waits on the handle.
    pub(crate) fn unwatch(&self, id: u64) {
        self.waiting().retain(|(run, _)| *run != id);
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<(u64, Waker)>> {
        // The list stays consistent whatever panicked while it was held.
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
