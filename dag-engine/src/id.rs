//! Identifiers and statuses: what names a run, an attempt, a node and what became of a task.
//!
//! A leaf module: it imports nothing from the rest of the engine, and everything else may
//! import it.

use core::fmt;
use core::marker::PhantomData;
use std::sync::Arc;

/// What became of a task in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// It has a value: it ran and succeeded, or its value was reused from an earlier run or
    /// given before the run (see [`TaskReport::ran`](crate::TaskReport::ran)).
    Completed,
    /// Its last attempt failed: an error, a panic or a timeout.
    Failed,
    /// It was not called because a task it depends on, directly or not, failed or was
    /// cancelled ([`TaskReport::skipped_because`](crate::TaskReport::skipped_because) names
    /// that task).
    Skipped,
    /// It was running when the run stopped (fail-fast, a cancel, a deadline), or its executor
    /// cancelled it (an aborted spawned task); its attempt was dropped.
    Cancelled,
    /// It did not run: the run stopped first, or the run's plan left it out.
    NotRun,
}

impl Status {
    /// Every status, in the order reports count them.
    pub const ALL: [Self; 5] = [
        Self::Completed,
        Self::Failed,
        Self::Skipped,
        Self::Cancelled,
        Self::NotRun,
    ];

    /// `it ...`, for messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "was skipped",
            Self::Cancelled => "was cancelled",
            Self::NotRun => "did not run",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::NotRun => "not run",
        })
    }
}

/// Where a task is in a run: its status once it has one, and before that whether it waits
/// for inputs, is ready, runs, or waits to retry. What a live
/// [`Snapshot`](crate::Snapshot) shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting for inputs (or left out of the run, until the run ends).
    Waiting,
    /// All inputs are there; waiting for room on its executor.
    Ready,
    /// An attempt is running.
    Running,
    /// An attempt failed; waiting for the backoff before the next one.
    Retrying,
    /// Done, with this status.
    Done(Status),
}

impl TaskState {
    /// The task's status: its final one, or what it would be if the run ended now (tasks in
    /// flight cancelled, the others not run).
    pub fn status(self) -> Status {
        match self {
            Self::Waiting | Self::Ready => Status::NotRun,
            Self::Running | Self::Retrying => Status::Cancelled,
            Self::Done(status) => status,
        }
    }

    /// Whether the task is done.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Done(_))
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Waiting => f.write_str("waiting"),
            Self::Ready => f.write_str("ready"),
            Self::Running => f.write_str("running"),
            Self::Retrying => f.write_str("retrying"),
            Self::Done(status) => fmt::Display::fmt(status, f),
        }
    }
}

/// The key of a run, unique across processes and machines: what its events, its report and
/// the keys of its attempts carry, and what a store or a remote worker files them under.
///
/// By default each run gets a new time-ordered key ([`RunKey::generate`]: a UUID version 7,
/// 48 bits of milliseconds then 74 random bits), so keys sort by the time their runs started;
/// [`RunOptions::run_key`](crate::RunOptions::run_key) gives a run a key of your own, for
/// example to find it again after a restart.
///
/// ```
/// use dagjoin::runtime::RunKey;
///
/// let a = RunKey::generate();
/// let b = RunKey::generate();
/// assert_ne!(a, b);
/// assert_eq!(a.as_str().len(), 36);
///
/// let nightly = RunKey::new("nightly-2026-12-01").unwrap();
/// assert_eq!(nightly.to_string(), "nightly-2026-12-01");
/// assert!(RunKey::new("two words").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey(Arc<str>);

impl RunKey {
    /// The longest key [`new`](RunKey::new) accepts, in bytes.
    pub const MAX_LEN: usize = 128;

    /// A new key, unique with overwhelming probability: a time-ordered UUID (version 7).
    pub fn generate() -> Self {
        let uuid = uuid::Uuid::now_v7();
        let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
        Self(Arc::from(&*uuid.hyphenated().encode_lower(&mut text)))
    }

