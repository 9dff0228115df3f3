//! Where an attempt of a task runs: the small interface between the scheduler and the places
//! that run tasks (the run's own task, tokio's blocking pool; later, remote workers).
//!
//! An executor only starts what it is given and reports the outcome. Every decision (when a
//! task starts, how many run at once, timeouts, retries, what a failure means for the rest of
//! the graph) is the scheduler's, in `run.rs`.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::graph::{BoxFuture, GraphInner, Job, Outcome};
use crate::report::RunId;
use dag_runtime::{spawn_blocking, Blocking};

/// Which attempt an executor is asked to run: a remote executor deduplicates by it.
#[derive(Clone, Copy)]
pub(crate) struct AttemptKey<'a> {
    pub run: RunId,
    pub graph: &'a GraphInner,
    pub node: u32,
    pub attempt: u32,
}

impl AttemptKey<'_> {
    /// The task's name (looked up only when needed: most attempts never ask).
    pub fn task(&self) -> &str {
        self.graph.name(self.node)
    }
}

/// Runs attempts of tasks.
pub(crate) trait Executor {
    /// Starts `job`, the attempt `key`; returns the future of its outcome, or the error that
    /// kept it from starting.
    fn start(&self, key: AttemptKey<'_>, job: Job) -> Result<Running, anyhow::Error>;
}

/// An attempt that has started: polling it drives it (async jobs) or waits for it (jobs on
/// the blocking pool). Dropping it drops the job's future, or aborts a closure that has not
/// started on the pool yet.
pub(crate) enum Running {
    Inline(BoxFuture),
    Pool(Blocking<Outcome>),
}

impl Future for Running {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match self.get_mut() {
            Self::Inline(future) => future.as_mut().poll(cx),
            Self::Pool(blocking) => Pin::new(blocking).poll(cx),
        }
    }
}

/// This process: async jobs on the run's own task (the scheduler polls them), blocking jobs
/// on the current tokio runtime's blocking pool.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Local;

impl Executor for Local {
    fn start(&self, key: AttemptKey<'_>, job: Job) -> Result<Running, anyhow::Error> {
        match job {
            Job::Async(future) => Ok(Running::Inline(future)),
            Job::Blocking(closure) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    anyhow::bail!(
                        "{}, task `{}`, attempt {}: a blocking task runs on tokio's blocking \
                         pool, but the graph is not running inside a tokio runtime",
                        key.run,
                        key.task(),
                        key.attempt
                    );
                }
                Ok(Running::Pool(spawn_blocking(closure)))
            }
        }
    }
}
