//! A run's live status: [`RunStatus`], a handle from [`Run::status`](crate::Run::status) that
//! any task or thread can take a [`Snapshot`] with while the run goes on.
//!
//! It is one more consumer of the run's transitions: an observer of the run's events, like
//! any callback, that keeps each task's state (one short lock per event, only for runs that
//! have a status handle).

use core::fmt;
use core::time::Duration;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::event::{Event, EventKind};
use crate::graph::GraphInner;
use crate::id::{Status, TaskState};

/// A handle on a run's live status; clones share it. See [`Run::status`](crate::Run::status).
#[derive(Clone)]
pub struct RunStatus {
    shared: Arc<Mutex<Live>>,
}

/// What the run keeps up to date.
pub(crate) struct Live {
    pub graph: Arc<GraphInner>,
    pub states: Vec<TaskState>,
    pub attempts: Vec<u32>,
    /// Why each failed or skipped task is so, for pictures.
    pub why: Vec<Why>,
    /// The tasks the run added, from node `graph.len()` on: name and inputs.
    pub added: Vec<(Arc<str>, Box<[u32]>)>,
    /// The inputs of the graph's tasks that took more than their own (a map, its items').
    pub more_deps: std::collections::HashMap<usize, Vec<u32>>,
    started: Option<Instant>,
    finished: Option<Instant>,
    dropped: bool,
}

/// Why a task that failed or was skipped is so.
#[derive(Clone, Debug, Default)]
pub(crate) enum Why {
    #[default]
    Nothing,
    Failed(Arc<anyhow::Error>),
    /// Skipped: this task did not complete.
    Skipped(u32),
}

