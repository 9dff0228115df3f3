//! What a run announces: an [`Event`] for each change of a task's state and for the run's
//! start and end, given to the callbacks of [`RunOptions::on_event`](crate::RunOptions) and
//! to the [`Events`] stream of [`Run::events`](crate::Run::events).
//!
//! Guarantees, for every run that resolves (a run whose future is dropped stops where it is,
//! without further events; its stream ends):
//! - the run's first event is [`EventKind::RunStarted`] and its last [`EventKind::RunFinished`];
//! - every task gets exactly one terminal event (completed, failed, skipped, cancelled or not
//!   run); a task given its value before the run (reused, marked done) gets a
//!   [`EventKind::Completed`] with `attempt` 0 right after the run's start;
//! - a task's [`EventKind::Started`] comes after the [`EventKind::Completed`] of each of its
//!   inputs; a skipped task gets no `Started`;
//! - every event is delivered before the run's future resolves: callbacks are called as the
//!   state changes, on the run's task, and the stream has every event before it ends.

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::borrow::Cow;
use std::sync::Arc;

use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::graph::GraphInner;
use crate::grow::Added;
use crate::id::RunKey;

/// The name of the task an [`Event`] is about, looked up in the graph only when read (an
/// observer that does not read it does not pay for it). Reads as a `str`.
#[derive(Clone)]
pub struct TaskName<'a>(Name<'a>);

#[derive(Clone)]
enum Name<'a> {
    Node(&'a GraphInner, u32),
    /// A task added while the run went on.
    Added(&'a Added, u32),
    Owned(Arc<str>),
}

impl<'a> TaskName<'a> {
    pub(crate) fn new(graph: &'a GraphInner, node: u32) -> Self {
        Self(Name::Node(graph, node))
    }

    /// Task `node`, added while the run went on, called `name`.
    pub(crate) fn added(added: &'a Added, node: u32) -> Self {
        Self(Name::Added(added, node))
    }

    /// A name of its own (a rule's).
    pub(crate) fn text(name: &str) -> TaskName<'static> {
        TaskName(Name::Owned(Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Name::Node(graph, node) => graph.name(*node),
            Name::Added(added, node) => added.name(*node),
            Name::Owned(name) => name,
        }
    }

    /// The task's node in its graph, while the name is borrowed from it.
    pub(crate) fn node(&self) -> Option<u32> {
        match self.0 {
            Name::Node(_, node) | Name::Added(_, node) => Some(node),
            Name::Owned(_) => None,
        }
    }

    /// The name, copied out of the graph.
    pub fn into_owned(self) -> TaskName<'static> {
        TaskName(match self.0 {
            Name::Owned(name) => Name::Owned(name),
            _ => Name::Owned(Arc::from(self.as_str())),
        })
    }
}

impl core::ops::Deref for TaskName<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TaskName<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for TaskName<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TaskName<'_> {}

impl PartialEq<str> for TaskName<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TaskName<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for TaskName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TaskName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One change of a run's state: what happened, when, to which task.
///
/// Callbacks get it borrowed (`Event<'_>`: task names are read from the graph when asked
/// for, nothing is copied per event); [`into_owned`](Event::into_owned) makes an
/// `Event<'static>` to keep.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Event<'a> {
    /// When it happened (tokio's clock, exact under `tokio::time::pause()`).
    pub at: Instant,
    /// What happened.
    pub kind: EventKind<'a>,
}

/// What happened, with the task's name and attempt, and the error or reason where there is
/// one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// The run started: its first event.
    RunStarted {
        /// The run's key.
        run: RunKey,
        /// How many tasks the graph has.
        tasks: usize,
    },
    /// All the task's inputs have values: it starts as soon as its executor has room.
    Ready {
        /// The task.
        task: TaskName<'a>,
    },
    /// An attempt of the task started.
    Started {
        /// The task.
        task: TaskName<'a>,
        /// The attempt, from 1.
        attempt: u32,
        /// The executor it runs on.
        executor: Cow<'a, str>,
    },
    /// The task has its value. Terminal.
    Completed {
        /// The task.
        task: TaskName<'a>,
        /// The attempt that produced the value; 0 for a value given before the run (reused
        /// from an earlier run, or marked done).
        attempt: u32,
    },
    /// An attempt failed and the task will be tried again after `backoff`.
    Retrying {
        /// The task.
        task: TaskName<'a>,
        /// The attempt that failed.
        attempt: u32,
        /// Its error.
        error: Arc<anyhow::Error>,
        /// The wait before the next attempt.
        backoff: Duration,
    },
    /// The task's last attempt failed. Terminal.
    Failed {
        /// The task.
        task: TaskName<'a>,
        /// The attempt that failed.
        attempt: u32,
        /// Its error.
        error: Arc<anyhow::Error>,
    },
    /// The task will not run: a task it depends on failed or was cancelled. Terminal.
    Skipped {
        /// The task.
        task: TaskName<'a>,
        /// The task that failed or was cancelled.
        because: TaskName<'a>,
    },
    /// The task's attempt was stopped. Terminal.
    Cancelled {
        /// The task.
        task: TaskName<'a>,
        /// The attempt that was stopped.
        attempt: u32,
    },
    /// The task was added to the graph while the run went on, by task or rule `by` (its first
    /// event).
    Added {
        /// The task.
        task: TaskName<'a>,
        /// The task (a map, a growth step) or rule that added it.
        by: TaskName<'a>,
    },
    /// The task did not run: the run stopped first, or its plan left the task out. Terminal.
    NotRun {
        /// The task.
        task: TaskName<'a>,
    },
    /// The run ended: its last event.
    RunFinished {
        /// The run's key.
        run: RunKey,
    },
}

