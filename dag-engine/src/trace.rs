//! `tracing` spans of a run (feature `tracing`): one span per run, a child of the span that
//! was current where the run was made, and one per attempt of a task, a child of the run's;
//! the attempt's future (or closure) runs inside its span, so a task's own events nest under
//! it, and the end of each attempt records its status and duration.
//!
//! One more consumer of the run's transitions: an observer of its events, registered only
//! when a subscriber wants the run's span, so a run without one pays a disabled span and no
//! event.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;
use tracing::field::Empty;
use tracing::instrument::WithSubscriber;
use tracing::{info_span, Instrument, Span};

use crate::event::{Event, EventKind};
use crate::executor::{BoxBlocking, Job};

/// A run's spans.
pub(crate) struct Trace {
    run: Span,
    /// Each task's span of its attempt in flight, with when it started.
    attempts: Mutex<Vec<Option<(Span, Instant)>>>,
}

impl Trace {
    /// The spans of a run of `tasks` tasks, or `None` if no subscriber wants them.
    pub fn new(key: &crate::RunKey, tasks: usize) -> Option<Arc<Self>> {
        let run = info_span!(parent: Span::current(), "run", run = %key, tasks);
        if run.is_disabled() {
            return None;
        }
        Some(Arc::new(Self {
            run,
            attempts: Mutex::new(vec![None; tasks + 1]),
        }))
    }

    /// `job` of node `v`, inside the span of its attempt.
    pub fn instrument(&self, v: u32, job: Job) -> Job {
        let span = self
            .attempts()
            .get(v as usize)
            .and_then(Option::as_ref)
            .map_or_else(Span::none, |(span, _)| span.clone());
        // The subscriber goes along too: an attempt on another thread (spawned, on the
        // blocking pool) reports its events to the subscriber of the run, also when that one
        // is only the default of the run's thread.
        match job {
            Job::Async(future) => {
                Job::Async(Box::pin(future.instrument(span).with_current_subscriber()))
            }
            Job::Blocking(closure) => {
                let dispatch = tracing::dispatcher::get_default(Clone::clone);
                Job::Blocking(Box::new(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let _entered = span.enter();
                        closure()
                    })
                }) as BoxBlocking)
            }
        }
    }

    /// Keeps the spans up with `event`.
    pub fn observe(&self, event: &Event<'_>) {
        let (task, status) = match &event.kind {
            EventKind::Started {
                task,
                attempt,
                executor,
            } => {
                let span = info_span!(
                    parent: &self.run,
                    "attempt",
                    task = %task,
                    attempt,
                    executor = %executor,
                    status = Empty,
                    duration_ms = Empty,
                );
                if let Some(v) = task.node() {
                    let mut attempts = self.attempts();
                    // A task the run added has a node beyond those of the graph it started
                    // from.
                    if attempts.len() <= v as usize {
                        attempts.resize(v as usize + 1, None);
                    }
                    attempts[v as usize] = Some((span, event.at));
                }
                return;
            }
            EventKind::Completed { task, attempt } if *attempt > 0 => (task, "completed"),
            EventKind::Retrying { task, .. } => (task, "failed, retrying"),
            EventKind::Failed { task, .. } => (task, "failed"),
            EventKind::Cancelled { task, .. } => (task, "cancelled"),
            _ => return,
        };
        let ended = task
            .node()
            .and_then(|v| self.attempts().get_mut(v as usize)?.take());
        if let Some((span, started)) = ended {
            span.record("status", status);
            let millis = (event.at - started).as_secs_f64() * 1000.0;
            span.record("duration_ms", millis);
        }
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, Vec<Option<(Span, Instant)>>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