impl RunStatus {
    pub(crate) fn new(
        graph: Arc<GraphInner>,
        states: Vec<TaskState>,
        attempts: Vec<u32>,
        why: Vec<Why>,
    ) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Live {
                graph,
                states,
                attempts,
                why,
                added: Vec::new(),
                more_deps: std::collections::HashMap::new(),
                started: None,
                finished: None,
                dropped: false,
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Live> {
        // A panic while the lock is held leaves plain data behind: still readable.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run's state now: each task's state, counts, elapsed time.
    pub fn snapshot(&self) -> Snapshot {
        let live = self.lock();
        let now = Instant::now();
        let elapsed = live.started.map_or(Duration::ZERO, |started| {
            live.finished.unwrap_or(now) - started
        });
        Snapshot {
            tasks: (1..live.states.len())
                .map(|v| TaskSnapshot {
                    name: live.name(v).to_owned(),
                    state: live.states[v],
                    attempts: live.attempts[v],
                })
                .collect(),
            elapsed,
            started: live.started.is_some(),
            finished: live.finished.is_some() || live.dropped,
            dropped: live.dropped,
        }
    }
}

impl RunStatus {
    /// Keeps up with `event`: the status is one of the run's observers.
    pub(crate) fn observe(&self, event: &Event<'_>) {
        let mut live = self.lock();
        let mut why = None;
        let (task, state, attempt) = match &event.kind {
            EventKind::RunStarted { .. } => return live.start(event.at),
            // The run tells the status of added tasks itself, with their inputs; the map that
            // added them now waits for them.
            EventKind::Added { by, .. } => {
                if let Some(v) = by.node() {
                    if live.states[v as usize] == TaskState::Ready {
                        live.states[v as usize] = TaskState::Waiting;
                    }
                }
                return;
            }
            EventKind::RunFinished { .. } => return live.finish(event.at),
            EventKind::Ready { task } => (task, TaskState::Ready, None),
            EventKind::Started { task, attempt, .. } => (task, TaskState::Running, Some(*attempt)),
            EventKind::Retrying { task, .. } => (task, TaskState::Retrying, None),
            EventKind::Completed { task, .. } => (task, TaskState::Done(Status::Completed), None),
            EventKind::Failed { task, error, .. } => {
                why = Some(Why::Failed(error.clone()));
                (task, TaskState::Done(Status::Failed), None)
            }
            EventKind::Skipped { task, because } => {
                why = because.node().map(Why::Skipped);
                (task, TaskState::Done(Status::Skipped), None)
            }
            EventKind::Cancelled { task, .. } => (task, TaskState::Done(Status::Cancelled), None),
            EventKind::NotRun { task } => (task, TaskState::Done(Status::NotRun), None),
        };
        if let Some(v) = task.node() {
            let v = v as usize;
            live.states[v] = state;
            if let Some(attempt) = attempt {
                live.attempts[v] = attempt;
            }
            if let Some(why) = why {
                live.why[v] = why;
            }
        }
    }
}

impl Live {
    pub fn start(&mut self, at: Instant) {
        self.started = Some(at);
    }

    /// The run added a task called `name`, taking `deps`.
    pub fn add(&mut self, name: Arc<str>, deps: Box<[u32]>) {
        self.states.push(TaskState::Waiting);
        self.attempts.push(0);
        self.why.push(Why::Nothing);
        self.added.push((name, deps));
    }

    /// The name of node `v`.
    pub fn name(&self, v: usize) -> &str {
        match v.checked_sub(self.graph.len()) {
            Some(at) => &self.added[at].0,
            None => self.graph.name(crate::graph::index(v)),
        }
    }

    /// The inputs of node `v`.
    pub fn deps(&self, v: usize) -> &[u32] {
        match v.checked_sub(self.graph.len()) {
            Some(at) => &self.added[at].1,
            None => self
                .more_deps
                .get(&v)
                .map_or_else(|| self.graph.deps(crate::graph::index(v)), Vec::as_slice),
        }
    }

    /// Map `user` takes the values of its items, nodes `items`, too.
    pub fn add_items(&mut self, user: u32, items: core::ops::Range<u32>) {
        let user = user as usize;
        if let Some(at) = user.checked_sub(self.graph.len()) {
            let deps = &mut self.added[at].1;
            *deps = deps.iter().copied().chain(items).collect();
        } else {
            let graph = &self.graph;
            self.more_deps
                .entry(user)
                .or_insert_with(|| graph.deps(crate::graph::index(user)).to_vec())
                .extend(items);
        }
    }

    fn finish(&mut self, at: Instant) {
        self.finished = Some(at);
    }
}

impl RunStatus {
    /// The run's future was dropped before it resolved.
    pub(crate) fn dropped(&self) {
        let mut live = self.lock();
        if live.finished.is_none() {
            live.finished = Some(Instant::now());
            live.dropped = true;
        }
    }
}

impl fmt::Debug for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}

/// A run's state at one moment, from [`RunStatus::snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every task, in the order they were added.
    pub tasks: Vec<TaskSnapshot>,
    /// Time since the run started (until it finished, once it has).
    pub elapsed: Duration,
    /// Whether the run has started (been polled).
    pub started: bool,
    /// Whether the run has ended: it resolved to its report, or its future was dropped.
    pub finished: bool,
    /// Whether the run's future was dropped before it resolved: the states are where it
    /// stopped (tasks in flight were dropped with it), and `elapsed` counts to the drop.
    pub dropped: bool,
}

/// One task in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The task's name.
    pub name: String,
    /// Where it is.
    pub state: TaskState,
    /// Attempts started so far.
    pub attempts: u32,
}

impl Snapshot {
    /// How many tasks are in `state`.
    pub fn count(&self, state: TaskState) -> usize {
        self.tasks.iter().filter(|task| task.state == state).count()
    }

    /// How many tasks are done with `status`.
    pub fn done(&self, status: Status) -> usize {
        self.count(TaskState::Done(status))
    }

    /// The state of task `name`.
    pub fn state(&self, name: &str) -> Option<TaskState> {
        self.tasks
            .iter()
            .find(|task| task.name == name)
            .map(|task| task.state)
    }
}