impl Event<'_> {
    /// The task the event is about; `None` for the run's start and end.
    pub fn task(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Ready { task }
            | EventKind::Started { task, .. }
            | EventKind::Completed { task, .. }
            | EventKind::Retrying { task, .. }
            | EventKind::Failed { task, .. }
            | EventKind::Skipped { task, .. }
            | EventKind::Cancelled { task, .. }
            | EventKind::Added { task, .. }
            | EventKind::NotRun { task } => Some(task.as_str()),
            EventKind::RunStarted { .. } | EventKind::RunFinished { .. } => None,
        }
    }

    /// Whether this is a task's last event in the run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.kind,
            EventKind::Completed { .. }
                | EventKind::Failed { .. }
                | EventKind::Skipped { .. }
                | EventKind::Cancelled { .. }
                | EventKind::NotRun { .. }
        )
    }

    /// The event with its names copied, to keep.
    pub fn into_owned(self) -> Event<'static> {
        fn own(name: TaskName<'_>) -> TaskName<'static> {
            name.into_owned()
        }
        let kind = match self.kind {
            EventKind::RunStarted { run, tasks } => EventKind::RunStarted { run, tasks },
            EventKind::Ready { task } => EventKind::Ready { task: own(task) },
            EventKind::Started {
                task,
                attempt,
                executor,
            } => EventKind::Started {
                task: own(task),
                attempt,
                executor: Cow::Owned(executor.into_owned()),
            },
            EventKind::Completed { task, attempt } => EventKind::Completed {
                task: own(task),
                attempt,
            },
            EventKind::Retrying {
                task,
                attempt,
                error,
                backoff,
            } => EventKind::Retrying {
                task: own(task),
                attempt,
                error,
                backoff,
            },
            EventKind::Failed {
                task,
                attempt,
                error,
            } => EventKind::Failed {
                task: own(task),
                attempt,
                error,
            },
            EventKind::Skipped { task, because } => EventKind::Skipped {
                task: own(task),
                because: own(because),
            },
            EventKind::Cancelled { task, attempt } => EventKind::Cancelled {
                task: own(task),
                attempt,
            },
            EventKind::Added { task, by } => EventKind::Added {
                task: own(task),
                by: own(by),
            },
            EventKind::NotRun { task } => EventKind::NotRun { task: own(task) },
            EventKind::RunFinished { run } => EventKind::RunFinished { run },
        };
        Event { at: self.at, kind }
    }
}

impl fmt::Display for Event<'_> {
    /// One line: ``task `b` attempt 1 started on inline``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            EventKind::RunStarted { run, tasks } => write!(f, "run {run} started: {tasks} tasks"),
            EventKind::Ready { task } => write!(f, "task `{task}` is ready"),
            EventKind::Started {
                task,
                attempt,
                executor,
            } => write!(f, "task `{task}` attempt {attempt} started on {executor}"),
            EventKind::Completed { task, attempt: 0 } => {
                write!(f, "task `{task}` completed with a given value")
            }
            EventKind::Completed { task, attempt } => {
                write!(f, "task `{task}` completed in attempt {attempt}")
            }
            EventKind::Retrying {
                task,
                attempt,
                error,
                backoff,
            } => write!(
                f,
                "task `{task}` attempt {attempt} failed, retrying in {backoff:?}: {error:#}"
            ),
            EventKind::Failed {
                task,
                attempt,
                error,
            } => write!(f, "task `{task}` failed in attempt {attempt}: {error:#}"),
            EventKind::Skipped { task, because } => {
                write!(f, "task `{task}` skipped: `{because}` did not complete")
            }
            EventKind::Cancelled { task, attempt } => {
                write!(f, "task `{task}` attempt {attempt} cancelled")
            }
            EventKind::Added { task, by } => write!(f, "task `{task}` added by `{by}`"),
            EventKind::NotRun { task } => write!(f, "task `{task}` did not run"),
            EventKind::RunFinished { run } => write!(f, "run {run} finished"),
        }
    }
}

/// The events of one run as a stream, from [`Run::events`](crate::Run::events).
///
/// It holds every event of the run, in order, without a bound (a slow reader loses none;
/// events wait in memory until read), and ends when the run has finished or been dropped.
pub struct Events {
    receiver: mpsc::UnboundedReceiver<Event<'static>>,
}

impl Events {
    pub(crate) fn new() -> (mpsc::UnboundedSender<Event<'static>>, Self) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (sender, Self { receiver })
    }
}

impl Stream for Events {
    type Item = Event<'static>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("waiting", &self.receiver.len())
            .finish()
    }
}