    /// A key of your own.
    ///
    /// # Errors
    ///
    /// If `key` is empty, longer than [`MAX_LEN`](RunKey::MAX_LEN) bytes, or holds a character
    /// that is not printable ASCII or is a space (keys go into file names, database rows and
    /// message subjects as they are).
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidRunKey> {
        let key = key.into();
        if key.is_empty() || key.len() > Self::MAX_LEN || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(InvalidRunKey { key });
        }
        Ok(Self(Arc::from(key)))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunKey({})", self.0)
    }
}

/// Why [`RunKey::new`] refused a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRunKey {
    key: String,
}

impl fmt::Display for InvalidRunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a run key: a key is 1 to {} printable ASCII characters without spaces",
            self.key.escape_debug(),
            RunKey::MAX_LEN
        )
    }
}

impl std::error::Error for InvalidRunKey {}

/// The key of one attempt of one task in one run: the run's key, the task's name and the
/// attempt's number (from 1). Equal keys mean the same attempt, in any process: what a remote
/// executor deduplicates deliveries by.
///
/// A task sees its own key while it runs, with [`current_attempt`](crate::current_attempt).
///
/// ```
/// use dagjoin::runtime::{AttemptKey, RunKey};
///
/// let run = RunKey::new("r1").unwrap();
/// let key = AttemptKey::new(run, "fetch", 2);
/// assert_eq!(key.to_string(), "run r1, task `fetch`, attempt 2");
/// assert_eq!((key.run().as_str(), key.task(), key.attempt()), ("r1", "fetch", 2));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptKey {
    run: RunKey,
    task: Arc<str>,
    attempt: u32,
}

impl AttemptKey {
    /// The key of attempt `attempt` of task `task` in run `run`.
    pub fn new(run: RunKey, task: impl Into<Arc<str>>, attempt: u32) -> Self {
        Self {
            run,
            task: task.into(),
            attempt,
        }
    }

    /// The run.
    pub fn run(&self) -> &RunKey {
        &self.run
    }

    /// The task's name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl fmt::Display for AttemptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {}, task `{}`, attempt {}",
            self.run, self.task, self.attempt
        )
    }
}

impl fmt::Debug for AttemptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttemptKey({self})")
    }
}

/// An attempt as an [`Executor`](crate::Executor) is given it: borrowed, so that starting an
/// attempt costs no copy of its key; [`key`](Attempt::key) makes the owned [`AttemptKey`].
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    pub(crate) run: &'a RunKey,
    pub(crate) task: &'a str,
    pub(crate) number: u32,
}

impl<'a> Attempt<'a> {
    /// The run.
    pub fn run(&self) -> &'a RunKey {
        self.run
    }

    /// The task's name.
    pub fn task(&self) -> &'a str {
        self.task
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.number
    }

    /// The attempt's owned key.
    pub fn key(&self) -> AttemptKey {
        AttemptKey::new(self.run.clone(), self.task, self.number)
    }
}

impl fmt::Display for Attempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {}, task `{}`, attempt {}",
            self.run, self.task, self.number
        )
    }
}

/// A typed reference to a node of a graph: the parameter
/// ([`GraphBuilder::param`](crate::GraphBuilder::param)) or a task
/// ([`GraphBuilder::add`](crate::GraphBuilder::add) and friends), whose value is a `T`.
///
/// Use it as an input of later tasks and to read the task's value from a run's
/// [`Report`](crate::Report::get). A handle knows the builder it comes from: given to another
/// builder or to the report of another graph, it is an error, never a wrong value.
pub struct Handle<T> {
    pub(crate) builder: u64,
    pub(crate) index: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    pub(crate) fn new(builder: u64, index: u32) -> Self {
        Self {
            builder,
            index,
            _type: PhantomData,
        }
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("builder", &self.builder)
            .field("node", &self.index)
            .field("type", &core::any::type_name::<T>())
            .finish()
    }
}
