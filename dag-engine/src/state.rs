//! A run's state and the one place where it changes: [`RunState::transition`].
//!
//! Every change of a task's state (ready, started with its attempt, completed, retrying,
//! failed, skipped, cancelled, not run) goes through `transition`, which writes the task's
//! record (what the [`Report`](crate::Report) is made of) and tells every consumer: the
//! run's event callbacks and streams, and its live status. The scheduler keeps only what it
//! schedules with (missing inputs, ready queues, tasks in flight); it never writes a record.

use core::time::Duration;
use std::borrow::Cow;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::event::{Event, EventKind, TaskName};
use crate::executor::Value;
use crate::graph::{GraphInner, Node};
use crate::grow::{Added, By};
use crate::id::{RunKey, Status, TaskState};
use crate::live::{RunStatus, Why};
use crate::options::Observer;

/// Where a completed task's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The task ran in this run.
    Ran,
    /// Reused from the report a rerun started from.
    Reused,
    /// Given before the run ([`Plan::mark_done`](crate::Plan::mark_done)).
    Given,
}

/// What a run records of a task: written by [`RunState::transition`] only.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    pub state: TaskState,
    pub origin: Origin,
    pub error: Option<Arc<anyhow::Error>>,
    pub skipped_because: Option<u32>,
    pub start: Option<Instant>,
    pub end: Option<Instant>,
    pub attempts: u32,
}

impl TaskRecord {
    /// The task's status: its final one once it has one.
    pub fn status(&self) -> Status {
        self.state.status()
    }

    const NEW: Self = Self {
        state: TaskState::Waiting,
        origin: Origin::Ran,
        error: None,
        skipped_because: None,
        start: None,
        end: None,
        attempts: 0,
    };
}

/// A change of a task's state.
pub(crate) enum Transition {
    /// All its inputs have values.
    Ready,
    /// Attempt `attempt` starts.
    Started { attempt: u32 },
    /// Its attempt produced this value.
    Completed(Value),
    /// It has this value before the run.
    Given(Value, Origin),
    /// Its attempt failed; the next one comes after `backoff`.
    Retrying {
        error: anyhow::Error,
        backoff: Duration,
    },
    /// Its last attempt failed.
    Failed(anyhow::Error),
    /// Task `because` failed or was cancelled.
    Skipped { because: u32 },
    /// Its attempt was stopped.
    Cancelled,
    /// It will not run.
    NotRun,
}

/// A run's records, values and consumers.
pub(crate) struct RunState {
    pub graph: Arc<GraphInner>,
    pub key: RunKey,
    /// Node 0 is the parameter.
    pub values: Vec<Option<Value>>,
    /// Node 0 is the parameter (always completed).
    pub records: Vec<TaskRecord>,
    pub started: Option<Instant>,
    /// Every consumer besides the records: the callbacks of the run's options, its event
    /// streams, its live status. All hear of every transition the same way.
    observers: Vec<Observer>,
    /// The live status, once asked for (it is also one of the observers).
    live: Option<RunStatus>,
    /// How many tasks have a status: when all have, the end of the run has nothing to add.
    done: usize,
    /// The tasks the run added to its graph.
    pub added: Added,
    /// Whether the run's rules and tags hear of tasks that are done (through `settled`).
    pub watch: bool,
    /// Tasks done since the scheduler last looked, while `watch` is on.
    pub settled: Vec<u32>,
}

impl RunState {
    pub fn new(
        graph: Arc<GraphInner>,
        key: RunKey,
        param: Value,
        observers: Vec<Observer>,
    ) -> Self {
        let n = graph.len();
        let mut values = vec![None; n];
        values[0] = Some(param);
        let mut records: Vec<TaskRecord> = (0..n).map(|_| TaskRecord::NEW).collect();
        records[0].state = TaskState::Done(Status::Completed);
        Self {
            observers,
            graph,
            key,
            values,
            records,
            started: None,
            live: None,
            done: 0,
            added: Added::new(n),
            watch: false,
            settled: Vec::new(),
        }
    }

    /// Adds a stream consumer: every event from now on, owned, until the run ends.
    pub fn add_stream(&mut self, sender: UnboundedSender<Event<'static>>) {
        self.observers.push(Arc::new(move |event: &Event<'_>| {
            // A stream whose reader is gone takes nothing: nothing to lose.
            let _ = sender.send(event.clone().into_owned());
        }));
    }

    /// The live status, made on first use from the records so far.
    pub fn live(&mut self) -> RunStatus {
        if let Some(live) = &self.live {
            return live.clone();
        }
        let live = RunStatus::new(
            self.graph.clone(),
            self.records.iter().map(|r| r.state).collect(),
            self.records.iter().map(|r| r.attempts).collect(),
            self.records
                .iter()
                .map(|r| match (&r.error, r.skipped_because) {
                    (Some(error), _) => Why::Failed(error.clone()),
                    (None, Some(because)) => Why::Skipped(because),
                    (None, None) => Why::Nothing,
                })
                .collect(),
        );
        {
            let mut shared = live.lock();
            if let Some(started) = self.started {
                shared.start(started);
            }
            let added = &self.added;
            // The states so far cover the added tasks too: only their names and inputs are
            // missing.
            for v in added.base..crate::graph::index(self.records.len()) {
                shared
                    .added
                    .push((added.name(v).into(), added.deps(v).into()));
            }
            for v in 1..crate::graph::index(self.records.len()) {
                let items = added.items(v);
                if !items.is_empty() {
                    shared.add_items(v, items);
                }
            }
        }
        let observer = live.clone();
        self.observers
            .push(Arc::new(move |event: &Event<'_>| observer.observe(event)));
        self.live = Some(live.clone());
        live
    }

    /// The run's future is dropped (a no-op for a run that finished).
    pub fn dropped(&self) {
        if let Some(live) = &self.live {
            live.dropped();
        }
    }

    /// The run starts.
    pub fn start(&mut self, now: Instant) {
        self.started = Some(now);
        if !self.observers.is_empty() {
            self.announce(&Event {
                at: now,
                kind: EventKind::RunStarted {
                    run: self.key.clone(),
                    tasks: self.graph.len() - 1,
                },
            });
        }
    }

    /// The run ends: every task without a status gets [`Transition::NotRun`] (or, if it was
    /// still in flight, [`Transition::Cancelled`]), then consumers hear of the end.
    pub fn finish(&mut self, now: Instant) {
        let tasks = self.records.len() - 1;
        for v in 1..self.records.len() {
            if self.done == tasks {
                break;
            }
            let v = crate::graph::index(v);
            match self.records[v as usize].state {
                TaskState::Done(_) => {}
                TaskState::Running | TaskState::Retrying => {
                    self.transition(v, Transition::Cancelled, now);
                }
                TaskState::Waiting | TaskState::Ready => {
                    self.transition(v, Transition::NotRun, now);
                }
            }
        }
        if !self.observers.is_empty() {
            self.announce(&Event {
                at: now,
                kind: EventKind::RunFinished {
                    run: self.key.clone(),
                },
            });
            // The consumers end with the run (streams end when their sender goes).
            self.observers.clear();
        }
    }

    /// Changes task `v`'s state: the one place where that happens.
    ///
    /// Inlined into each call site, where the transition is known, so that only its own arm
    /// is left: this runs several times per task.
    #[allow(
        clippy::inline_always,
        reason = "measured: without it the match stays and costs about 70 instructions per task"
    )]
    #[inline(always)]
    pub fn transition(&mut self, v: u32, transition: Transition, now: Instant) {
        if let Transition::Ready = transition {
            // The records do not keep readiness (a report has no use for it, and not writing
            // a ready task's record keeps a completion's walk over its users to the compact
            // array of missing inputs); the consumers hear of it.
            if !self.observers.is_empty() {
                self.tell(v, Kind::Ready, now);
            }
            return;
        }
        let record = &mut self.records[v as usize];
        let kind = match transition {
            Transition::Ready => unreachable!("handled above"),
            Transition::Started { attempt } => {
                record.state = TaskState::Running;
                record.attempts = attempt;
                if attempt == 1 {
                    record.start = Some(now);
                }
                Kind::Started
            }
            Transition::Completed(value) => {
                self.values[v as usize] = Some(value);
                record.state = TaskState::Done(Status::Completed);
                record.end = Some(now);
                Kind::Completed
            }
            Transition::Given(value, origin) => {
                self.values[v as usize] = Some(value);
                record.state = TaskState::Done(Status::Completed);
                record.origin = origin;
                Kind::Completed
            }
            Transition::Retrying { error, backoff } => {
                record.state = TaskState::Retrying;
                Kind::Retrying(Arc::new(error), backoff)
            }
            Transition::Failed(error) => {
                let error = Arc::new(error);
                record.state = TaskState::Done(Status::Failed);
                record.error = Some(error.clone());
                record.end = Some(now);
                Kind::Failed(error)
            }
            Transition::Skipped { because } => {
                record.state = TaskState::Done(Status::Skipped);
                record.skipped_because = Some(because);
                record.end = Some(now);
                Kind::Skipped(because)
            }
            Transition::Cancelled => {
                record.state = TaskState::Done(Status::Cancelled);
                record.end = Some(now);
                Kind::Cancelled
            }
            Transition::NotRun => {
                record.state = TaskState::Done(Status::NotRun);
                Kind::NotRun
            }
        };
        if record.state.is_done() {
            self.done += 1;
            if self.watch {
                self.settled.push(v);
            }
        }
        if !self.observers.is_empty() {
            self.tell(v, kind, now);
        }
    }

    /// Tells the consumers other than the records of a change of task `v`: out of line, so
    /// that a run nobody observes does not carry it.
    #[inline(never)]
    fn tell(&self, v: u32, kind: Kind, now: Instant) {
        let graph = &*self.graph;
        let task = self.task_name(v);
        let record = &self.records[v as usize];
        let attempt = record.attempts;
        // Only failures carry something owned (their error): the other events borrow all
        // they hold, and dropping them is nothing but the checks that find so.
        let (kind, owns) = match kind {
            Kind::Ready => (EventKind::Ready { task }, false),
            Kind::Started => (
                EventKind::Started {
                    task,
                    attempt,
                    executor: Cow::Borrowed(graph.executors.name(self.placement(v))),
                },
                false,
            ),
            Kind::Completed => (
                EventKind::Completed {
                    task,
                    attempt: if record.origin == Origin::Ran {
                        attempt
                    } else {
                        0
                    },
                },
                false,
            ),
            Kind::Retrying(error, backoff) => (
                EventKind::Retrying {
                    task,
                    attempt,
                    error,
                    backoff,
                },
                true,
            ),
            Kind::Failed(error) => (
                EventKind::Failed {
                    task,
                    attempt,
                    error,
                },
                true,
            ),
            Kind::Skipped(because) => (
                EventKind::Skipped {
                    task,
                    because: self.task_name(because),
                },
                false,
            ),
            Kind::Cancelled => (EventKind::Cancelled { task, attempt }, false),
            Kind::NotRun => (EventKind::NotRun { task }, false),
        };
        let event = Event { at: now, kind };
        self.announce(&event);
        if !owns {
            core::mem::forget(event);
        }
    }

    /// Task `v`'s name, for an event.
    #[inline]
    fn task_name(&self, v: u32) -> TaskName<'_> {
        if self.added.has(v) {
            TaskName::added(&self.added, v)
        } else {
            TaskName::new(&self.graph, v)
        }
    }

    /// The name of task `v`.
    pub fn name(&self, v: u32) -> &str {
        if self.added.has(v) {
            self.added.name(v)
        } else {
            self.graph.name(v)
        }
    }

    /// The index of task `v`'s executor.
    #[inline]
    pub fn placement(&self, v: u32) -> u16 {
        if self.added.has(v) {
            self.added.node(v).executor
        } else {
            self.graph.placement(v)
        }
    }

    /// Task `v`'s node.
    #[inline]
    pub fn node(&self, v: u32) -> &Node {
        if self.added.has(v) {
            self.added.node(v)
        } else {
            &self.graph.nodes[v as usize]
        }
    }

    /// The inputs of task `v`.
    #[inline]
    pub fn deps(&self, v: u32) -> &[u32] {
        if self.added.has(v) {
            self.added.deps(v)
        } else {
            self.graph.deps(v)
        }
    }

    /// Adds a task with node `template` (see [`Added::template`]) named by `name`, with
    /// inputs `deps`, to the run, on behalf of task `by`, an item of map `feeds` (or 0); tells
    /// the consumers. Its node.
    pub fn add(
        &mut self,
        template: u32,
        name: impl FnOnce(&mut String),
        deps: &[u32],
        by: By<'_>,
        feeds: u32,
        now: Instant,
    ) -> u32 {
        let v = self.added.push(template, name, deps, by, feeds);
        if let Some(live) = &self.live {
            live.lock().add(self.added.name(v).into(), deps.into());
        }
        self.values.push(None);
        self.records.push(TaskRecord::NEW);
        if !self.observers.is_empty() {
            let event = Event {
                at: now,
                kind: EventKind::Added {
                    task: self.task_name(v),
                    by: match by {
                        By::Task(by) => self.task_name(by),
                        By::Rule(_, rule) => TaskName::text(rule),
                    },
                },
            };
            self.announce(&event);
        }
        v
    }

    /// Map `v` spread over `count` items from node `first` on: it takes their values too.
    pub fn spread(&mut self, v: u32, first: u32, count: u32) {
        self.added.spread(v, first, count);
        if let Some(live) = &self.live {
            live.lock().add_items(v, first..first + count);
        }
    }

    /// Makes room for `tasks` more tasks.
    pub fn reserve(&mut self, tasks: usize, name_bytes: usize) {
        self.added.reserve(tasks, name_bytes);
        self.values.reserve(tasks);
        self.records.reserve(tasks);
    }

    #[allow(
        clippy::inline_always,
        reason = "measured: a call per event, about 20 instructions each"
    )]
    #[inline(always)]
    fn announce(&self, event: &Event<'_>) {
        for observer in &self.observers {
            observer(event);
        }
    }
}

/// What a transition tells the consumers, beside the record.
enum Kind {
    Ready,
    Started,
    Completed,
    Retrying(Arc<anyhow::Error>, Duration),
    Failed(Arc<anyhow::Error>),
    Skipped(u32),
    Cancelled,
    NotRun,
}
